"""Gradients through rollouts: torch autograd vs central finite differences, jit vs eager, batching."""

import pytest
import torch

from hyco.physics import build_physics

STEPS = 3
# Tiny grids keep this file fast; coefficients are perturbed so that field gradients are not symmetric.
CASES = {
    "burgers_1d_scalar": {"name": "burgers", "resolution": [16], "bounds": [1.0], "dt": 0.01, "substeps": 2,
                          "viscosity": {"truth": {"value": 0.005}, "guess": {"value": 0.01}}},
    "burgers_2d_scalar": {"name": "burgers", "resolution": [8, 8]},
    "burgers_2d_field": {"name": "burgers", "resolution": [8, 8],
                         "viscosity": {"kind": "field", "truth": {"type": "constant", "value": 0.02}}},
    "heat_periodic_field": {"name": "heat", "resolution": [8, 8]},
    "heat_dirichlet_scalar": {"name": "heat", "resolution": [8, 8], "boundary": "dirichlet",
                              "diffusivity": {"kind": "scalar", "truth": {"type": "constant", "value": 0.03}}},
    "advection_field": {"name": "advection", "resolution": [8, 8]},
    "smoke_scalar": {"name": "smoke", "resolution": [8, 8], "pressure_tolerance": 1e-9},
    "smoke_field": {"name": "smoke", "resolution": [8, 8], "pressure_tolerance": 1e-9,
                    "buoyancy": {"kind": "field", "truth": {"type": "sinusoid", "value": 1.0}}},
}
_MODELS: dict = {}


def _marked(names):
    """Smoke's cases (a pressure solve per step, 10-45 s each) run with the slow suite."""
    return [pytest.param(n, marks=pytest.mark.slow) if n.startswith("smoke") else n for n in names]


def model_for(case: str, dtype: torch.dtype):
    key = (case, dtype)
    if key not in _MODELS:
        section = dict(CASES[case])
        if "pressure_tolerance" in section and dtype == torch.float32:
            section["pressure_tolerance"] = 1e-5  # what float32 can reach
        _MODELS[key] = build_physics(section, "cpu", dtype)
    return _MODELS[key]


def objective(model, state, coefficients, weights):
    """A fixed linear functional of the whole rollout: smooth, with every frame contributing."""
    return (model.rollout(state, coefficients, STEPS) * weights).sum()


def setup(case: str, dtype: torch.dtype, seed: int = 0, moving: bool = True):
    model = model_for(case, dtype)
    state = model.initial_state(2, seed)
    if model.registered_name() == "smoke" and moving:  # start moving so that every term is active
        state[:, :2] = 0.05 * torch.randn(state[:, :2].shape, generator=torch.Generator().manual_seed(1),
                                          dtype=torch.float64).to(dtype)
    coeffs = model.true_coefficients()
    gen = torch.Generator().manual_seed(seed + 1)
    weights = torch.randn(2, STEPS, *state.shape[1:], generator=gen, dtype=torch.float64).to(dtype)
    return model, state, coeffs, weights


def directional_check(model, state, coeffs, weights, name, eps, dtype):
    value = coeffs[name]
    direction = torch.randn(value.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64).to(dtype)
    direction = direction / direction.abs().max() * value.abs().max()  # relative perturbation
    leaf = value.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(model, state, {**coeffs, name: leaf}, weights), leaf)
    analytic = float((grad * direction).sum())
    with torch.no_grad():
        plus = objective(model, state, {**coeffs, name: value + eps * direction}, weights)
        minus = objective(model, state, {**coeffs, name: value - eps * direction}, weights)
    numeric = float((plus - minus) / (2 * eps))
    return analytic, numeric


@pytest.mark.parametrize("case", _marked(CASES))
def test_coefficient_gradient_matches_finite_differences_float64(case):
    model, state, coeffs, weights = setup(case, torch.float64)
    name = model.coefficient_specs[0].name
    analytic, numeric = directional_check(model, state, coeffs, weights, name, 1e-4, torch.float64)
    assert abs(numeric) > 1e-8, "the objective must depend on the coefficient"
    assert analytic == pytest.approx(numeric, rel=1e-4)


@pytest.mark.parametrize("case", _marked(
    ["burgers_2d_scalar", "heat_periodic_field", "advection_field", "smoke_scalar"]))
def test_coefficient_gradient_matches_finite_differences_float32(case):
    # smoke starts at rest here: then all motion is due to buoyancy and float32 round-off and the CG
    # tolerance do not drown the finite difference
    model, state, coeffs, weights = setup(case, torch.float32, moving=False)
    name = model.coefficient_specs[0].name
    analytic, numeric = directional_check(model, state, coeffs, weights, name, 3e-2, torch.float32)
    assert analytic == pytest.approx(numeric, rel=1e-2)


@pytest.mark.parametrize("case", ["burgers_2d_scalar", "heat_dirichlet_scalar", "smoke_scalar"])
def test_state_gradient_matches_finite_differences(case):
    model, state, coeffs, weights = setup(case, torch.float64)
    # smoke: perturb the velocity only; MacCormack's limiter makes the rollout only piecewise smooth in
    # the smoke density, so finite differences in that direction depend on the step size
    channels = [0, 1] if case.startswith("smoke") else model.dynamic_channels
    direction = torch.zeros_like(state)
    direction[:, channels] = torch.randn(direction[:, channels].shape, generator=torch.Generator().manual_seed(5),
                                         dtype=torch.float64)
    if case.startswith("smoke"):  # closed box: the lower wall faces are zero by definition
        direction[:, 0, :, 0] = 0
        direction[:, 1, 0, :] = 0
    leaf = state.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(model, leaf, coeffs, weights), leaf)
    eps = 1e-5
    with torch.no_grad():
        numeric = (objective(model, state + eps * direction, coeffs, weights)
                   - objective(model, state - eps * direction, coeffs, weights)) / (2 * eps)
    assert float((grad * direction).sum()) == pytest.approx(float(numeric), rel=1e-4)


@pytest.mark.parametrize("case", _marked(CASES))
def test_jit_equals_eager_values_and_gradients(case):
    model, state, coeffs, weights = setup(case, torch.float64)
    name = model.coefficient_specs[0].name
    results = []
    for jit in (True, False):
        model.jit = jit
        try:
            leaf = coeffs[name].clone().requires_grad_(True)
            out = model.rollout(state, {**coeffs, name: leaf}, STEPS)
            (grad,) = torch.autograd.grad((out * weights).sum(), leaf)
            results.append((out.detach(), grad))
        finally:
            model.jit = True
    (out_jit, grad_jit), (out_eager, grad_eager) = results
    assert torch.allclose(out_jit, out_eager, rtol=1e-9, atol=1e-12)
    assert torch.allclose(grad_jit, grad_eager, rtol=1e-6, atol=1e-12 * float(grad_eager.abs().max()))


@pytest.mark.parametrize("case", _marked(
    ["burgers_1d_scalar", "heat_periodic_field", "advection_field", "smoke_field"]))
def test_batch_equals_single_rollouts(case):
    model, _, coeffs, _ = setup(case, torch.float64)
    states = model.initial_state(3, seed=11)
    batched = model.rollout(states, coeffs, STEPS)
    singles = torch.cat([model.rollout(states[i:i + 1], coeffs, STEPS) for i in range(3)])
    assert torch.allclose(batched, singles, rtol=1e-10, atol=1e-7 if case.startswith("smoke") else 1e-12)


def test_gradient_flows_through_the_parametrisation_into_raw_parameters():
    model, state, coeffs, weights = setup("heat_periodic_field", torch.float64)
    raw = {k: v.clone().requires_grad_(True) for k, v in model.encode(model.initial_guess()).items()}
    loss = objective(model, state, model.decode(raw), weights)
    (grad,) = torch.autograd.grad(loss, raw["diffusivity"])
    assert grad.shape == model.spatial_shape and torch.isfinite(grad).all() and grad.abs().max() > 0


def test_float64_backward_restores_phiml_precision():
    """The float64 backward pass of smoke's pressure solve runs at 64 bits and leaves the global setting as it was."""
    from phiml.backend import get_precision

    model, state, coeffs, weights = setup("smoke_scalar", torch.float64)
    before = get_precision()
    leaf = coeffs["buoyancy"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(model, state, {"buoyancy": leaf}, weights), leaf)
    assert torch.isfinite(grad) and get_precision() == before == 32


@pytest.mark.parametrize("case", ["burgers_2d_scalar", "heat_periodic_field"])
def test_a_fresh_trace_gives_what_every_later_call_gives(case):
    """A resumed run lives in a new process, whose first call of each traced shape must equal the uninterrupted
    run's n-th call bit for bit (torch.jit's first run of a trace reordered Burgers' float64 gradient)."""
    model = build_physics(dict(CASES[case]), "cpu", torch.float64)  # a model of its own: no trace made yet
    state = model.initial_state(2, 0)
    coeffs = model.true_coefficients()
    weights = torch.randn(2, STEPS, *state.shape[1:], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    name = model.coefficient_specs[0].name
    results = []
    for _ in range(3):
        leaf = coeffs[name].clone().requires_grad_(True)
        out = model.rollout(state, {**coeffs, name: leaf}, STEPS)
        (grad,) = torch.autograd.grad((out * weights).sum(), leaf)
        results.append((out.detach(), grad))
    for out, grad in results[:-1]:
        assert torch.equal(out, results[-1][0])
        assert torch.equal(grad, results[-1][1])
