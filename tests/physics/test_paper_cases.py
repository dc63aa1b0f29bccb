"""The HYCO paper's cases as shipped configs: heat_paper (coordinates, truth, initial states, stability,
recovery of the 4 parameters) and every new experiment composing, validating and building."""

import math

import pytest
import torch

from hyco.config.schema import PhysicalTrainerConfig
from hyco.config.validate import load
from hyco.physics import build_physics, shipped_config
from hyco.training.physical import PhysicalTrainer

EXPERIMENTS = ["heat_paper", "heat_paper_half", "heat_paper_full", "heat_paper_quick", "heat_paper_half_quick",
               "heat_paper_full_quick", "gray_scott", "gray_scott_quick", "gray_scott_paper",
               "gray_scott_paper_quick"]


def paper_coordinates(model):
    """Cell centres in the paper's coordinates, computed here independently: [-3, 3] split into n cells."""
    n = model.resolution[0]
    x = -3 + (torch.arange(n, dtype=torch.float64) + 0.5) * 6 / n
    return x[None, :].expand(n, n), x[:, None].expand(n, n)  # tensor order (y, x)


def test_heat_paper_truth_is_the_papers_kappa_in_its_coordinates():
    model = build_physics(shipped_config("heat_paper"), "cpu", torch.float64)
    assert model.origin == (-3.0, -3.0) and model.bounds == (6.0, 6.0) and model.boundary == "dirichlet"
    x, y = paper_coordinates(model)
    kappa = 0.1 + 3 * torch.exp(-((x - 1) ** 2 + (y - 1) ** 2)) + 2.5 * torch.exp(-((x + 2) ** 2 + (y + 2) ** 2))
    assert torch.allclose(model.true_coefficients()["diffusivity"], kappa, rtol=1e-12, atol=1e-14)
    truth = model.true_parameters()["diffusivity"]
    assert truth["heights"].tolist() == [3.0, 2.5] and truth["centers"].tolist() == [[1.0, 1.0], [-2.0, -2.0]]
    assert model.parametric("diffusivity").groups == ["heights", "centers"]  # background and widths known


def test_heat_paper_trial_points_stay_inside_the_stability_bound():
    model = build_physics(shipped_config("heat_paper"), "cpu", torch.float64)
    spec, p = model.coefficient_specs[0], model.parametric("diffusivity")
    h = model.substep_dt
    assert spec.upper == pytest.approx(0.9 * (6 / 32) ** 2 / (4 * h))  # 10.125, as the YAML says
    assert p.worst_case == pytest.approx((0.1, 9.1)) and p.worst_case[1] < spec.upper
    quick = load("run", ["experiment=heat_paper_quick"])
    q = build_physics(quick.physics, "cpu", torch.float64)
    assert q.parametric("diffusivity").worst_case[1] < q.coefficient_specs[0].upper


def test_heat_paper_initial_states_are_the_papers_with_a_variation():
    section = shipped_config("heat_paper")
    exact = build_physics({**section, "init_jitter": 0.0}, "cpu", torch.float64).initial_state(2, seed=0)
    x, y = paper_coordinates(build_physics(section, "cpu", torch.float64))
    u0 = -torch.exp(-((x + 1) ** 2 + (y + 1) ** 2)) + torch.exp(-((x - 1) ** 2 + (y - 1) ** 2))
    assert torch.allclose(exact[0, 0], u0, rtol=1e-12, atol=1e-14) and torch.equal(exact[0], exact[1])
    varied = build_physics(section, "cpu", torch.float64).initial_state(4, seed=0)
    assert not torch.allclose(varied[0], varied[1])
    differences = (varied[:, 0] - u0).abs().amax(dim=(-1, -2))
    assert (differences > 0.01).all() and (differences < 1.0).all()  # a variation of the paper's state
    assert (varied[:, 0, x.lt(0) & y.lt(0)].min(dim=1).values < -0.3).all()  # the cold bump stays lower left
    assert (varied[:, 0, x.gt(0) & y.gt(0)].max(dim=1).values > 0.3).all()


def test_observation_fractions_of_the_paper_quarter_and_half():
    """hyco fraction = (paper point + 3) / 6: [0, 3]^2 is [0.5, 1]^2; the half is x in [0, 3]."""
    quarter = load("run", ["experiment=heat_paper"]).observation
    half = load("run", ["experiment=heat_paper_half"]).observation
    full = load("run", ["experiment=heat_paper_full"]).observation
    assert quarter.spatial == "box" and quarter.box_lower == [0.5, 0.5] and quarter.box_upper == [1.0, 1.0]
    assert half.spatial == "box" and half.box_lower == [0.5, 0.0] and half.box_upper == [1.0, 1.0]
    assert full.spatial == "full"
    for paper, fraction in ((0.0, 0.5), (3.0, 1.0), (-3.0, 0.0), (1.0, 4 / 6)):
        assert (paper + 3) / 6 == pytest.approx(fraction)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_validates_and_builds(name):
    cfg = load("run", [f"experiment={name}"])
    assert cfg.experiment_name == name
    model = build_physics(cfg.physics, "cpu", torch.float32)
    truth = model.true_coefficients()
    for spec in model.coefficient_specs:
        assert float(truth[spec.name].min()) > spec.lower and float(truth[spec.name].max()) < spec.upper
    if name.startswith("gray_scott"):
        assert model.learnable_coefficients == ["D_u", "D_v"] and model.known_coefficients == ["f", "k"]
    else:
        assert model.parametric_coefficients == ["diffusivity"]
    if name.startswith("gray_scott_paper"):
        spacing = [b / n for b, n in zip(model.bounds, model.resolution)]
        assert spacing == [1.5625, 1.5625] and model.dt * (2 if name.endswith("quick") else 1) == 100.0


def test_physical_training_recovers_the_four_parameters_from_the_guess():
    """A small heat_paper (12x12, full observations): L-BFGS-B recovers the heights and centres."""
    section = {**shipped_config("heat_paper"), "resolution": [12, 12], "dt": 0.1, "substeps": 20}
    model = build_physics(section, "cpu", torch.float64)
    state = model.initial_state(2, seed=0)
    with torch.no_grad():
        traj = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), 5)], dim=1)
    windows = [(torch.cat([traj[:, t] for t in range(4)]), torch.cat([traj[:, t + 1:t + 3] for t in range(4)]))]
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=30), model, true_coefficients=model.true_coefficients())
    start = trainer._coefficient_metrics()["diffusivity_parameter_rel_error"]
    metrics = trainer.train(windows, 1)
    guess_error = math.sqrt(1.5**2 + 1.0**2 + 1.0**2 + 0.5**2 + 1.0**2 + 0.5**2) / math.sqrt(9 + 6.25 + 1 + 1 + 4 + 4)
    assert start == pytest.approx(guess_error)
    assert metrics["diffusivity_parameter_rel_error"] < 1e-4 and metrics["rejected_steps"] == 0
    assert metrics["diffusivity.heights"] == pytest.approx([3.0, 2.5], rel=1e-4)
