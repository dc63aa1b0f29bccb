"""Physical behaviour of the shipped models: stability at the shipped dt, conservation, boundary
conditions, incompressibility, 1D on torch."""

import functools

import pytest
import torch
import torch.nn.functional as F

from hyco.physics import build_physics, shipped_config


def small(name: str, **overrides) -> dict:
    """A shipped config at a small resolution (same dt, substeps and coefficients)."""
    section = shipped_config(name)  # coefficient profiles are in fractions of the domain: they fit any grid
    section["resolution"] = [16, 16] if len(section["resolution"]) == 2 else [32]
    section.update(overrides)
    return section


@functools.cache
def shipped_small(name: str, dtype: torch.dtype = torch.float32):
    """Cached so that tests sharing a model also share its compiled (traced) step."""
    return build_physics(small(name), "cpu", dtype)


@pytest.mark.parametrize("name", ["burgers_1d", "burgers_2d", "heat_2d", "heat_2d_dirichlet", "advection_2d",
                                  pytest.param("smoke_2d", marks=pytest.mark.slow)])  # smoke: about 40 s
def test_finite_for_100_frames_at_the_shipped_dt(name):
    model = shipped_small(name)
    state = model.initial_state(2, seed=3)
    with torch.no_grad():
        out = model.rollout(state, model.true_coefficients(), 100)
    assert out.shape == (2, 100, *state.shape[1:])
    assert torch.isfinite(out).all()
    # plausible: nothing grows without bound (these PDEs do not create extrema out of nothing,
    # except smoke's velocity, which buoyancy accelerates)
    dyn = model.dynamic_channels
    if name != "smoke_2d":
        assert out[:, :, dyn].abs().max() <= state[:, dyn].abs().max() * 1.01
    else:
        assert out[:, :, :2].abs().max() < 5.0  # at most a few box lengths per time unit
    assert not torch.allclose(out[:, -1, dyn], state[:, dyn])  # and something happens


def test_periodic_heat_conserves_the_mean():
    model = shipped_small("heat_2d")
    state = model.initial_state(2, seed=0) + 0.3  # non-zero mean
    with torch.no_grad():
        out = model.rollout(state, model.true_coefficients(), 50)
    drift = (out.mean(dim=(-1, -2)) - state.mean(dim=(-1, -2))[:, None]).abs().max()
    assert drift < 1e-5
    assert out[:, -1].std() < state.std()  # while the temperature does diffuse


def test_dirichlet_heat_loses_heat_through_the_walls():
    model = build_physics(small("heat_2d_dirichlet"), "cpu", torch.float64)
    state = torch.ones(1, 1, 16, 16, dtype=torch.float64)  # hot plate, cold walls
    out = model.rollout(state, model.true_coefficients(), 20)[0, :, 0]
    totals = out.sum(dim=(-1, -2))
    assert (totals[1:] < totals[:-1]).all()  # monotone loss through the walls
    centre, edge = out[-1, 8, 8], out[-1, 8, 0]
    assert edge < 0.6 * centre  # the wall cell (half a cell from T = 0) is colder
    assert (out >= 0).all()  # maximum principle


def test_smoke_velocity_is_divergence_free_and_respects_the_walls():
    model = shipped_small("smoke_2d")
    with torch.no_grad():
        out = model.rollout(model.initial_state(2, seed=1), model.true_coefficients(), 20)
    u, v = out[:, :, 0], out[:, :, 1]  # lower faces; the upper wall faces are zero
    assert u[..., 0].abs().max() == 0 and v[..., 0, :].abs().max() == 0
    dx = model.dx[0]
    div = (F.pad(u, (0, 1))[..., 1:] - u) / dx + (F.pad(v, (0, 0, 0, 1))[..., 1:, :] - v) / model.dx[1]
    speed = out[:, :, :2].abs().max()
    assert speed > 0.01  # the smoke rises
    assert div.abs().max() < 1e-3 * speed / dx  # to the CG tolerance (1e-5), relative to |u| / dx
    smoke = out[:, :, 2]
    y = torch.arange(16, dtype=torch.float32)[:, None]
    height = (smoke * y).sum(dim=(-1, -2)) / smoke.sum(dim=(-1, -2))
    assert (height[:, -1] > height[:, 0]).all()  # buoyancy lifts the smoke's centre of mass


def test_burgers_1d_runs_on_torch_and_matches_a_y_invariant_2d_run():
    """One implementation for every dimension: a 2D flow (u(x), 0) evolves exactly like 1D u(x)."""
    common = {"name": "burgers", "dt": 0.01, "substeps": 2, "viscosity": {"truth": {"value": 0.005}}}
    one = build_physics({**common, "resolution": [32], "bounds": [1.0]}, "cpu", torch.float64)
    two = build_physics({**common, "resolution": [32, 4], "bounds": [1.0, 0.125]}, "cpu", torch.float64)
    state1 = one.initial_state(2, seed=4)
    out1 = one.rollout(state1, one.true_coefficients(), 30)
    assert out1.shape == (2, 30, 1, 32) and torch.isfinite(out1).all()
    state2 = torch.zeros(2, 2, 4, 32, dtype=torch.float64)
    state2[:, 0] = state1[:, 0, None, :]
    nu = one.true_coefficients()["viscosity"]
    out2 = two.rollout(state2, {"viscosity": nu}, 30)
    assert torch.allclose(out2[:, :, 0], out1[:, :, 0, None, :].expand(-1, -1, 4, -1), atol=1e-12)
    assert out2[:, :, 1].abs().max() < 1e-12


def test_advection_keeps_the_flow_static_and_zero_modulation_freezes_the_density():
    model = build_physics(small("advection_2d"), "cpu", torch.float32)
    state = model.initial_state(2, seed=0)
    coeffs = model.true_coefficients()
    out = model.rollout(state, coeffs, 5)
    assert torch.equal(out[:, :, 1:], state[:, None, 1:].expand(-1, 5, -1, -1, -1))  # static channels unchanged
    assert not torch.allclose(out[:, -1, 0], state[:, 0])
    frozen = model.rollout(state, {"modulation": torch.zeros(16, 16)}, 3)
    assert torch.allclose(frozen[:, :, 0], state[:, None, 0], atol=1e-6)
    # a uniform modulation m scales time: m = 2 for one frame equals m = 1 for two frames
    m1 = model.rollout(state, {"modulation": torch.tensor(0.5)}, 2)[:, 1]
    m2 = model.rollout(state, {"modulation": torch.tensor(1.0)}, 1)[:, 0]
    assert torch.allclose(m1[:, 0], m2[:, 0], atol=0.05)
