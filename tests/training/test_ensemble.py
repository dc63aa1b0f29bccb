"""The ensemble's parts (hyco.training.ensemble): the members' drawn initial guesses, the interval formed from
their spread by hand, and the second noise draw they fit (hyco.data.observation)."""

import math

import numpy as np
import pytest
import torch

from hyco.config.schema import ObservationConfig
from hyco.data.observation import Observation
from hyco.evaluation.uncertainty import coefficient_entries
from hyco.physics import build_physics, shipped_config
from hyco.physics.coefficients import decode_value
from hyco.training.ensemble import draw_initial_raw, ensemble_posterior, member_seed, t_quantile


def burgers_model():
    section = {**shipped_config("burgers_1d"), "resolution": [16]}
    return build_physics(section, dtype=torch.float64)


def test_a_member_s_initial_guess_is_uniform_in_the_bounds_and_its_seed_s_own():
    """Viscosity has two bounds: sigmoid(raw) of the drawn guesses is uniform on (0, 1) (mean 1/2, variance
    1/12), every guess decodes inside the bounds, and a seed always draws the same guess."""
    model = burgers_model()
    spec = next(s for s in model.coefficient_specs if s.name == "viscosity")
    raw = model.encode(model.initial_guess())
    draws = torch.stack([draw_initial_raw(model, raw, ["viscosity"], member_seed(0, m))["viscosity"]
                         for m in range(2000)]).reshape(-1)
    uniform = torch.sigmoid(draws)
    assert abs(float(uniform.mean()) - 0.5) < 0.02  # standard error 0.0065
    assert abs(float(uniform.var()) - 1 / 12) < 0.006
    values = decode_value(draws, spec)
    assert float(values.min()) >= spec.lower and float(values.max()) <= spec.upper
    again = draw_initial_raw(model, raw, ["viscosity"], member_seed(0, 7))["viscosity"]
    assert torch.equal(again.reshape(-1), draws[7:8])
    assert member_seed(0, 1) != member_seed(1, 1) != member_seed(0, 2)


def test_the_interval_is_the_value_plus_minus_t_times_the_members_std_in_raw_space():
    """Four members at θ̂ + (-0.1, 0, 0.1, 0.2) in raw space: s = 0.1291, t_3 = 3.1824; the interval is the
    decoding of θ̂ ± t s, std its half-width / 1.96; the members' own mean and std are in physical units."""
    model = burgers_model()
    spec = next(s for s in model.coefficient_specs if s.name == "viscosity")
    raw = model.encode(model.true_coefficients())
    theta = float(raw["viscosity"])
    offsets = [-0.1, 0.0, 0.1, 0.2]
    members = [{"viscosity": raw["viscosity"] + d} for d in offsets]
    posterior = ensemble_posterior(model, raw, ["viscosity"], members, 1.0)
    s = float(np.std(offsets, ddof=1))
    assert s == pytest.approx(0.129099, rel=1e-5)
    assert t_quantile(4) == pytest.approx(3.182446, rel=1e-6)
    decode = lambda x: float(decode_value(torch.tensor(x, dtype=torch.float64), spec))  # noqa: E731
    c = posterior.coefficients["viscosity"]
    assert c.value[0] == pytest.approx(decode(theta), rel=1e-12)
    assert c.low[0] == pytest.approx(decode(theta - 3.182446 * s), rel=1e-6)
    assert c.high[0] == pytest.approx(decode(theta + 3.182446 * s), rel=1e-6)
    values = [decode(theta + d) for d in offsets]
    assert c.ensemble_mean[0] == pytest.approx(np.mean(values), rel=1e-12)
    assert c.ensemble_std[0] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    entry = coefficient_entries(posterior, None)["viscosity"]
    assert entry["uncertainty"] == "ensemble"
    assert entry["std"] == pytest.approx((c.high[0] - c.low[0]) / (2 * 1.959963984540054), rel=1e-12)
    assert entry["ensemble_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-9)
    summary = posterior.summary()
    assert summary["method"] == "ensemble" and summary["members"] == 4


def test_one_member_is_no_spread():
    model = burgers_model()
    raw = model.encode(model.true_coefficients())
    with pytest.raises(ValueError, match="evaluation.ensemble_size"):
        ensemble_posterior(model, raw, ["viscosity"], [raw], 1.0)


def test_a_parametric_coefficient_gets_its_members_correlations():
    """heat_paper's bumps: members whose first two numbers move together (and the rest independently) give those
    two a correlation of 1; the entry carries the members' mean and std per group."""
    model = build_physics({**shipped_config("heat_paper"), "resolution": [8, 8]}, dtype=torch.float64)
    raw = model.initial_raw()
    name = model.parametric_coefficients[0]
    size = raw[name].numel()
    generator = torch.Generator().manual_seed(3)
    members = []
    for _ in range(6):
        step = 0.1 * torch.randn(size, dtype=torch.float64, generator=generator)
        step[1] = step[0]
        members.append({**raw, name: raw[name] + step})
    posterior = ensemble_posterior(model, raw, [name], members, 1.0)
    assert posterior.correlation[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert abs(posterior.correlation[0, 2]) < 1
    entry = coefficient_entries(posterior, None)[name]
    groups = set(entry["parameter_ensemble_std"])
    assert groups == set(entry["parameter_std"]) and all(len(v) for v in entry["parameter_ensemble_mean"].values())


def test_a_member_s_data_are_the_observation_plus_an_independent_draw_of_the_given_std():
    config = ObservationConfig(noise_level=0.1)
    observation = Observation(config, (32, 32), 4, torch.tensor([2.0, 1.0]), [0, 1])
    clean = torch.zeros(4, 2, 32, 32)
    observed = observation.add_noise_(clean.clone(), "train", 0)
    observation.perturbation = (5, torch.tensor([0.3, 0.0]))
    perturbed = observation.add_noise_(clean.clone(), "train", 0)
    extra = perturbed - observed
    assert float(extra[:, 1].abs().max()) == 0.0  # std 0 on channel 1
    assert float(extra[:, 0].std()) == pytest.approx(0.3, rel=0.05)  # 4096 draws: std error ~1 %
    correlation = np.corrcoef(extra[:, 0].reshape(-1), observed[:, 0].reshape(-1))[0, 1]
    assert abs(correlation) < 4 / math.sqrt(extra[:, 0].numel())
    assert torch.equal(observation.add_noise_(clean.clone(), "train", 0), perturbed)  # the seed's own draw
    observation.perturbation = (6, torch.tensor([0.3, 0.0]))
    assert not torch.equal(observation.add_noise_(clean.clone(), "train", 0), perturbed)


def test_the_misfit_that_widens_the_members_noise_is_the_laplace_posterior_s():
    """misfit_ratio (what the ensemble widens its perturbation by) equals laplace_posterior's misfit, the noise of
    the initial state carried through the rollout included (same probes), on data with a term the model lacks."""
    from hyco.data.batch import Batch
    from hyco.training.laplace import laplace_posterior, misfit_ratio

    model = burgers_model()
    state = model.initial_state(2, 0)
    with torch.no_grad():
        targets = model.rollout(state, model.true_coefficients(), 3)
    ripple = 0.01 * torch.sin(3 * torch.linspace(0, 2 * math.pi, targets.shape[-1], dtype=torch.float64))
    batch = Batch(state, targets + ripple)
    raw, dynamic = model.encode(model.true_coefficients()), torch.as_tensor(model.dynamic_channels)
    known = torch.tensor([1e-3], dtype=torch.float64)
    posterior = laplace_posterior(model, raw, ["viscosity"], [batch], dynamic, noise=known, input_noise=known)
    ratio = misfit_ratio(model, raw, ["viscosity"], [batch], dynamic, known, carried=True)
    assert posterior.initial_noise and posterior.misfit > 10
    assert ratio == pytest.approx(posterior.misfit, rel=1e-9)


def test_a_member_started_at_the_optimum_starts_a_small_logistic_draw_away_from_it():
    """ensemble_start=optimum: the evaluated raw numbers plus OPTIMUM_JITTER times a logistic draw (std π/√3)."""
    from hyco.training.ensemble import OPTIMUM_JITTER

    model = burgers_model()
    raw = model.encode(model.initial_guess())
    optimum = {"viscosity": torch.tensor(-1.3, dtype=torch.float64).reshape(raw["viscosity"].shape)}
    draws = torch.stack([draw_initial_raw(model, raw, ["viscosity"], member_seed(0, m), around=optimum)["viscosity"]
                         for m in range(2000)]).reshape(-1)
    assert float(draws.mean()) == pytest.approx(-1.3, abs=0.01)  # standard error 0.004
    assert float(draws.std()) == pytest.approx(OPTIMUM_JITTER * math.pi / math.sqrt(3), rel=0.06)
