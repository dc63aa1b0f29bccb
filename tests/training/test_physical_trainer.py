"""Physical trainer logic on a pure-torch toy model (the PhiFlow models are tested in tests/physics)."""

import math

import pytest
import torch

from hyco.config.errors import DataError
from hyco.config.schema import PhysicalTrainerConfig
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
