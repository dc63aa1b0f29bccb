"""HYCO cycles: count-based balance, the Batch contract, storage strategies, cleanup, exact resume."""

import json

import pytest
import torch

from hyco.config.schema import CouplingConfig, HybridTrainerConfig, PhysicalTrainerConfig, SyntheticTrainerConfig
from hyco.data.batch import DATA, INTERACTION, Batch
from hyco.networks.surrogate import build_network
from hyco.training.augmentation import AugmentedDataset, CacheManager, GeneratedWindows, choose_strategy
from hyco.training.hybrid import PICK_STREAMS, HybridTrainer, trust_weight
from hyco.training.physical import PhysicalTrainer
from hyco.training.synthetic import SyntheticTrainer
from hyco.utils.seed import seeded_generator
from tests.training.toy_models import ToyDiffusion1D

NET = {"name": "convnet", "width": 8, "depth": 2}


class TensorWindows:
    """In-memory real windows with an observation mask, in the WindowDataset interface."""

    def __init__(self, model, sims=3, frames=6, rollout=2, observed=slice(2, 12)):
        state = model.initial_state(sims, seed=0)
        with torch.no_grad():
            traj = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), frames - 1)], 1)
        self.trajectories = traj.float()
        self.rollout_steps = rollout
        self.inputs = torch.cat([self.trajectories[:, t] for t in range(frames - rollout)])
        self.targets = torch.cat([self.trajectories[:, t + 1:t + 1 + rollout] for t in range(frames - rollout)])
        self.masks = torch.zeros(len(self.inputs), rollout, 1, model.n)
        self.masks[..., observed] = 1.0
        self.spatial_shape = (model.n,)
        self.num_channels = 1

    def __len__(self):
        return len(self.inputs)

    def batch(self, indices):
        i = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        return Batch(self.inputs[i], self.targets[i], self.masks[i])

    def __getitem__(self, i):
        return self.batch([i])


def make_hybrid(tmp_path, strategy="memory", alpha=0.5, order="sequential", variant="hyco", run_dir=None,
                cycles=2, initial_states="real", validation=False, synthetic_epochs_per_cycle=1, **hybrid_keys):
    torch.manual_seed(0)
    physics = ToyDiffusion1D(dtype=torch.float32)
    surrogate = build_network(NET, 1, [0], 1)
    synthetic = SyntheticTrainer(SyntheticTrainerConfig(epochs=0, batch_size=4, lr=1e-3), surrogate,
                                 progress=False, total_epochs=2 * cycles + 1, per_cycle=True)
    physical = PhysicalTrainer(PhysicalTrainerConfig(optimizer="adam", iterations=3, lr=0.05), physics,
                               true_coefficients=physics.true_coefficients())
    cfg = HybridTrainerConfig(cycles=cycles, alpha=alpha, synthetic_epochs_per_cycle=synthetic_epochs_per_cycle,
                              physical_epochs_per_cycle=1,
                              strategy=strategy, order=order, variant=variant, warm_start_epochs=1,
                              initial_states=initial_states, **hybrid_keys)
    observed = None
    if validation:  # observed validation data: trust weights and the best cycle are then in play
        val = TensorWindows(physics, sims=2, frames=6, rollout=5)
        observed = (val.inputs, val.targets, val.masks)
    hybrid = HybridTrainer(cfg, synthetic, physical, cache_dir=tmp_path / "cache", run_dir=run_dir, seed=3,
                           batch_size=4, chunk_size=3, validation=observed)
    return hybrid, TensorWindows(physics)


def _weights(hybrid):
    return torch.cat([p.detach().flatten() for p in hybrid.synthetic.model.parameters()])


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0])
def test_balance_follows_alpha(alpha, tmp_path):
    hybrid, real = make_hybrid(tmp_path, alpha=alpha, cycles=1, hear_untrained=True)  # both generate in cycle 1
    metrics = hybrid.train(real)
    assert metrics["num_real"] == len(real) == 12
    assert metrics["num_generated_physical"] == metrics["num_generated_synthetic"] == int(alpha * 12)


def test_generated_windows_carry_the_ghost_region_and_the_interaction_term(tmp_path):
    hybrid, real = make_hybrid(tmp_path)
    generated = hybrid._generate("physical", 0, real, 5, "memory")
    first = generated[0]
    inputs, targets, region, term = first.inputs[0], first.targets[0], first.mask[0], first.term[0]
    assert inputs.shape == (1, 16) and targets.shape == (2, 1, 16) and term.item() == INTERACTION
    picks = torch.randperm(len(real), generator=seeded_generator(3, 0, PICK_STREAMS["physical"]))[:5]
    assert torch.equal(inputs, real.inputs[picks[0]])
    assert torch.equal(region, 1.0 - real.masks[picks[0]])  # the exact complement: the ghost points
    mixed = AugmentedDataset(real, generated).batch([0, 13, 1, 16])
    assert mixed.size == 4 and mixed.term.tolist() == [DATA, INTERACTION, DATA, INTERACTION]
    assert torch.equal(mixed.mask[0], real.masks[0]) and torch.equal(mixed.mask[1], region)
    # the generated window's target is the physical model's rollout of its input
    second = generated.batch([1])
    expected = hybrid.physical_model.rollout(second.inputs, hybrid.physical.coefficients(), 2)
    assert torch.allclose(second.targets, expected)


def test_interaction_everywhere_and_random_states_cover_every_value(tmp_path):
    hybrid, real = make_hybrid(tmp_path, interaction_region="everywhere")
    assert bool(hybrid._generate("physical", 0, real, 4, "memory").materialize().mask.all())
    hybrid, real = make_hybrid(tmp_path, initial_states="random")
    assert bool(hybrid._generate("physical", 0, real, 4, "memory").materialize().mask.all())


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_strategies_give_identical_results(order, tmp_path):
    results = {}
    for strategy in ("memory", "cache", "on_the_fly"):
        hybrid, real = make_hybrid(tmp_path / strategy, strategy=strategy, order=order)
        metrics = hybrid.train(real)
        assert metrics["strategy"] == strategy
        results[strategy] = (_weights(hybrid), hybrid.physical.raw["kappa"].detach().clone())
        assert not (tmp_path / strategy / "cache" / "generated").exists()  # cleaned after each cycle
    for strategy in ("cache", "on_the_fly"):
        assert torch.equal(results[strategy][0], results["memory"][0])
        assert torch.equal(results[strategy][1], results["memory"][1])


def test_exception_inside_a_cycle_leaves_no_cache(tmp_path):
    hybrid, real = make_hybrid(tmp_path, strategy="cache", first="synthetic")  # the solver trains with a cache

    def explode(*args, **kwargs):
        assert any((tmp_path / "cache" / "generated").rglob("chunk_*.pt"))  # the cache was in use
        raise RuntimeError("injected failure")

    hybrid.physical.train = explode
    with pytest.raises(RuntimeError, match="injected failure"):
        hybrid.train(real)
    assert not (tmp_path / "cache" / "generated").exists()


@pytest.mark.parametrize("validation", [False, True])
def test_resume_equals_uninterrupted(tmp_path, validation):
    straight, real = make_hybrid(tmp_path / "a", cycles=3, variant="warm_start", validation=validation)
    straight.train(real)
    interrupted, real = make_hybrid(tmp_path / "b", cycles=3, variant="warm_start", run_dir=tmp_path / "b" / "run",
                                    validation=validation)
    interrupted.train(real, 2)
    resumed, real = make_hybrid(tmp_path / "b", cycles=3, variant="warm_start", run_dir=tmp_path / "b" / "run",
                                validation=validation)
    assert resumed.resume() and resumed.cycle == 2
    resumed.train(real)
    assert torch.equal(_weights(resumed), _weights(straight))
    assert torch.equal(resumed.physical.raw["kappa"], straight.physical.raw["kappa"])
    def untimed(history):
        return json.dumps([{k: v for k, v in h.items() if not k.startswith("seconds") and k != "peak_rss_mb"}
                           for h in history], sort_keys=True)

    assert untimed(resumed.history) == untimed(straight.history)  # losses, errors, trust weights, best flags
    if validation:
        assert resumed.best_physical.state_dict() == straight.best_physical.state_dict()
        assert 0 < straight.history[-1]["physical_interaction_weight"] < 1
    lines = (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3
    # the phases of summary.json cover the cycles run before the interruption too: the sum over all 3 records
    phases = resumed.phase_seconds()
    assert phases["solver_training"] == pytest.approx(sum(h["seconds_physical_training"] for h in resumed.history))
    assert phases["network_predictions"] == pytest.approx(sum(h["seconds_synthetic_rollouts"] for h in resumed.history))
    assert phases["solver_training"] > sum(h["seconds_physical_training"] for h in resumed.history[2:]) > 0


def test_mixed_variant_blends_observed_targets(tmp_path):
    hybrid, real = make_hybrid(tmp_path, variant="mixed", interaction_region="everywhere")
    generated = hybrid._generate("physical", 0, real, 6, "memory").materialize()
    inputs, targets = generated.inputs, generated.targets
    picks = torch.randperm(len(real), generator=seeded_generator(3, 0, PICK_STREAMS["physical"]))[:6]
    truth, mask = real.targets[picks], real.masks[picks]
    pred = hybrid.physical_model.rollout(inputs, hybrid.physical.coefficients(), 2)
    expected = mask * (0.7 * truth + 0.3 * pred) + (1 - mask) * pred
    assert torch.allclose(targets, expected, atol=1e-6)


def test_random_initial_states(tmp_path):
    hybrid, real = make_hybrid(tmp_path, initial_states="random")
    inputs = hybrid._generate("physical", 0, real, 4, "memory").materialize().inputs
    assert not any(torch.equal(inputs[0], real.inputs[i]) for i in range(len(real)))


def test_strategy_choice_and_cache_manager(tmp_path):
    assert choose_strategy(10_000, 1e-6) == "on_the_fly"
    assert choose_strategy(10, 1.0) == "memory"
    assert choose_strategy(int(0.75 * 2**30), 1.0) == "cache"
    assert choose_strategy(10, 1.0, "cache") == "cache"
    cache = CacheManager(tmp_path)
    windows = GeneratedWindows(lambda k: Batch(torch.zeros(2, 1, 4), torch.ones(2, 2, 1, 4)), 4, 2, "cache",
                               cache=cache, kind="synthetic_preds", cycle=7)
    assert sorted(p.name for p in (tmp_path / "generated" / "synthetic_preds" / "cycle_007").iterdir()) == [
        "chunk_00000.pt", "chunk_00001.pt"]
    assert torch.equal(windows.batch([3]).targets, torch.ones(1, 2, 1, 4))
    assert torch.equal(windows.batch([3]).mask, torch.ones(1, 2, 1, 4))  # no region given: every value
    assert cache.summary()["cache_files_written"] == 2
    cache.cleanup_cycle(7)
    assert not (tmp_path / "generated").exists()


@pytest.mark.parametrize("strategy", ["memory", "cache", "on_the_fly"])
def test_cycle_metrics_show_storage_and_regeneration_apart(strategy, tmp_path):
    hybrid, real = make_hybrid(tmp_path, strategy=strategy, cycles=1)
    metrics = hybrid.train(real)
    phases = ["physical_rollouts", "synthetic_training", "synthetic_rollouts", "physical_training", "storage",
              "regeneration"]
    assert all(metrics[f"seconds_{p}"] >= 0.0 for p in phases)
    assert (metrics["seconds_storage"] > 0.0) == (strategy == "cache")  # files written, read and removed
    assert (metrics["seconds_regeneration"] > 0.0) == (strategy == "on_the_fly")  # chunks re-made for batches


def test_generated_chunks_own_only_their_values():
    """A view (e.g. a window's first frame) must not keep its whole window alive in the stored chunk."""
    window = torch.randn(6, 3, 1, 16)  # [n, R+1, C, x]

    generated = GeneratedWindows(lambda k: Batch(window[:, 0], window[:, 1:]), 6, 6, "memory")
    inputs, targets = generated._store.chunk(0)
    assert inputs.untyped_storage().nbytes() == inputs.numel() * 4
    assert targets.untyped_storage().nbytes() == targets.numel() * 4
    assert torch.equal(inputs, window[:, 0]) and torch.equal(targets, window[:, 1:])


def test_epoch_order_keeps_generated_chunks_together(tmp_path):
    real = TensorWindows(ToyDiffusion1D(dtype=torch.float32), sims=4, frames=12)  # 40 real windows
    produced = []

    def producer(k):
        produced.append(k)
        return Batch(torch.zeros(min(4, 30 - 4 * k), 1, 16), torch.zeros(min(4, 30 - 4 * k), 2, 1, 16))

    generated = GeneratedWindows(producer, 30, 4, "on_the_fly", lru_chunks=2)  # 8 chunks, 2 kept
    dataset = AugmentedDataset(real, generated)
    order = dataset.epoch_order(torch.Generator().manual_seed(0))
    assert sorted(order.tolist()) == list(range(70))  # a permutation of every window
    from hyco.data.loader import WindowLoader

    loader = WindowLoader(dataset, batch_size=5, seed=1)
    batches = list(loader)
    assert sum(b.size for b in batches) == 70
    assert sorted(produced) == list(range(8))  # each chunk generated once per epoch, not per batch
    mixing = sum(bool((b.term == DATA).any() and (b.term == INTERACTION).any()) for b in batches)
    assert mixing >= len(batches) - 2  # batches mix real and generated windows


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_first_physical_trains_the_solver_before_the_network(order, tmp_path):
    """`first`: which model trains first in each cycle; with `hear_untrained`, the solver's first weight comes
    from the untrained network's error when the solver goes first (and always with order parallel)."""
    calls = {}
    for first in ("synthetic", "physical"):
        hybrid, real = make_hybrid(tmp_path / first, order=order, first=first, validation=True, cycles=1,
                                   hear_untrained=True)
        seen = []
        for name in ("synthetic", "physical"):
            trainer = getattr(hybrid, name)
            inner = trainer.train
            trainer.train = lambda *a, _inner=inner, _name=name, _seen=seen, **k: _seen.append(_name) or _inner(*a, **k)
        before = hybrid._errors()  # both models as they start
        hybrid.train(real)
        calls[first] = (seen, hybrid.history[0]["physical_interaction_weight"],
                        trust_weight(before["physical"], before["synthetic"]))
    assert calls["synthetic"][0] == ["synthetic", "physical"]
    assert calls["physical"][0] == ["physical", "synthetic"]
    assert calls["physical"][1] == pytest.approx(calls["physical"][2], rel=1e-6)
    if order == "sequential":
        assert calls["synthetic"][1] != pytest.approx(calls["synthetic"][2], rel=1e-3)


@pytest.mark.parametrize("data_weight, expected", [(1.0, "physical"), (0.0, "synthetic")])
def test_first_auto_lets_the_model_that_sees_the_data_train_first(data_weight, expected, tmp_path):
    """`first=auto` (default): the solver first, unless it learns through the network only; then the network
    trains first and the solver already learns from it in cycle 1 (physical-first would skip its phase)."""
    coupling = CouplingConfig(data_weight=data_weight, interaction_region="everywhere")
    assert HybridTrainerConfig(physical=coupling).first_model == expected
    assert HybridTrainerConfig(physical=coupling, first="physical").first_model == "physical"
    hybrid, real = make_hybrid(tmp_path, validation=True, cycles=1, physical=coupling)
    seen = []
    for name in ("synthetic", "physical"):
        trainer = getattr(hybrid, name)
        inner = trainer.train
        trainer.train = lambda *a, _inner=inner, _name=name, **k: seen.append(_name) or _inner(*a, **k)
    start = hybrid.physical.raw["kappa"].detach().clone()
    hybrid.train(real)
    assert seen == [expected, "synthetic" if expected == "physical" else "physical"]
    assert not torch.equal(hybrid.physical.raw["kappa"], start)  # the solver learned in cycle 1 either way
    if data_weight == 0:
        assert hybrid.history[0]["physical_interaction_weight"] > 0.0  # it heard the trained network


@pytest.mark.parametrize("first", ["physical", "synthetic"])
def test_an_untrained_partner_is_not_heard(first, tmp_path):
    """Trust weights (default): the model that trains first in the first cycle hears nothing from its untrained
    partner and learns from the data alone, exactly as it would with interaction weight 0; the second model
    hears the first by trust; from the second cycle on both are heard by trust."""
    hybrid, real = make_hybrid(tmp_path / "auto", first=first, validation=True, cycles=2)
    hybrid.train(real)
    second = "synthetic" if first == "physical" else "physical"
    assert hybrid.history[0][f"{first}_interaction_weight"] == 0.0
    assert hybrid.history[0][f"{second}_interaction_weight"] > 0.0
    assert hybrid.history[1][f"{first}_interaction_weight"] > 0.0
    coupling = {first: CouplingConfig(interaction_weight=0.0)}
    alone, real = make_hybrid(tmp_path / "zero", first=first, validation=True, cycles=1, **coupling)
    alone.train(real)
    reference = make_hybrid(tmp_path / "again", first=first, validation=True, cycles=1)[0]
    reference.train(real)
    model = "physical" if first == "physical" else "synthetic"
    if model == "physical":
        assert torch.equal(reference.physical.raw["kappa"], alone.physical.raw["kappa"])
    else:
        assert torch.equal(_weights(reference), _weights(alone))



def test_a_network_does_not_hear_a_solver_that_learns_only_from_it(tmp_path):
    """Trust weights: a solver trained through the network only (physical.data_weight 0) has nothing to tell
    the network but the network's own predictions, so `auto` gives the network weight 0 in every cycle (no
    solver rollouts are made for it) and its training equals interaction weight 0; a number still hears it."""
    through = CouplingConfig(data_weight=0.0, interaction_region="everywhere")
    hybrid, real = make_hybrid(tmp_path / "auto", validation=True, cycles=2, physical=through)
    hybrid.train(real)
    assert [r["synthetic_interaction_weight"] for r in hybrid.history] == [0.0, 0.0]
    assert [r["num_generated_physical"] for r in hybrid.history] == [0, 0]
    assert all(r["physical_interaction_weight"] > 0.0 for r in hybrid.history)  # the solver hears the network
    deaf, real = make_hybrid(tmp_path / "zero", validation=True, cycles=2, physical=through,
                             synthetic=CouplingConfig(interaction_weight=0.0))
    deaf.train(real)
    assert torch.equal(_weights(hybrid), _weights(deaf))
    assert torch.equal(hybrid.physical.raw["kappa"], deaf.physical.raw["kappa"])
    heard, real = make_hybrid(tmp_path / "one", validation=True, cycles=2, physical=through,
                              synthetic=CouplingConfig(interaction_weight=1.0))
    heard.train(real)
    assert heard.history[1]["synthetic_interaction_weight"] == 1.0 and heard.history[1]["num_generated_physical"] > 0
    assert not torch.equal(_weights(heard), _weights(hybrid))


@pytest.mark.parametrize("every, per_cycle", [("auto", 1), (1, 2)])
def test_the_network_is_validated_once_per_cycle_by_default(tmp_path, every, per_cycle):
    """validate_every=auto: the trainer validates at the end of each cycle only, and the trust weights reuse
    that rollout; with validate_every=1 every epoch is validated and the last one is still reused."""
    hybrid, real = make_hybrid(tmp_path, cycles=2, validation=True, synthetic_epochs_per_cycle=2)
    synthetic = hybrid.synthetic
    synthetic.validate_every = None if every == "auto" else every
    synthetic.set_validation(hybrid.validation)
    rollouts = []
    original = synthetic._rollout_validation
    synthetic._rollout_validation = lambda *args: rollouts.append(synthetic.epoch) or original(*args)
    hybrid.train(real)
    assert rollouts[0] == 0  # the untrained network's error, for the first trust weights
    assert rollouts[1:] == ([2, 4] if per_cycle == 1 else [1, 2, 3, 4])
    assert hybrid.history[-1]["synthetic_val_loss"] == synthetic.validate()["val_loss"]


@pytest.mark.parametrize("release", [True, False])
def test_freed_memory_goes_back_to_the_system_after_each_phase(tmp_path, monkeypatch, release):
    """release_memory (the default): one trim after each model's phase, two per cycle; none when off; the
    training itself is the same either way."""
    import hyco.training.hybrid as hybrid_module

    calls = []
    monkeypatch.setattr(hybrid_module, "release_freed_memory", lambda: calls.append(1) or True)
    hybrid, real = make_hybrid(tmp_path, cycles=2, release_memory=release)
    hybrid.train(real)
    assert len(calls) == (4 if release else 0)
    other, real = make_hybrid(tmp_path / "other", cycles=2, release_memory=not release)
    other.train(real)
    assert torch.equal(_weights(other), _weights(hybrid))


def test_validate_reports_both_models_by_the_one_rule(tmp_path):
    """The HYCO trainer's validate() is its partners' (one observed-validation implementation): the errors its
    trust weights and best cycle use."""
    hybrid, real = make_hybrid(tmp_path, cycles=1, validation=True)
    hybrid.train(real)
    result = hybrid.validate()
    assert result["physical"]["val_loss"] == hybrid.errors["physical"] == hybrid.history[-1]["physical_val_loss"]
    assert result["synthetic"]["val_loss"] == hybrid.errors["synthetic"]
    assert result["physical"]["val_loss_se"] == hybrid.error_se > 0
