"""Fixed or learned per coefficient (`physics.<name>.learn`): the model says which, the trainer obeys."""

from dataclasses import dataclass, field

import pytest
import torch
from tests.training.toy_models import simulated_windows

from hyco.config.schema import PhysicalTrainerConfig
from hyco.physics import CoefficientParams, FieldSpec, PhysicalModel, build_physics, coefficient
from hyco.physics.burgers import diffusivity_spec
from hyco.physics.coefficients import CoefficientSpec
from hyco.physics.initial import fourier_fields
from hyco.physics.ops import PERIODIC, diffusion
from hyco.training.physical import PhysicalTrainer


class DecayDiffusion(PhysicalModel):
    """u_t = D Δu - r u on a small periodic grid: two scalar coefficients, either may be known."""

    @dataclass
    class Params:
        diffusivity: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.004, 0.002))
        rate: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.7, 0.3))

    def setup(self, p):
        self.set_domain([8, 8], [1.0, 1.0], dt=0.05, substeps=2)
        self.fields = (FieldSpec("u", 1),)
        self.coefficient_specs = (diffusivity_spec("diffusivity", "scalar", self.dx, self.substep_dt),
                                  CoefficientSpec("rate", "scalar", lower=0.0, upper=5.0))
        self.coefficient_config = {"diffusivity": p.diffusivity, "rate": p.rate}

    def step(self, state, coefficients, dt):
        u = state["u"]
        du = diffusion(u.values, coefficients["diffusivity"], self.dx, PERIODIC) - coefficients["rate"] * u.values
        return {"u": u.with_values(u.values + dt * du)}

    def sample_initial(self, gen, n):
        return {"u": fourier_fields(gen, n, 1, self.resolution, self.bounds, 2) + 1.0}


def model_with(known: str | None, dtype=torch.float64) -> DecayDiffusion:
    params = DecayDiffusion.Params()
    if known is not None:
        getattr(params, known).learn = False
    return DecayDiffusion(params, dtype=dtype)


def windows(model, sims=3, frames=6, rollout=2):
    return simulated_windows(model, sims, frames, rollout)


def test_model_says_which_coefficients_are_learned_and_known():
    model = model_with("rate")
    assert model.learnable_coefficients == ["diffusivity"] and model.known_coefficients == ["rate"]
    assert model.is_known("rate") and not model.is_known("diffusivity")
    truth, guess = model.true_coefficients(), model.initial_guess()
    assert torch.equal(guess["rate"], truth["rate"])  # a known coefficient starts at its truth
    assert not torch.equal(guess["diffusivity"], truth["diffusivity"])
    raw = model.encode(truth)
    assert torch.equal(raw["rate"], truth["rate"])  # passes through the parametrisation untouched
    assert torch.equal(model.decode(raw)["rate"], truth["rate"])
    assert model_with(None).learnable_coefficients == ["diffusivity", "rate"]


def test_learn_flag_from_a_physics_config_section():
    model = build_physics({"name": "heat", "resolution": [8, 8], "diffusivity": {"learn": False}})
    assert model.known_coefficients == ["diffusivity"] and model.learnable_coefficients == []
    assert torch.equal(model.initial_guess()["diffusivity"], model.true_coefficients()["diffusivity"])


def test_learning_setup_does_not_change_the_data_description():
    """The dataset hash comes from `spec()`: flipping `learn` or changing the guess must reuse the data."""
    base = build_physics({"name": "heat", "resolution": [8, 8]})
    other = build_physics({"name": "heat", "resolution": [8, 8],
                           "diffusivity": {"learn": False, "guess": {"value": 0.05}}})
    changed = build_physics({"name": "heat", "resolution": [8, 8], "diffusivity": {"truth": {"value": 0.02}}})
    assert base.spec() == other.spec() != changed.spec()


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_known_coefficient_is_bit_identical_after_training(optimizer):
    model = model_with("rate")
    truth = model.true_coefficients()
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=30, lr=0.1)
    trainer = PhysicalTrainer(cfg, model, true_coefficients=truth)
    assert trainer.learnable == ["diffusivity"]
    metrics = trainer.train(windows(model), 2)
    learned = trainer.coefficients()
    assert torch.equal(learned["rate"], truth["rate"])
    assert torch.equal(trainer.raw["rate"], truth["rate"])
    start = abs(0.002 - 0.004) / 0.004
    assert metrics["diffusivity_rel_error"] < (1e-4 if optimizer == "lbfgsb" else 0.2 * start)


def test_every_coefficient_known_trains_nothing_and_reports_the_loss():
    params = DecayDiffusion.Params()
    params.diffusivity.learn = params.rate.learn = False
    model = DecayDiffusion(params, dtype=torch.float64)
    for optimizer in ("lbfgsb", "adam"):
        trainer = PhysicalTrainer(PhysicalTrainerConfig(optimizer=optimizer), model)
        metrics = trainer.train(windows(model), 1)
        assert metrics["loss"] < 1e-25 and metrics["iterations"] == 0  # the truth fits its own data
        assert all(torch.equal(trainer.coefficients()[k], v) for k, v in model.true_coefficients().items())


def test_learning_a_known_coefficient_explicitly_is_refused():
    with pytest.raises(ValueError, match=r"\['rate'\] known"):
        PhysicalTrainer(PhysicalTrainerConfig(), model_with("rate"), learnable_params=["diffusivity", "rate"])
