"""`PhysicalModel`: one API for every differentiable PDE, shipped or user-defined.

A subclass says WHAT the PDE is (fields, domain, coefficients, one solver substep, random initial
states); this base class does the rest the same way for every model: torch <-> PhiFlow conversion,
batched jit-compiled rollouts (all substeps of a stored frame in one compiled call), coefficient
truth/guess from config, and the bounded parametrisation used while learning.

Writing a model (see README "Adding your own PDE")::

    @PHYSICS.register("my_pde")
    class MyPDE(PhysicalModel):
        @dataclass
        class Params: ...
        def setup(self, p):            # set_domain(...), fields, set_coefficients((spec, config), ...)
        def step(self, state, coefficients, dt):   # one substep: dict of Fields -> dict of new dynamic Fields
        def sample_initial(self, gen, n):          # dict of float64 CPU tensors [n, channels, *space]

A model whose substep is u + h du/dt defines `rate(state, coefficients)` (dict of the dynamic fields' time
derivatives, as values) instead of `step`: explicit Euler is then the default step, and `physics.time_step` picks a
higher-order Runge–Kutta scheme (hyco.physics.time_step).
"""

from __future__ import annotations

import dataclasses

import torch
from phi import math
from phi.field import CenteredGrid, Field, StaggeredGrid
from phi.geom import Box
from phiml.math import channel, extrapolation

from hyco.config.models.physics import FieldSpec
from hyco.errors import ConfigError, require
from hyco.physics.coefficients import (
    LEARNING_KEYS,
    CoefficientParams,
    CoefficientSpec,
    check_in_bounds,
    coefficient_value,
    decode_value,
    domain_range,
    encode_value,
)
from hyco.physics.convert import AXES, FieldLayout
from hyco.physics.initial import generator
from hyco.physics.parametric import ParametricCoefficient
from hyco.physics.rollout import CompiledRollout
from hyco.physics.time_step import Tableau, runge_kutta_step, scheme

GRIDS = ("centered", "staggered")
CPU = torch.device("cpu")


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "float64": torch.float64}[str(dtype)]


class PhysicalModel(CompiledRollout):
    """Base class of the differentiable PDE models (see module docstring for the subclass contract); the
    rollouts are hyco.physics.rollout's."""

    Params: type | None = None
    boundary: str = "periodic"  # periodic | closed/dirichlet/neumann: chooses the Field templates' extrapolation

    def __init__(self, params=None, device: torch.device | str = CPU,
                 dtype: torch.dtype | str = torch.float32):
        self.params = params if params is not None else (self.Params() if self.Params else None)
        self.device = torch.device(device)
        self.dtype = _torch_dtype(dtype)
        self.fields: tuple[FieldSpec, ...] = ()
        self.coefficient_specs: tuple[CoefficientSpec, ...] = ()
        self.coefficient_config: dict[str, CoefficientParams] = {}
        self.time_step = str(getattr(self.params, "time_step", "euler"))
        self._tableau: Tableau = scheme(self.time_step)
        if self.time_step != "euler" and not self.has_rate:
            raise ConfigError("physics.time_step", f"euler ({type(self).__name__} defines `step`, not `rate`: no "
                                                   "Runge-Kutta scheme applies)", self.time_step)
        self.setup(self.params)
        self._validate()
        self._templates = tuple(self.make_template(f) for f in self.fields)
        self._layouts = tuple(FieldLayout(t) for t in self._templates)
        self._init_rollout()

    # ----------------------------------------------------------------- subclass hooks
    def setup(self, params) -> None:
        """Call `set_domain` and set `fields`, `coefficient_specs`, `coefficient_config`."""
        raise NotImplementedError

    def step(self, state: dict[str, Field], coefficients: dict[str, math.Tensor], dt: float) -> dict[str, Field]:
        """One explicit solver substep of length `dt`; returns the new dynamic fields. Defined by a model without
        a `rate`; a model with one gets explicit Euler, u + dt rate(u)."""
        if not self.has_rate:
            raise NotImplementedError(f"{type(self).__name__} defines neither `step` nor `rate`")
        return {name: state[name].with_values(state[name].values + dt * r)
                for name, r in self.rate(state, coefficients).items()}

    def rate(self, state: dict[str, Field], coefficients: dict[str, math.Tensor]) -> dict[str, math.Tensor]:
        """The time derivative of each dynamic field (name -> values), for a model whose substep is a rate."""
        raise NotImplementedError

    @property
    def has_rate(self) -> bool:
        return type(self).rate is not PhysicalModel.rate

    def substep(self, state: dict[str, Field], coefficients: dict[str, math.Tensor], dt: float) -> dict[str, Field]:
        """One substep with the configured time step (`physics.time_step`): the model's `step` for explicit Euler,
        else the Runge–Kutta scheme on its `rate`."""
        if self.time_step == "euler":
            return self.step(state, coefficients, dt)
        return runge_kutta_step(self._tableau, self.rate, state, coefficients, dt)

    @property
    def stability_gain(self) -> float:
        """How much larger a diffusion coefficient the time step keeps stable than explicit Euler (same substep)."""
        return self._tableau.stability_gain

    @property
    def rate_evaluations(self) -> int:
        """Evaluations of the model per substep (cost and autograd memory scale with it)."""
        return self._tableau.evaluations

    def sample_initial(self, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        """Random initial fields, float64 on the CPU, each `[n, channels, *space]`, drawn from `gen`."""
        raise NotImplementedError

    def field_boundary(self, spec: FieldSpec):
        """The PhiFlow extrapolation of a field's template (periodic, else zero / closed walls)."""
        return extrapolation.PERIODIC if self.boundary == "periodic" else extrapolation.ZERO

    # ----------------------------------------------------------------- domain
    def set_domain(self, resolution, bounds, dt: float, substeps: int = 1, origin=None) -> None:
        """Grid cells and domain size per axis (x first), time between stored frames, substeps per frame;
        `origin`: the coordinates of the domain's lower corner (default 0), used by profiles and initial
        states given in domain coordinates (`units: domain`)."""
        self.resolution = tuple(int(n) for n in resolution)
        self.bounds = tuple(float(b) for b in bounds)
        self.origin = tuple(float(o) for o in origin) if origin is not None else (0.0,) * len(self.resolution)
        self.ndim = len(self.resolution)
        self.spatial_shape = tuple(reversed(self.resolution))
        self.dx = tuple(b / n for b, n in zip(self.bounds, self.resolution))
        self.dt = float(dt)
        self.substeps = int(substeps)

    def set_domain_from(self, p) -> None:
        """`set_domain` and `fields` from a Params with the keys of the shipped models (`resolution`, `bounds`,
        `dt`, `substeps`, an optional `origin`, and `state_fields()`)."""
        self.set_domain(p.resolution, p.bounds, p.dt, p.substeps, origin=getattr(p, "origin", None) or None)
        self.fields = p.state_fields()

    def set_coefficients(self, *coefficients: tuple[CoefficientSpec, CoefficientParams]) -> None:
        """The model's coefficients, each as (spec: name, kind and bounds; its config section): sets
        `coefficient_specs` and `coefficient_config` together."""
        self.coefficient_specs = tuple(spec for spec, _ in coefficients)
        self.coefficient_config = {spec.name: config for spec, config in coefficients}

    @property
    def substep_dt(self) -> float:
        return self.dt / self.substeps

    @property
    def num_channels(self) -> int:
        return sum(f.channels for f in self.fields)

    @property
    def dynamic_channels(self) -> list[int]:
        out, start = [], 0
        for f in self.fields:
            if f.dynamic:
                out += list(range(start, start + f.channels))
            start += f.channels
        return out

    def make_template(self, spec: FieldSpec) -> Field:
        """A zero-valued Field with the geometry, boundary and channel layout of `spec`."""
        box = Box(**{AXES[d]: (self.origin[d], self.origin[d] + self.bounds[d]) for d in range(self.ndim)})
        res = {AXES[d]: self.resolution[d] for d in range(self.ndim)}
        bc = self.field_boundary(spec)
        if spec.grid == "staggered":
            return StaggeredGrid(0, bc, bounds=box, **res)
        if spec.channels == 1:
            return CenteredGrid(0, bc, bounds=box, **res)
        if spec.channels == self.ndim:
            values = math.zeros(channel(vector=",".join(AXES[: self.ndim])))
        else:
            values = math.zeros(channel(c=spec.channels))
        return CenteredGrid(values, bc, bounds=box, **res)

    def templates(self) -> tuple[Field, ...]:
        return self._templates

    def _validate(self) -> None:
        names = [f.name for f in self.fields]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: fields must be non-empty with unique names, got {names}")
        for f in self.fields:
            if f.grid not in GRIDS:
                raise ValueError(f"field {f.name!r}: grid must be one of {GRIDS}, got {f.grid!r}")
            if f.grid == "staggered" and f.channels != self.ndim:
                raise ValueError(f"staggered field {f.name!r} needs {self.ndim} channels, got {f.channels}")
        if not any(f.dynamic for f in self.fields):
            raise ValueError(f"{type(self).__name__}: at least one field must be dynamic")
        spec_names = [c.name for c in self.coefficient_specs]
        if sorted(spec_names) != sorted(self.coefficient_config):
            raise ValueError(f"coefficient_specs {spec_names} and coefficient_config "
                             f"{sorted(self.coefficient_config)} must name the same coefficients")
        self._parametric: dict[str, ParametricCoefficient] = {}
        for spec in self.coefficient_specs:
            cfg = self.coefficient_config[spec.name]
            if cfg.kind == "parametric" and cfg.learn:
                self._parametric[spec.name] = ParametricCoefficient(
                    f"physics.{spec.name}", cfg, spec, self.resolution, self.bounds, self.origin)
            elif cfg.truth.type == "gaussians" and cfg.kind != "scalar":
                ranges = domain_range(cfg.truth.units, self.bounds, self.origin)
                for j, centre in enumerate(cfg.truth.centers):
                    require(all(lo <= float(c) <= hi for c, (lo, hi) in zip(centre, ranges)),
                            f"physics.{spec.name}.truth.centers[{j}]", "a centre inside the domain", list(centre))
            for which in ("truth", "guess") if cfg.learn else ("truth",):
                check_in_bounds(coefficient_value(cfg, which, self.resolution, self.bounds, self.origin), spec,
                                f"physics.{spec.name}.{which}")

    # ----------------------------------------------------------------- coefficients
    @property
    def learnable_coefficients(self) -> list[str]:
        """Names of the coefficients the config marks as learned (`physics.<name>.learn`, default true):
        what `PhysicalTrainer` learns unless told otherwise."""
        return [s.name for s in self.coefficient_specs if self.coefficient_config[s.name].learn]

    @property
    def known_coefficients(self) -> list[str]:
        """Names of the coefficients that are known (`learn: false`): their true value is used throughout."""
        return [s.name for s in self.coefficient_specs if not self.coefficient_config[s.name].learn]

    def is_known(self, name: str) -> bool:
        return name in self.known_coefficients

    def _coefficients(self, which: str) -> dict[str, torch.Tensor]:
        out = {}
        for s in self.coefficient_specs:
            config = self.coefficient_config[s.name]
            source = "truth" if not config.learn else which  # a known coefficient starts (and stays) at the truth
            out[s.name] = coefficient_value(config, source, self.resolution, self.bounds, self.origin).to(
                device=self.device, dtype=self.dtype)
        return out

    def true_coefficients(self) -> dict[str, torch.Tensor]:
        return self._coefficients("truth")

    def initial_guess(self) -> dict[str, torch.Tensor]:
        """Where learning starts; a known coefficient's guess is its truth."""
        return self._coefficients("guess")

    def encode(self, coeffs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Physical values -> unconstrained raw parameters. A known coefficient passes through unchanged,
        so that decoding gives back exactly its true value (no round-off through the parametrisation).
        A parametric coefficient's raw parameters are its learned numbers: see `encode_parameters`."""
        out = {}
        for s in self.coefficient_specs:
            if s.name in self._parametric:
                raise ValueError(f"coefficient {s.name!r} is parametric: a field does not give its numbers back; "
                                 "use initial_raw() or encode_parameters()")
            value = torch.as_tensor(coeffs[s.name])
            out[s.name] = value if self.is_known(s.name) else encode_value(value, s)
        return out

    def decode(self, raw: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Raw parameters -> coefficient values (a parametric coefficient's field from its numbers)."""
        out = {}
        for s in self.coefficient_specs:
            value = torch.as_tensor(raw[s.name])
            if s.name in self._parametric:
                out[s.name] = self._parametric[s.name].field(value)
            else:
                out[s.name] = value if self.is_known(s.name) else decode_value(value, s)
        return out

    def initial_raw(self) -> dict[str, torch.Tensor]:
        """The raw parameters learning starts from (on the model's device and dtype): the encoded guess,
        a parametric coefficient's guessed numbers, a known coefficient's truth."""
        guess = self.initial_guess()
        out = {}
        for s in self.coefficient_specs:
            if s.name in self._parametric:
                numbers = self._parametric[s.name].guess_numbers()
                out[s.name] = self._parametric[s.name].encode(numbers).to(device=self.device, dtype=self.dtype)
            else:
                out[s.name] = guess[s.name] if self.is_known(s.name) else encode_value(guess[s.name], s)
        return out

    # ----------------------------------------------------------------- parametric coefficients
    @property
    def parametric_coefficients(self) -> list[str]:
        """Names of the learned parametric coefficients (`kind: parametric`)."""
        return list(self._parametric)

    def parametric(self, name: str) -> ParametricCoefficient:
        return self._parametric[name]

    def parameter_values(self, raw: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
        """The learned numbers of every parametric coefficient, by coefficient and group (e.g.
        `{"diffusivity": {"heights": [2], "centers": [2, 2]}}`), from raw parameters such as a trainer's."""
        return {name: p.decode(torch.as_tensor(raw[name])) for name, p in self._parametric.items()}

    def true_parameters(self) -> dict[str, dict[str, torch.Tensor]]:
        """The true values of the learned numbers (float64), shaped as `parameter_values`."""
        return {name: p.true_numbers() for name, p in self._parametric.items()}

    def initial_parameters(self) -> dict[str, dict[str, torch.Tensor]]:
        """The guessed values of the learned numbers (float64), shaped as `parameter_values`."""
        return {name: p.guess_numbers() for name, p in self._parametric.items()}

    def encode_parameters(self, name: str, numbers: dict[str, torch.Tensor]) -> torch.Tensor:
        """Learned numbers of parametric coefficient `name` -> its raw parameters (model dtype and device)."""
        return self._parametric[name].encode(numbers).to(device=self.device, dtype=self.dtype)

    # ----------------------------------------------------------------- states and rollouts
    def initial_state(self, n: int, seed: int) -> torch.Tensor:
        parts = self.sample_initial(generator(seed), int(n))
        tensors = []
        for f in self.fields:
            t = parts[f.name]
            expected = (int(n), f.channels, *self.spatial_shape)
            if tuple(t.shape) != expected:
                raise ValueError(f"sample_initial: field {f.name!r} has shape {list(t.shape)}, expected {expected}")
            tensors.append(t)
        return torch.cat(tensors, dim=1).to(device=self.device, dtype=self.dtype)

    # ----------------------------------------------------------------- description
    @classmethod
    def registered_name(cls) -> str:
        from hyco.config.registry import PHYSICS

        for name, obj in PHYSICS.items():
            if obj is cls:
                return name
        return cls.__name__

    def spec(self) -> dict:
        """What determines the generated data (it is hashed to name and validate datasets): the learning
        setup of the coefficients (guess, learn, parameters) is left out, so changing it reuses the data."""
        return {
            "name": self.registered_name(),
            "fields": [dataclasses.asdict(f) for f in self.fields],
            "num_channels": self.num_channels,
            "dynamic_channels": self.dynamic_channels,
            "ndim": self.ndim,
            "spatial_shape": list(self.spatial_shape),
            "resolution": list(self.resolution),
            "bounds": list(self.bounds),
            "origin": list(self.origin),
            "boundary": self.boundary,
            "dt": self.dt,
            "substeps": self.substeps,
            "coefficients": [dataclasses.asdict(c) for c in self.coefficient_specs],
            "params": _data_params(self.params),
        }


def _data_params(params) -> dict:
    """`params` as a dict without the learning-only keys of its coefficients (see `PhysicalModel.spec`)."""
    if not dataclasses.is_dataclass(params):
        return {}
    out = dataclasses.asdict(params)
    if out.get("time_step") == "euler":  # the default leaves the hash of data made before the key existed as it was
        del out["time_step"]
    for f in dataclasses.fields(params):
        if isinstance(getattr(params, f.name), CoefficientParams):
            out[f.name] = {k: v for k, v in out[f.name].items() if k not in LEARNING_KEYS}
    return out
