"""Gray-Scott: the equations against a plain torch reference, seeded initial states, the stability bound,
gradients, and f, k known (bit-identical after training) or learned on request."""

import pytest
import torch
from tests.training.toy_models import simulated_windows

from hyco.config.schema import PhysicalTrainerConfig
from hyco.errors import ConfigError
from hyco.physics import build_physics, shipped_config
from hyco.physics.gray_scott import diffusivity_limit
from hyco.physics.rollout import substep_chunks
from hyco.training.physical import PhysicalTrainer

SMALL = {"name": "gray_scott", "resolution": [12, 12], "bounds": [18.75, 18.75], "dt": 5.0, "substeps": 10,
         "seeds": 2, "seed_size": 0.25}
_MODELS: dict = {}


def small(dtype=torch.float64, **overrides):
    key = (dtype, repr(sorted(overrides.items())))
    if key not in _MODELS:  # shared, so that tests also share the compiled (traced) steps
        _MODELS[key] = build_physics({**SMALL, **overrides}, "cpu", dtype)
    return _MODELS[key]


def reference_frame(u, v, du, dv, f, k, dx, h, substeps):
    """Gray-Scott by hand: explicit Euler, 5-point periodic Laplacian."""
    def laplacian(a):
        return sum(torch.roll(a, s, dim) - a for dim in (-1, -2) for s in (1, -1)) / dx**2

    for _ in range(substeps):
        uvv = u * v * v
        u, v = (u + h * (du * laplacian(u) - uvv + f * (1 - u)),
                v + h * (dv * laplacian(v) + uvv - (f + k) * v))
    return u, v


def test_equations_match_a_plain_torch_reference():
    model = small()
    state = model.initial_state(3, seed=4)
    truth = model.true_coefficients()
    out = model.rollout(state, truth, 2)
    u, v = state[:, 0], state[:, 1]
    for frame in range(2):
        u, v = reference_frame(u, v, 0.2, 0.08, 0.018, 0.051, 18.75 / 12, 0.5, 10)
        assert torch.allclose(out[:, frame, 0], u, rtol=0, atol=1e-13)
        assert torch.allclose(out[:, frame, 1], v, rtol=0, atol=1e-13)
    assert not torch.allclose(out[:, -1], state)


def test_seeded_initial_states():
    model = small()
    state = model.initial_state(4, seed=1)
    assert state.shape == (4, 2, 12, 12) and torch.equal(state, model.initial_state(4, seed=1))
    u, v = state[:, 0], state[:, 1]
    assert float(state.min()) >= 0 and float(state.max()) <= 1
    seeded = v > 0.2  # v = 0.25 +- 0.01 inside a seed, 0 +- 0.01 outside
    assert seeded.any(dim=(-1, -2)).all() and (~seeded).any(dim=(-1, -2)).all()
    assert torch.allclose(u[seeded], torch.full_like(u[seeded], 0.5), atol=0.0101)
    assert torch.allclose(u[~seeded], torch.ones_like(u[~seeded]), atol=0.0101)
    assert (u[~seeded] < 1).any()  # with a little noise
    assert not torch.equal(state, model.initial_state(4, seed=2))
    bumps = small(seed_shape="gaussian", noise=0.0).initial_state(2, seed=1)
    assert float(bumps[:, 1].max()) == pytest.approx(0.25, abs=0.03) and float(bumps[:, 1].min()) >= 0


def test_two_dynamic_fields_and_the_default_roles_of_the_coefficients():
    model = build_physics(shipped_config("gray_scott"), "cpu", torch.float32)
    assert [f.name for f in model.fields] == ["u", "v"] and model.dynamic_channels == [0, 1]
    assert model.learnable_coefficients == ["D_u", "D_v"] and model.known_coefficients == ["f", "k"]
    guess = model.initial_guess()
    assert float(guess["D_u"]) == pytest.approx(0.1) and float(guess["D_v"]) == pytest.approx(0.05)
    assert float(guess["f"]) == pytest.approx(0.018) and float(guess["k"]) == pytest.approx(0.051)
    learned_f = build_physics({**SMALL, "f": {"learn": True, "guess": {"value": 0.03}}})
    assert learned_f.learnable_coefficients == ["D_u", "D_v", "f"]


def test_stability_bound_numbers_and_a_rollout_at_the_bound():
    # the documented figures: 64x64 on 100 x 100, h = 0.5 and h = 1
    assert diffusivity_limit((1.5625, 1.5625), 0.5) == pytest.approx(0.6866, abs=1e-4)
    assert diffusivity_limit((1.5625, 1.5625), 1.0) == pytest.approx(0.2060, abs=1e-4)
    model = small()
    d_max = model.coefficient_specs[0].upper
    assert model.coefficient_specs[1].upper == d_max and model.coefficient_specs[2].upper == pytest.approx(0.5)
    state = model.initial_state(2, seed=0)
    at_bound = {**model.true_coefficients(), "D_u": torch.tensor(d_max, dtype=torch.float64),
                "D_v": torch.tensor(d_max, dtype=torch.float64)}
    with torch.no_grad():
        out = model.rollout(state, at_bound, 20)  # 200 substeps
    assert torch.isfinite(out).all() and float(out.min()) > -0.05 and float(out.max()) < 1.05


def test_too_long_a_substep_is_refused():
    with pytest.raises(ConfigError, match=r"^physics\.substeps: expected at least 4 "):
        build_physics({**SMALL, "dt": 5.0, "substeps": 3})


@pytest.mark.parametrize("name", ["D_u", "D_v", "f", "k"])
def test_gradients_match_finite_differences_float64(name):
    model = small()
    state = model.initial_state(2, seed=3)
    weights = torch.randn(2, 2, 2, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    coeffs = model.true_coefficients()

    def objective(value):
        return (model.rollout(state, {**coeffs, name: value}, 2) * weights).sum()

    leaf = coeffs[name].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(leaf), leaf)
    eps = 1e-6 * float(coeffs[name])
    with torch.no_grad():
        numeric = float((objective(coeffs[name] + eps) - objective(coeffs[name] - eps)) / (2 * eps))
    assert abs(numeric) > 1e-6
    assert float(grad) == pytest.approx(numeric, rel=1e-5)


def test_parametric_diffusivity_gradient_float64():
    model = small(D_u={"kind": "parametric", "parameters": ["value", "amplitude"],
                       "truth": {"type": "sinusoid", "value": 0.2, "amplitude": 0.3, "wavenumber": [1, 1]},
                       "guess": {"type": "sinusoid", "value": 0.15, "amplitude": 0.1}})
    assert model.parametric_coefficients == ["D_u"]
    raw = model.initial_raw()
    state = model.initial_state(2, seed=3)
    weights = torch.randn(2, 2, 2, 12, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    def objective(r):
        return (model.rollout(state, model.decode({**raw, "D_u": r}), 2) * weights).sum()

    leaf = raw["D_u"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(objective(leaf), leaf)
    for i in range(2):
        step = torch.zeros(2, dtype=torch.float64)
        step[i] = 1e-5
        with torch.no_grad():
            numeric = float((objective(raw["D_u"] + step) - objective(raw["D_u"] - step)) / 2e-5)
        assert float(grad[i]) == pytest.approx(numeric, rel=1e-5)


def test_jit_equals_eager_and_batch_equals_single_with_chunked_substeps():
    model = small(substeps=40, dt=20.0)  # four compiled calls of 10 substeps per frame
    assert model._chunks == [10, 10, 10, 10]
    state, coeffs = model.initial_state(3, seed=5), model.true_coefficients()
    compiled = model.rollout(state, coeffs, 2)
    model.jit = False
    try:
        eager = model.rollout(state, coeffs, 2)
    finally:
        model.jit = True
    assert torch.allclose(compiled, eager, rtol=1e-12, atol=1e-14)
    singles = torch.cat([model.rollout(state[i:i + 1], coeffs, 2) for i in range(3)])
    assert torch.allclose(compiled, singles, rtol=1e-12, atol=1e-14)


def test_substep_chunks():
    assert substep_chunks(4, 16) == [4] and substep_chunks(16, 16) == [16]
    assert substep_chunks(200, 16) == [10] * 20 and substep_chunks(64, 16) == [16] * 4
    assert substep_chunks(17, 16) == [9, 8] and sum(substep_chunks(101, 16)) == 101
    assert max(substep_chunks(101, 16)) <= 16 and len(set(substep_chunks(101, 16))) <= 2


def windows(model, sims=2, frames=5, rollout=1):
    return simulated_windows(model, sims, frames, rollout)


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_f_and_k_are_bit_identical_after_training(optimizer):
    model = small()
    truth = model.true_coefficients()
    cfg = PhysicalTrainerConfig(optimizer=optimizer, iterations=15 if optimizer == "lbfgsb" else 40, lr=0.1)
    trainer = PhysicalTrainer(cfg, model, true_coefficients=truth)
    metrics = trainer.train(windows(model), 1)
    learned = trainer.coefficients()
    for name in ("f", "k"):
        assert torch.equal(learned[name], truth[name]) and torch.equal(trainer.raw[name], truth[name])
    start = {"D_u": 0.5, "D_v": 0.375}  # relative errors of the guesses (0.1, 0.05)
    for name in ("D_u", "D_v"):
        assert metrics[f"{name}_rel_error"] < (1e-3 if optimizer == "lbfgsb" else 0.5 * start[name])
