"""`physics.time_step`: the order of each scheme measured on a known solution, gradients through the Runge–Kutta
stages against finite differences, the stability gain, and the refusal where a model has no rate."""

import math

import pytest
import torch

from hyco.errors import ConfigError
from hyco.physics import build_physics
from hyco.physics.time_step import SCHEMES

N, MODE, KAPPA, FRAME_DT, FRAMES = 16, 3, 0.02, 0.1, 2


def heat_1d(time_step: str, substeps: int, kappa: float = KAPPA, dtype=torch.float64):
    return build_physics({"name": "heat", "resolution": [N], "bounds": [1.0], "dt": FRAME_DT, "substeps": substeps,
                          "time_step": time_step,
                          "diffusivity": {"kind": "scalar", "truth": {"type": "constant", "value": kappa},
                                          "guess": {"type": "constant", "value": kappa}}}, "cpu", dtype)


def mode_error(time_step: str, substeps: int) -> float:
    """Relative error after FRAMES frames of one Fourier mode, against the semi-discrete truth: the mode of the
    discrete Laplacian decays as exp(-κ λ t), λ = 4/dx² sin²(π k dx), so only the time step errs."""
    model = heat_1d(time_step, substeps)
    dx = 1.0 / N
    x = (torch.arange(N, dtype=torch.float64) + 0.5) * dx
    start = torch.sin(2 * math.pi * MODE * x).reshape(1, 1, N)
    lam = 4 / dx**2 * math.sin(math.pi * MODE * dx) ** 2
    exact = math.exp(-KAPPA * lam * FRAME_DT * FRAMES) * start
    end = model.rollout(start, model.true_coefficients(), FRAMES)[:, -1]
    return float((end - exact).norm() / exact.norm())


@pytest.mark.parametrize(("time_step", "low", "high"),
                         [("euler", 1.8, 2.2), ("heun", 3.6, 4.4), ("ssprk3", 7.2, 8.8), ("rk4", 14.0, 18.0)])
def test_error_falls_by_two_to_the_order_when_the_substep_halves(time_step, low, high):
    coarse, fine, finer = (mode_error(time_step, s) for s in (4, 8, 16))
    assert coarse > 1e-9  # above round-off, so that the ratios measure the scheme
    assert low <= coarse / fine <= high
    assert low <= fine / finer <= high


def test_higher_order_schemes_are_more_accurate_at_the_same_substep():
    errors = [mode_error(name, 4) for name in ("euler", "heun", "ssprk3", "rk4")]
    assert errors == sorted(errors, reverse=True)
    assert errors[3] < errors[0] / 100


def _directional(model, state, coeffs, weights, name, eps=1e-6):
    """(autograd, central finite difference) of sum(weights * rollout) along a random direction of `name`."""
    direction = torch.randn(coeffs[name].shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    value = coeffs[name].clone().requires_grad_(True)
    loss = (model.rollout(state, {**coeffs, name: value}, 2) * weights).sum()
    (grad,) = torch.autograd.grad(loss, value)
    with torch.no_grad():
        plus = (model.rollout(state, {**coeffs, name: coeffs[name] + eps * direction}, 2) * weights).sum()
        minus = (model.rollout(state, {**coeffs, name: coeffs[name] - eps * direction}, 2) * weights).sum()
    return float((grad * direction).sum()), float((plus - minus) / (2 * eps))


@pytest.mark.parametrize("time_step", ["heun", "rk4"])
@pytest.mark.parametrize(("section", "name"), [
    ({"name": "heat", "resolution": [8, 8]}, "diffusivity"),
    ({"name": "gray_scott", "resolution": [8, 8], "bounds": [10.0, 10.0], "dt": 2.0, "substeps": 4}, "D_v"),
    ({"name": "burgers", "resolution": [16], "bounds": [1.0], "dt": 0.01, "substeps": 2}, "viscosity"),
    ({"name": "burgers", "resolution": [8, 8], "viscosity": {"kind": "field"}}, "viscosity"),
])
def test_gradients_through_the_stages_match_finite_differences(time_step, section, name):
    model = build_physics({**section, "time_step": time_step}, "cpu", torch.float64)
    state = model.initial_state(2, seed=0)
    coeffs = model.true_coefficients()
    weights = torch.randn(2, 2, *state.shape[1:], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    autograd, finite = _directional(model, state, coeffs, weights, name)
    assert autograd == pytest.approx(finite, rel=1e-6, abs=1e-9)


def test_euler_is_the_model_step_unchanged():
    """The default keeps every published figure: explicit Euler through the rate equals T + h ∇·(κ∇T) by hand."""
    model = heat_1d("euler", 4)
    start = torch.randn(1, 1, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h, dx = FRAME_DT / 4, 1.0 / N
    by_hand = start
    for _ in range(4):
        by_hand = by_hand + h * KAPPA * (by_hand.roll(-1, -1) - 2 * by_hand + by_hand.roll(1, -1)) / dx**2
    assert torch.allclose(model.rollout(start, model.true_coefficients(), 1)[:, 0], by_hand, rtol=0, atol=1e-12)


def test_the_stability_gain_raises_the_bound_and_keeps_a_faster_mode_stable():
    euler, rk4 = heat_1d("euler", 4), heat_1d("rk4", 4)
    assert rk4.coefficient_specs[0].upper / euler.coefficient_specs[0].upper == pytest.approx(2.7853 / 2)
    # κ at 1.3 x Euler's limit (κ h 4/dx² = 2.6): the checkerboard mode grows under Euler, decays under RK4
    h, dx = FRAME_DT / 4, 1.0 / N
    kappa = torch.tensor(1.3 * dx**2 / (2 * h))
    checkerboard = torch.tensor([(-1.0) ** i for i in range(N)], dtype=torch.float64).reshape(1, 1, N)
    grown = euler.rollout(checkerboard, {"diffusivity": kappa}, 1).abs().max()
    decayed = rk4.rollout(checkerboard, {"diffusivity": kappa}, 1).abs().max()
    assert float(grown) == pytest.approx(1.6**4)  # |1 - 2.6| per substep
    assert float(decayed) == pytest.approx((1 - 2.6 + 2.6**2 / 2 - 2.6**3 / 6 + 2.6**4 / 24) ** 4)
    assert float(decayed) < 1


def test_a_model_without_a_rate_refuses_a_runge_kutta_step():
    with pytest.raises(ConfigError, match="time_step"):
        build_physics({"name": "advection", "resolution": [8, 8], "time_step": "heun"})


def _burgers_1d(time_step: str, substeps: int, n: int = 32):
    nu = {"type": "constant", "value": 0.01}
    return build_physics({"name": "burgers", "resolution": [n], "bounds": [1.0], "dt": 0.01, "substeps": substeps,
                          "time_step": time_step, "viscosity": {"kind": "scalar", "truth": nu, "guess": nu}},
                         "cpu", torch.float64)


def test_burgers_rate_is_central_advection_plus_conservative_diffusion_by_hand():
    model = _burgers_1d("rk4", 1)
    u = torch.randn(1, 1, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    h, dx, nu = 0.01, 1.0 / 32, 0.01

    def rate(v):
        return nu * (v.roll(-1, -1) - 2 * v + v.roll(1, -1)) / dx**2 - v * (v.roll(-1, -1) - v.roll(1, -1)) / (2 * dx)

    k1 = rate(u)
    k2 = rate(u + h / 2 * k1)
    k3 = rate(u + h / 2 * k2)
    k4 = rate(u + h * k3)
    by_hand = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    assert torch.allclose(model.rollout(u, model.true_coefficients(), 1)[:, 0], by_hand, rtol=0, atol=1e-12)


def test_burgers_euler_stays_semi_lagrangian_and_its_runge_kutta_steps_converge_at_their_order():
    """Euler keeps the model's own (semi-Lagrangian) step, so every Burgers figure made before stays; the Runge–Kutta
    schemes integrate the method of lines, whose time error falls by 2^order per halved substep."""
    start = _burgers_1d("euler", 2).initial_state(2, seed=0)
    euler_step, heun = (_burgers_1d(name, 2).rollout(start, _burgers_1d(name, 2).true_coefficients(), 1)
                        for name in ("euler", "heun"))
    assert float((euler_step - heun).abs().max()) > 1e-4  # two different discretisations, not the same one
    exact = _burgers_1d("rk4", 64).rollout(start, _burgers_1d("rk4", 64).true_coefficients(), 2)
    for name, order in (("heun", 2), ("rk4", 4)):
        errors = [float((_burgers_1d(name, s).rollout(start, _burgers_1d(name, s).true_coefficients(), 2)
                         - exact).norm()) for s in (2, 4)]
        assert errors[0] / errors[1] == pytest.approx(2**order, rel=0.15)


def test_the_data_hash_names_the_time_step_only_when_it_is_not_euler():
    assert "time_step" not in heat_1d("euler", 4).spec()["params"]
    assert heat_1d("rk4", 4).spec()["params"]["time_step"] == "rk4"
    assert set(SCHEMES) == {"euler", "heun", "ssprk3", "rk4"}
