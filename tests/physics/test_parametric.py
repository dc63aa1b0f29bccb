"""Parametric coefficients: learned profile numbers, bounds that hold for every trial point, gradients,
recovery with both optimisers, and one-line errors for bad input."""

import math
import subprocess
import sys

import pytest
import torch
from tests.training.toy_models import simulated_windows

from hyco.config.schema import PhysicalTrainerConfig
from hyco.errors import ConfigError
from hyco.evaluation.metrics import parameter_error, parametric_coefficient_error
from hyco.physics import build_physics
from hyco.training.physical import PhysicalTrainer

GAUSSIANS_ALL = {"kind": "parametric", "parameters": ["value", "heights", "centers", "widths"],
                 "guess": {"type": "gaussians", "value": 0.015, "heights": [0.02, 0.05],
                           "centers": [[0.4, 0.35], [0.6, 0.5]], "widths": [0.1, 0.2]}}
SINUSOID_ALL = {"kind": "parametric", "parameters": ["value", "amplitude", "phase"],
                "truth": {"type": "sinusoid", "value": 0.03, "amplitude": 0.4, "wavenumber": [1, 2], "phase": 0.3},
                "guess": {"type": "sinusoid", "value": 0.02, "amplitude": 0.2, "phase": -0.5}}
CONSTANT = {"kind": "parametric", "parameters": ["value"], "truth": {"type": "constant", "value": 0.03},
            "guess": {"type": "constant", "value": 0.01}}
HEIGHTS_CENTERS = {"kind": "parametric", "parameters": ["heights", "centers"],
                   "guess": {"type": "gaussians", "heights": [0.02, 0.02], "centers": [[0.4, 0.4], [0.6, 0.5]]}}
PROFILES = {"gaussians": GAUSSIANS_ALL, "sinusoid": SINUSOID_ALL, "constant": CONSTANT}


def heat(diffusivity: dict, dtype=torch.float64, resolution=(8, 8), **extra):
    return build_physics({"name": "heat", "resolution": list(resolution), "diffusivity": diffusivity, **extra},
                         "cpu", dtype)


def windows(model, sims=2, frames=6, rollout=2):
    return simulated_windows(model, sims, frames, rollout)


def test_parameters_by_name_and_the_fields_they_make():
    model = heat(HEIGHTS_CENTERS)
    assert model.parametric_coefficients == ["diffusivity"] and model.coefficient_specs[0].kind == "parametric"
    raw = model.initial_raw()
    assert raw["diffusivity"].shape == (6,)  # 2 heights + 2 centres of 2 coordinates
    values = model.parameter_values(raw)["diffusivity"]
    assert torch.allclose(values["heights"], torch.tensor([0.02, 0.02], dtype=torch.float64))
    assert torch.allclose(values["centers"], torch.tensor([[0.4, 0.4], [0.6, 0.5]], dtype=torch.float64))
    # the decoded field is the guess profile; with the true numbers it is the true field
    assert torch.allclose(model.decode(raw)["diffusivity"], model.initial_guess()["diffusivity"], rtol=1e-12)
    truth = model.true_parameters()["diffusivity"]
    true_raw = {"diffusivity": model.encode_parameters("diffusivity", truth)}
    assert torch.allclose(model.decode(true_raw)["diffusivity"], model.true_coefficients()["diffusivity"], rtol=1e-12)
    # known numbers (background, widths) come from the truth, not from the guess's defaults
    assert float(model.initial_guess()["diffusivity"].min()) > 0.01
    with pytest.raises(ValueError, match="parametric"):
        model.encode(model.true_coefficients())


@pytest.mark.parametrize("profile", list(PROFILES))
def test_gradient_through_the_profile_matches_finite_differences_float64(profile):
    model = heat(PROFILES[profile])
    state = model.initial_state(2, seed=1)
    weights = torch.randn(2, 3, *state.shape[1:], generator=torch.Generator().manual_seed(2), dtype=torch.float64)

    def objective(raw: torch.Tensor) -> torch.Tensor:
        return (model.rollout(state, model.decode({"diffusivity": raw}), 3) * weights).sum()

    raw = model.initial_raw()["diffusivity"]
    leaf = raw.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(leaf), leaf)
    for i in range(raw.numel()):  # every learned number, one at a time
        eps = 1e-5
        step = torch.zeros_like(raw)
        step[i] = eps
        with torch.no_grad():
            numeric = float((objective(raw + step) - objective(raw - step)) / (2 * eps))
        assert abs(numeric) > 1e-9, f"number {i} must change the rollout"
        assert float(grad[i]) == pytest.approx(numeric, rel=1e-5)


@pytest.mark.parametrize("profile", list(PROFILES))
def test_every_trial_point_is_inside_the_stability_bound(profile):
    """Default intervals push the worst case to the limit: random and extreme raw numbers (what a line
    search may try) all give fields strictly inside (lower, upper), and close to upper at the extreme."""
    model = heat(PROFILES[profile])
    spec, p = model.coefficient_specs[0], model.parametric("diffusivity")
    gen = torch.Generator().manual_seed(0)
    trials = [40 * (2 * torch.rand(p.size, generator=gen, dtype=torch.float64) - 1) for _ in range(200)]
    trials += [torch.full((p.size,), s, dtype=torch.float64) for s in (-1e3, -40.0, 40.0, 1e3)]
    highest = 0.0
    for raw in trials:
        field = model.decode({"diffusivity": raw})["diffusivity"]
        assert torch.isfinite(field).all()
        assert float(field.min()) > spec.lower and float(field.max()) < spec.upper
        highest = max(highest, float(field.max()))
    assert p.worst_case[1] < spec.upper and p.worst_case[1] > (1 - 1e-5) * spec.upper
    if profile != "gaussians":  # bumps rarely meet exactly on a cell centre; the others reach the bound
        assert highest > 0.99 * spec.upper


def test_bumps_stacked_at_the_bound_stay_stable_and_past_it_the_scheme_blows_up():
    model = heat(HEIGHTS_CENTERS)
    spec, p = model.coefficient_specs[0], model.parametric("diffusivity")
    # both bumps at full height on the same cell centre: the worst case the intervals allow
    numbers = {"heights": p.upper[:2].clone(), "centers": torch.full((2, 2), 4.5 / 8, dtype=torch.float64)}
    raw = model.encode_parameters("diffusivity", numbers)
    worst = model.decode({"diffusivity": raw})["diffusivity"]
    assert float(worst.max()) == pytest.approx(spec.upper, rel=1e-5) and float(worst.max()) < spec.upper
    state = model.initial_state(2, seed=0)
    with torch.no_grad():
        stable = model.rollout(state, {"diffusivity": worst}, 100)
        past = torch.full_like(worst, 1.25 * spec.upper)  # everywhere 1.125 x the stability limit
        unstable = model.rollout(state, {"diffusivity": past}, 100)
    assert stable.abs().max() <= state.abs().max() * 1.01
    assert not torch.isfinite(unstable).all() or unstable.abs().max() > 1e3 * state.abs().max()


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_trainer_recovers_heights_and_centres(optimizer):
    model = heat(HEIGHTS_CENTERS)
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=40 if optimizer == "lbfgsb" else 60, lr=0.1,
                                smoothness=1e-3)  # smoothness only regularises `field` coefficients: no effect here
    trainer = PhysicalTrainer(cfg, model, true_coefficients=model.true_coefficients())
    assert trainer.raw["diffusivity"].shape == (6,)
    assert float(trainer._smoothness(trainer.raw)) == 0.0
    start = trainer._coefficient_metrics()["diffusivity_parameter_rel_error"]
    metrics = trainer.train(windows(model), 2 if optimizer == "lbfgsb" else 1)
    assert start > 0.15
    tolerance = 1e-6 if optimizer == "lbfgsb" else 0.02
    assert metrics["diffusivity_parameter_rel_error"] < tolerance
    assert metrics["diffusivity_rel_error"] < tolerance
    assert metrics["rejected_steps"] == 0
    assert metrics["diffusivity.heights"] == pytest.approx([0.04, 0.03], rel=10 * tolerance)
    assert len(metrics["diffusivity.centers"]) == 4  # traces by name, flat


def test_checkpoint_round_trip_keeps_the_parameters(tmp_path):
    model = heat(HEIGHTS_CENTERS)
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=3), model)
    trainer.train(windows(model), 1)
    trainer.save(tmp_path / "physical.pt")
    again = PhysicalTrainer(PhysicalTrainerConfig(iterations=3), model)
    again.load(tmp_path / "physical.pt")
    assert torch.equal(again.raw["diffusivity"], trainer.raw["diffusivity"])
    assert torch.equal(again.coefficients()["diffusivity"], trainer.coefficients()["diffusivity"])


def test_known_parametric_coefficient_is_the_truth():
    model = heat({**HEIGHTS_CENTERS, "learn": False})
    assert model.parametric_coefficients == [] and model.learnable_coefficients == []
    assert torch.equal(model.decode(model.initial_raw())["diffusivity"], model.true_coefficients()["diffusivity"])


def test_user_bounds_and_domain_units():
    """Centres in domain coordinates (origin -3, size 6) with user bounds on heights and centres."""
    section = {"kind": "parametric", "parameters": ["heights", "centers"],
               "parameter_bounds": {"heights": [0.0, 0.1], "centers": [-3.0, 3.0]},
               "truth": {"type": "gaussians", "units": "domain", "value": 0.01, "heights": [0.05, 0.04],
                         "centers": [[1.25, 1.25], [-2.0, -2.0]], "widths": [0.7, 0.7]},
               "guess": {"type": "gaussians", "units": "domain", "heights": [0.02, 0.02],
                         "centers": [[0.5, 0.5], [-1.0, -1.0]]}}
    model = heat(section, bounds=[6.0, 6.0], substeps=16, resolution=(12, 12), origin=[-3.0, -3.0])
    p = model.parametric("diffusivity")
    assert p.lower.tolist() == [0.0, 0.0, -3, -3, -3, -3] and p.upper.tolist() == [0.1, 0.1, 3, 3, 3, 3]
    field = model.true_coefficients()["diffusivity"]
    peak = divmod(int(field.argmax()), 12)  # (row = y, column = x): the 0.05 bump at x = y = 1.25 -> cell 8
    assert peak == (8, 8)


def test_parameter_error_on_numbers_and_field():
    true = {"heights": torch.tensor([3.0, 2.5]), "centers": torch.tensor([[1.0, 1.0], [-2.0, -2.0]])}
    learned = {"heights": torch.tensor([3.0, 2.5]), "centers": torch.tensor([[1.0, 1.0], [-2.0, 1.0]])}
    err = parameter_error(learned, true)
    assert err["rel_error"] == pytest.approx(3.0 / math.sqrt(9 + 6.25 + 1 + 1 + 4 + 4))
    assert err["groups"]["heights"] == 0.0 and err["groups"]["centers"] == pytest.approx(3.0 / math.sqrt(10))
    both = parametric_coefficient_error(learned, true, torch.ones(4, 4) * 1.1, torch.ones(4, 4))
    assert both["parameter_rel_error"] == err["rel_error"] and both["field_rel_error"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="centers"):
        parameter_error({"centers": torch.zeros(3)}, true)


BAD = [
    ({**HEIGHTS_CENTERS, "parameters": ["amplitude"]}, "physics.diffusivity.parameters", "numbers of the gaussians"),
    ({**HEIGHTS_CENTERS, "parameters": []}, "physics.diffusivity.parameters", "at least one number"),
    ({**HEIGHTS_CENTERS, "parameter_bounds": {"heights": [0.0, 1.0]}}, "physics.diffusivity.parameter_bounds",
     "stability limit"),
    ({**HEIGHTS_CENTERS, "parameter_bounds": {"widths": [0.1, 0.2]}}, "physics.diffusivity.parameter_bounds",
     "only for learned numbers"),
    ({**HEIGHTS_CENTERS, "parameter_bounds": {"centers": [0.0, 1.5]}}, "physics.diffusivity.parameter_bounds.centers",
     "inside the domain"),
    ({**HEIGHTS_CENTERS, "guess": {**HEIGHTS_CENTERS["guess"], "centers": [[0.4, 1.2], [0.6, 0.5]]}},
     "physics.diffusivity.guess.centers[0]", "fractions in [0, 1]"),
    ({"kind": "field", "truth": {"type": "gaussians", "value": 0.01, "centers": [[-0.1, 0.5]], "widths": [0.1],
                                 "heights": [0.01]}}, "physics.diffusivity.truth.centers[0]", "inside the domain"),
    ({**HEIGHTS_CENTERS, "guess": {"type": "constant"}}, "physics.diffusivity.guess.type", "profile type"),
    ({"kind": "field", "parameters": ["heights"]}, "physics.diffusivity.parameters", "unless kind is parametric"),
    ({**SINUSOID_ALL, "parameter_bounds": {"amplitude": [-1.0, 0.5]}}, "physics.diffusivity.parameter_bounds.amplitude",
     "inside (-1, 1)"),
]


@pytest.mark.parametrize("section, key, words", BAD, ids=[f"{i}-{b[1].split('.')[-1]}" for i, b in enumerate(BAD)])
def test_bad_parametric_config_is_one_line_naming_the_key(section, key, words):
    with pytest.raises(ConfigError) as err:
        heat(section)
    message = str(err.value)
    assert message.startswith(key + ":") and words in message and "\n" not in message


def test_cli_bad_parametric_input_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "hyco", "generate", "experiment=heat_2d_quick", f"output_dir={tmp_path}/run",
         f"data_dir={tmp_path}/data", "physics.diffusivity.kind=parametric", "physics.diffusivity.guess.type=gaussians",
         "physics.diffusivity.parameters=[heights]", "physics.diffusivity.guess.heights=[0.01,0.01]",
         "+physics.diffusivity.parameter_bounds.heights=[0,1]"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("hyco: error:")]
    assert len(errors) == 1 and "physics.diffusivity.parameter_bounds" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
