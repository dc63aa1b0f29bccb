"""Physical trainer logic on a pure-torch toy model (the PhiFlow models are tested in tests/physics)."""

import math

import pytest
import torch

from hyco.config.schema import PhysicalTrainerConfig
from hyco.data.batch import Batch
from hyco.errors import DataError
from hyco.training.physical import PhysicalTrainer
from tests.training.toy_models import ToyDiffusion1D


def windows(model, sims=4, frames=6, rollout=2, mask=None):
    """All sliding windows of `sims` true trajectories, as one batch in the trainer contract."""
    state = model.initial_state(sims, seed=0)
    with torch.no_grad():
        traj = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), frames - 1)], dim=1)
    inputs = torch.cat([traj[:, t] for t in range(frames - rollout)])
    targets = torch.cat([traj[:, t + 1:t + 1 + rollout] for t in range(frames - rollout)])
    batch = (inputs, targets) if mask is None else (inputs, targets, mask.expand(len(inputs), rollout, 1, -1))
    return [batch]


@pytest.mark.parametrize("optimizer,iterations,epochs", [("lbfgsb", 20, 2), ("adam", 60, 3)])
def test_recovers_scalar_coefficient(optimizer, iterations, epochs):
    model = ToyDiffusion1D()
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=iterations, lr=0.1)
    trainer = PhysicalTrainer(cfg, model, true_coefficients=model.true_coefficients())
    first = trainer.train(windows(model), 1)
    metrics = trainer.train(windows(model), epochs - 1) if epochs > 1 else first
    assert trainer.epoch == epochs  # state persists across calls
    tolerance = 1e-4 if optimizer == "lbfgsb" else 2e-2
    assert metrics["kappa_rel_error"] < tolerance
    assert abs(float(trainer.coefficients()["kappa"]) - 0.3) < 0.3 * tolerance


def test_tiny_loss_is_rescaled_so_lbfgs_does_not_stop_early():
    model = ToyDiffusion1D()
    (inputs, targets), = windows(model)
    scaled = [(inputs * 1e-4, targets * 1e-4)]  # loss ~1e-10: unscaled, SciPy would stop at once
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=20), model, true_coefficients=model.true_coefficients())
    assert trainer.train(scaled, 1)["kappa_rel_error"] < 1e-3


def test_field_coefficient_with_smoothness():
    model = ToyDiffusion1D(field=True)
    cfg = PhysicalTrainerConfig(iterations=60, smoothness=1e-6)
    trainer = PhysicalTrainer(cfg, model, true_coefficients=model.true_coefficients())
    before = trainer.train(windows(model, sims=6, frames=8), 1)["kappa_rel_error"]
    after = trainer.train(windows(model, sims=6, frames=8), 2)["kappa_rel_error"]
    assert after < before and after < 0.1


def test_mask_hides_unobserved_values():
    model = ToyDiffusion1D()
    mask = torch.zeros(1, 1, 1, 16)
    mask[..., 4:12] = 1.0
    (inputs, targets, masks), = windows(model, mask=mask)
    corrupted = targets.clone()
    corrupted[..., :4] += 100.0  # garbage where nothing is observed
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=20), model, true_coefficients=model.true_coefficients())
    assert trainer.train([(inputs, corrupted, masks)], 1)["kappa_rel_error"] < 1e-3


class ExplodingToy(ToyDiffusion1D):
    """Blows up (NaN) when kappa exceeds a stability limit, like an explicit scheme past its CFL limit."""

    def rollout(self, state, coefficients, steps):
        out = super().rollout(state, coefficients, steps)
        return out * torch.where(coefficients["kappa"] > 0.35, torch.nan, 1.0)


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_non_finite_steps_are_rejected(optimizer):
    model = ExplodingToy()
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=30, lr=2.0)
    trainer = PhysicalTrainer(cfg, model, true_coefficients=model.true_coefficients())
    metrics = trainer.train(windows(model), 2)
    assert all(torch.isfinite(v).all() for v in trainer.coefficients().values())
    assert math.isfinite(metrics["loss"])
    assert trainer.rejected_steps > 0 and sum(e["rejected_steps"] for e in metrics["history"]) == trainer.rejected_steps


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_resume_equals_uninterrupted(optimizer, tmp_path):
    model = ToyDiffusion1D()
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=5, lr=0.05)
    data = windows(model)
    straight = PhysicalTrainer(cfg, model)
    straight.train(data, 3)
    first = PhysicalTrainer(cfg, model, run_dir=tmp_path / "run")
    first.train(data, 2)
    first.save(tmp_path / "physical.pt")
    resumed = PhysicalTrainer(cfg, model)
    resumed.load(tmp_path / "physical.pt")
    resumed.train(data, 1)
    assert resumed.epoch == 3
    assert torch.equal(resumed.raw["kappa"], straight.raw["kappa"])
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 2


def test_checkpoint_for_another_model_is_refused(tmp_path):
    cfg = PhysicalTrainerConfig()
    PhysicalTrainer(cfg, ToyDiffusion1D(field=True)).save(tmp_path / "field.pt")
    with pytest.raises(DataError, match="field.pt: made for coefficients"):
        PhysicalTrainer(cfg, ToyDiffusion1D()).load(tmp_path / "field.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pt: not a readable"):
        PhysicalTrainer(cfg, ToyDiffusion1D()).load(tmp_path / "junk.pt")


def test_memory_budget_bounds_the_windows_per_objective():
    model = ToyDiffusion1D()
    (inputs, targets), = windows(model, sims=8, frames=10)
    small = PhysicalTrainer(PhysicalTrainerConfig(memory_budget_gb=1e-6), model)
    metrics = small.train([(inputs, targets)], 1)
    assert 1 <= metrics["windows"] < len(inputs)
    explicit = PhysicalTrainer(PhysicalTrainerConfig(batch_windows=5), model)
    assert explicit.train([(inputs, targets)], 1)["windows"] == 5


def noisy_windows(model, noise: float, sims=4, frames=6, rollout=2, seed=5):
    (inputs, targets), = windows(model, sims, frames, rollout)
    g = torch.Generator().manual_seed(seed)
    return [(inputs, targets + noise * targets.std() * torch.randn(targets.shape, generator=g, dtype=targets.dtype))]


def test_noise_floor_is_the_standard_error_of_the_loss():
    model = ToyDiffusion1D()
    data = noisy_windows(model, 0.1)
    trainer = PhysicalTrainer(PhysicalTrainerConfig(), model)
    groups = [Batch.of(data[0]).to(dtype=trainer.dtype)]
    objective = trainer.objective(groups)
    loss = float(objective(trainer.raw).detach())
    inputs, targets = data[0]
    with torch.no_grad():
        error2 = (model.rollout(inputs, model.initial_guess(), targets.shape[1]) - targets).double().square()
    assert loss == pytest.approx(error2.mean().item(), rel=1e-9)
    expected = math.sqrt(error2.var(unbiased=False).item() / error2.numel())
    assert objective.noise_floor() == pytest.approx(expected, rel=1e-6)
    halved = trainer.objective(groups, (0.5, 1.0))  # the data term's weight scales its floor (no interaction here)
    halved(trainer.raw)
    assert halved.noise_floor() == pytest.approx(0.5 * expected, rel=1e-6)


def test_early_stop_ends_at_the_noise_floor_with_the_same_coefficients():
    """On noisy data, epochs after convergence change the loss by less than its standard error: with early
    stop they are not run, and the coefficient is exactly what the full run ends with."""
    model = ToyDiffusion1D()
    data = noisy_windows(model, 0.05)
    runs = {}
    for early_stop in (False, True):
        trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=10, early_stop=early_stop), model,
                                  true_coefficients=model.true_coefficients())
        runs[early_stop] = (trainer, trainer.train(data, 5))
    (full, full_metrics), (stopped, stopped_metrics) = runs[False], runs[True]
    history = full_metrics["history"]
    assert full.epoch == 5 and not full_metrics["converged"]
    assert stopped.epoch == 2 and stopped_metrics["converged"]
    assert history[0]["loss"] - history[1]["loss"] < history[1]["noise_floor"]  # why epoch 2 was the last
    assert [h["evaluations"] for h in stopped_metrics["history"]] == [h["evaluations"] for h in history[:2]]
    assert stopped_metrics["kappa_rel_error"] == pytest.approx(full_metrics["kappa_rel_error"], rel=1e-6)
    assert stopped_metrics["kappa_rel_error"] < 0.05


def test_a_converged_objective_is_skipped_until_it_changes(tmp_path):
    """HYCO calls `train` once per cycle: an unchanged objective (same windows in another order, same loss
    weights, same coefficients) after an epoch at the noise floor costs no evaluation; new data do, and the
    state survives a checkpoint."""
    model = ToyDiffusion1D()
    data = noisy_windows(model, 0.05)
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=10), model, true_coefficients=model.true_coefficients())
    while not trainer.train(data, 1)["converged"]:
        assert trainer.epoch < 5
    coefficients = trainer.coefficients()["kappa"].clone()
    reordered = [tuple(t.flip(0) for t in data[0])]
    skipped = trainer.train(reordered, 1)
    assert skipped["skipped"] and skipped["evaluations"] == 0 and skipped["converged"]
    assert torch.equal(trainer.coefficients()["kappa"], coefficients)
    trainer.save(tmp_path / "p.pt")
    resumed = PhysicalTrainer(PhysicalTrainerConfig(iterations=10), model)
    resumed.load(tmp_path / "p.pt")
    assert resumed.train(data, 1)["evaluations"] == 0
    assert trainer.train(data, 1, (1.0, 0.5))["evaluations"] > 0  # other weights: another objective
    assert trainer.train(noisy_windows(model, 0.05, seed=9), 1)["evaluations"] > 0  # other data
    off = PhysicalTrainer(PhysicalTrainerConfig(iterations=10, early_stop=False), model)
    off.load(tmp_path / "p.pt")
    assert off.train(data, 1)["evaluations"] > 0


def test_early_stop_leaves_noise_free_fits_running():
    """Without noise the loss keeps falling by far more than its standard error: nothing is stopped early
    until the fit is at round-off."""
    model = ToyDiffusion1D()
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=3), model, true_coefficients=model.true_coefficients())
    first = trainer.train(windows(model), 1)
    assert not first["converged"] and first["iterations"] == 3
