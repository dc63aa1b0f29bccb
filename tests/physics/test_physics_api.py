"""The PhysicalModel API: config, coefficients, parametrisation, initial states, rollout contract."""

import dataclasses
import json

import pytest
import torch

from hyco.config.models.physics import RUNTIME_KEYS
from hyco.config.registry import PHYSICS
from hyco.errors import ConfigError
from hyco.physics import CoefficientSpec, PhysicalModel, build_physics, shipped_config
from hyco.physics.coefficients import ProfileParams, build_profile, decode_value, encode_value

SHIPPED = ["burgers_1d", "burgers_2d", "heat_2d", "heat_2d_dirichlet", "advection_2d", "smoke_2d", "gray_scott",
           "heat_paper"]


def _keys(obj, prefix=""):
    out = set()
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out.add(prefix + f.name)
        if dataclasses.is_dataclass(value):
            out |= _keys(value, prefix + f.name + ".")
    return out


def _yaml_keys(d, prefix=""):
    out = set()
    for k, v in d.items():
        out.add(prefix + k)
        if isinstance(v, dict) and k != "parameter_bounds":  # a free-form dict: group -> [lower, upper]
            out |= _yaml_keys(v, prefix + k + ".")
    return out


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_lists_every_key_and_builds(name):
    section = shipped_config(name)
    cls = PHYSICS.get(section["name"])
    assert _yaml_keys({k: v for k, v in section.items() if k not in ("name", *RUNTIME_KEYS)}) == _keys(cls.Params())
    model = build_physics(section, "cpu", torch.float32)
    assert isinstance(model, PhysicalModel)
    spec = model.spec()
    json.dumps(spec)  # JSON-able
    assert spec["name"] == section["name"]
    assert model.num_channels == sum(f.channels for f in model.fields)
    assert len(model.spatial_shape) == model.ndim == len(section["resolution"])
    assert model.bounds == tuple(section["bounds"])
    for c in model.coefficient_specs:
        value = model.true_coefficients()[c.name]
        assert value.shape == (() if c.kind == "scalar" else model.spatial_shape)
        assert float(value.min()) > c.lower and (c.upper is None or float(value.max()) < c.upper)


def test_channels_and_dynamic_channels():
    advection = build_physics({"name": "advection", "resolution": [8, 8]})
    assert [f.name for f in advection.fields] == ["density", "flow"]
    assert advection.num_channels == 3 and advection.dynamic_channels == [0]
    smoke = build_physics({"name": "smoke", "resolution": [8, 8]})
    assert smoke.dynamic_channels == [0, 1, 2] and smoke.fields[0].grid == "staggered"


def test_initial_state_is_reproducible_for_a_seed():
    model = build_physics({"name": "advection", "resolution": [8, 12]}, "cpu", torch.float64)
    a, b, c = model.initial_state(3, seed=7), model.initial_state(3, seed=7), model.initial_state(3, seed=8)
    assert a.shape == (3, 3, 12, 8) and a.dtype == torch.float64
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.isfinite(a).all()
    single = build_physics({"name": "advection", "resolution": [8, 12]}, "cpu", torch.float32).initial_state(3, 7)
    assert torch.allclose(single.double(), a, atol=1e-6)  # same states whatever the dtype


SPECS = [
    CoefficientSpec("log_bounded", "scalar", lower=1e-4, upper=0.05),
    CoefficientSpec("linear_bounded", "scalar", lower=0.0, upper=3.0),
    CoefficientSpec("positive", "scalar", lower=0.0, upper=None),
    CoefficientSpec("shifted", "scalar", lower=-1.0, upper=None),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_encode_decode_inverse_and_bounded(spec):
    hi = spec.upper if spec.upper is not None else spec.lower + 10.0
    values = torch.linspace(spec.lower, hi, 11, dtype=torch.float64)[1:-1]
    assert torch.allclose(decode_value(encode_value(values, spec), spec), values, rtol=1e-10)
    raw = torch.linspace(-40, 40, 81, dtype=torch.float64)
    decoded = decode_value(raw, spec)
    assert (decoded >= spec.lower).all() and torch.isfinite(decoded).all()
    if spec.upper is not None:
        assert (decoded <= spec.upper).all()
    assert (decoded[1:] >= decoded[:-1]).all()  # monotone
    # values at or past a bound encode to finite raw numbers
    assert torch.isfinite(encode_value(torch.tensor([spec.lower, hi + 1.0], dtype=torch.float64), spec)).all()


def test_model_encode_decode_round_trip_and_gradient_flows():
    model = build_physics({"name": "heat", "resolution": [8, 8]}, "cpu", torch.float64)
    truth = model.true_coefficients()
    raw = model.encode(truth)
    back = model.decode(raw)
    assert torch.allclose(back["diffusivity"], truth["diffusivity"], rtol=1e-9)
    leaf = raw["diffusivity"].clone().requires_grad_(True)
    out = model.rollout(model.initial_state(2, 0), model.decode({"diffusivity": leaf}), 2)
    (grad,) = torch.autograd.grad(out.square().sum(), leaf)
    assert grad.shape == (8, 8) and torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_profiles_from_numbers():
    res, bounds = (8, 4), (2.0, 1.0)
    const = build_profile(ProfileParams(type="constant", value=0.3), res, bounds)
    assert const.shape == (4, 8) and torch.allclose(const, torch.full((4, 8), 0.3, dtype=torch.float64))
    sine = build_profile(ProfileParams(type="sinusoid", value=1.0, amplitude=0.5, wavenumber=[1, 0]), res, bounds)
    assert torch.allclose(sine.mean(), torch.tensor(1.0, dtype=torch.float64))
    assert torch.allclose(sine[0], sine[3])  # varies along x only
    assert float(sine.min()) >= 0.5 and float(sine.max()) <= 1.5
    bump = build_profile(ProfileParams(type="gaussians", value=0.1, centers=[[0.25, 0.5]], widths=[0.1],
                                       heights=[1.0]), res, bounds)
    peak = (bump == bump.max()).nonzero()[0].tolist()
    assert peak in ([1, 1], [2, 1], [1, 2], [2, 2])  # near x = 0.5, y = 0.5
    assert float(bump.min()) >= 0.1


@pytest.mark.parametrize("section, key", [
    ({"name": "burgers", "viscosity": {"truth": {"value": 1.0}}}, "physics.viscosity.truth"),
    ({"name": "burgers", "viscosity": {"truth": {"type": "sinusoid"}}}, "physics.viscosity.truth.type"),
    ({"name": "burgers", "resolution": [32], "bounds": [1.0, 1.0]}, "physics.bounds"),
    ({"name": "heat", "boundary": "open"}, "physics.boundary"),
    ({"name": "heat", "diffusivity": {"truth": {"centers": [[0.5], [0.5]]}}}, "physics.diffusivity.truth.centers[0]"),
    ({"name": "burgers", "nu": 0.1}, "physics.nu"),
    ({"name": "no_such_pde"}, "physics.name"),
    ({"name": "heat", "batch_buckets": "often"}, "physics.batch_buckets"),
])
def test_bad_config_names_the_key(section, key):
    with pytest.raises(ConfigError) as err:
        build_physics(section)
    assert str(err.value).startswith(key + ":")
    assert "\n" not in str(err.value)


def test_rollout_contract():
    model = build_physics({"name": "burgers", "resolution": [8, 8]})
    state = model.initial_state(2, 0)
    coeffs = model.true_coefficients()
    out = model.rollout(state, coeffs, 3)
    assert out.shape == (2, 3, 2, 8, 8) and out.dtype == torch.float32
    assert model.rollout(state, coeffs, 0).shape == (2, 0, 2, 8, 8)
    with pytest.raises(ValueError, match="state"):
        model.rollout(state[:, :1], coeffs, 1)
    with pytest.raises(ValueError, match="viscosity"):
        model.rollout(state, {}, 1)
    with pytest.raises(ValueError, match="viscosty"):
        model.rollout(state, {**coeffs, "viscosty": coeffs["viscosity"]}, 1)
    with pytest.raises(ValueError, match="viscosity"):
        model.rollout(state, {"viscosity": torch.ones(4, 4)}, 1)
    field_nu = torch.full((8, 8), float(coeffs["viscosity"]))  # a scalar coefficient may be given as a field
    assert torch.allclose(model.rollout(state, {"viscosity": field_nu}, 3), out, atol=1e-6)


def test_batch_buckets_trace_few_sizes_and_change_nothing(monkeypatch):
    """Batches run as compiled calls of power-of-two sizes (padded); values and gradients are unchanged."""
    model = build_physics({"name": "heat", "resolution": [8, 8], "diffusivity": {"kind": "field"}}, "cpu",
                          torch.float64)
    model.max_batch_per_call = 4
    assert model.batch_pieces(11) == [(0, 4, 4), (4, 8, 4), (8, 11, 4)]
    assert model.batch_pieces(5) == [(0, 4, 4), (4, 5, 1)]
    assert model.batch_pieces(2) == [(0, 2, 2)]
    sizes = []
    inner = model._rollout_batch
    monkeypatch.setattr(model, "_rollout_batch", lambda s, c, n: sizes.append(s.shape[0]) or inner(s, c, n))
    state = model.initial_state(7, 3)
    coeffs = {k: v.clone().requires_grad_(True) for k, v in model.true_coefficients().items()}
    for size in (3, 5, 6, 7):
        model.rollout(state[:size], coeffs, 2)
    assert set(sizes) <= {1, 2, 4}
    out = model.rollout(state, coeffs, 2)
    (grad,) = torch.autograd.grad(out.square().sum(), list(coeffs.values()))
    model.batch_buckets = False
    sizes.clear()
    plain = model.rollout(state, coeffs, 2)
    (plain_grad,) = torch.autograd.grad(plain.square().sum(), list(coeffs.values()))
    assert sizes == [7]
    assert torch.allclose(out, plain, rtol=1e-12, atol=1e-14)
    assert torch.allclose(grad, plain_grad, rtol=1e-10, atol=1e-14)
