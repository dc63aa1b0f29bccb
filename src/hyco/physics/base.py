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
        def setup(self, p):            # set_domain(...), fields, coefficient_specs, coefficient_config
        def step(self, state, coefficients, dt):   # one substep: dict of Fields -> dict of new dynamic Fields
        def sample_initial(self, gen, n):          # dict of float64 CPU tensors [n, channels, *space]
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from phi import math
from phi.field import CenteredGrid, Field, StaggeredGrid
from phi.geom import Box
from phiml.math import channel, extrapolation

from hyco.config.errors import require
from hyco.config.models.physics import RUNTIME_KEYS, FieldSpec  # noqa: F401  (RUNTIME_KEYS: re-exported)
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
from hyco.physics.convert import AXES, FieldLayout, tensor_to_grid_values
from hyco.physics.initial import generator
from hyco.physics.parametric import ParametricCoefficient
from hyco.utils.threads import poll as poll_threads

GRIDS = ("centered", "staggered")
CPU = torch.device("cpu")


def _torch_dtype(dtype: torch.dtype | str) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return {"float32": torch.float32, "float64": torch.float64}[str(dtype)]


class PhysicalModel:
    """Base class of the differentiable PDE models (see module docstring for the subclass contract)."""

    Params: type | None = None
    boundary: str = "periodic"  # periodic | closed/dirichlet/neumann: chooses the Field templates' extrapolation
    # Substeps per compiled call. torch.jit.trace's warm-up (trace + profiling-executor optimisation) grows
    # faster than linearly with the traced graph -- measured for Gray-Scott at 32x32: 3 s for 10 substeps,
    # 100 s for 50, 12 min for 100 -- while running a frame as several calls costs next to nothing.
    max_substeps_per_call: int = 16
    # Shape-stable traces: PhiML traces the compiled frame once per batch size (and grad flag), and a trace costs
    # 0.5-1 s for Burgers at 64x64, ~10 s for a reaction-diffusion model. A run meets many batch sizes
    # (validation, completion, generated chunks and their remainders, objectives), so a batch runs as calls of
    # `max_batch_per_call` samples and one last call padded up to the next power of two (padding repeats the
    # last sample; its frames are dropped): at most log2(max_batch_per_call) + 1 sizes are traced per run.
    batch_buckets: bool = True
    max_batch_per_call: int = 32

    def __init__(self, params=None, device: torch.device | str = CPU,
                 dtype: torch.dtype | str = torch.float32):
        self.params = params if params is not None else (self.Params() if self.Params else None)
        self.device = torch.device(device)
        self.dtype = _torch_dtype(dtype)
        self.jit = True  # False runs the same step eagerly (tests compare both)
        self.fields: tuple[FieldSpec, ...] = ()
        self.coefficient_specs: tuple[CoefficientSpec, ...] = ()
        self.coefficient_config: dict[str, CoefficientParams] = {}
        self.setup(self.params)
        self._validate()
        self._templates = tuple(self.make_template(f) for f in self.fields)
        self._layouts = tuple(FieldLayout(t) for t in self._templates)
        # A frame runs as one compiled call per chunk of substeps (see `max_substeps_per_call`). Two compiled
        # versions per chunk size: torch.jit.trace bakes in which inputs required grad when it traced, and a
        # trace made without grad on an input silently drops gradients that flow through it later (e.g.
        # through grid_sample coordinates). The grad version always gets inputs that all require grad.
        self._chunks = substep_chunks(self.substeps, self.max_substeps_per_call)
        self._compiled: dict[tuple[int, bool], object] = {}

    # ----------------------------------------------------------------- subclass hooks
    def setup(self, params) -> None:
        """Call `set_domain` and set `fields`, `coefficient_specs`, `coefficient_config`."""
        raise NotImplementedError

    def step(self, state: dict[str, Field], coefficients: dict[str, math.Tensor], dt: float) -> dict[str, Field]:
        """One solver substep of length `dt`; returns the new values of the dynamic fields."""
        raise NotImplementedError

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

    def _coefficient_tensors(self, coefficients: dict[str, torch.Tensor]) -> tuple[math.Tensor, ...]:
        out = []
        for s in self.coefficient_specs:
            if coefficients.get(s.name) is None:
                raise ValueError(f"missing coefficient {s.name!r}; expected {[c.name for c in self.coefficient_specs]}")
            value = torch.as_tensor(coefficients[s.name]).to(device=self.device, dtype=self.dtype)
            if value.dim() != 0 and tuple(value.shape) != self.spatial_shape:
                raise ValueError(f"coefficient {s.name!r}: expected shape [] or {list(self.spatial_shape)}, "
                                 f"got {list(value.shape)}")
            out.append(tensor_to_grid_values(value, self.ndim))
        return tuple(out)

    def _advance(self, values: tuple[math.Tensor, ...], coefficients: tuple[math.Tensor, ...], substeps: int
                 ) -> tuple[math.Tensor, ...]:
        """`substeps` solver substeps; jit-compiled as one unit. Takes field VALUES and returns the dynamic
        ones: rebuilding Fields (StaggeredGrid geometry) outside the compiled code costs more than a step."""
        state = {f.name: t.with_values(v) for f, t, v in zip(self.fields, self._templates, values)}
        coeffs = {s.name: c for s, c in zip(self.coefficient_specs, coefficients)}
        for _ in range(substeps):
            state.update(self.step(state, coeffs, self.substep_dt))
        return tuple(state[f.name].values for f in self.fields if f.dynamic)

    def _advancer(self, substeps: int, grad: bool):
        """The function running `substeps` substeps: compiled (one per chunk size and grad flag) or eager."""
        if not self.jit:
            return lambda values, coefficients: self._advance(values, coefficients, substeps)
        key = (substeps, grad)
        if key not in self._compiled:
            def advance(values, coefficients):
                return self._advance(values, coefficients, substeps)

            self._compiled[key] = math.jit_compile(advance)
        return self._compiled[key]

    def batch_pieces(self, size: int) -> list[tuple[int, int, int]]:
        """How a batch of `size` runs (see `batch_buckets`): `(start, stop, padded size)` per compiled call."""
        if not self.batch_buckets or size <= 0:
            return [(0, size, size)]
        limit = max(1, int(self.max_batch_per_call))
        pieces = [(start, start + limit, limit) for start in range(0, size - size % limit, limit)]
        rest = size % limit
        if rest:
            pieces.append((size - rest, size, min(limit, 1 << (rest - 1).bit_length())))
        return pieces

    def rollout(self, state: torch.Tensor, coefficients: dict[str, torch.Tensor], steps: int) -> torch.Tensor:
        """Frames t+1..t+steps of `state` [B, C, *space] as [B, steps, C, *space]; differentiable."""
        expected = (self.num_channels, *self.spatial_shape)
        if state.dim() != self.ndim + 2 or tuple(state.shape[1:]) != expected:
            raise ValueError(f"state: expected shape [B, {', '.join(map(str, expected))}], got {list(state.shape)}")
        state = state.to(device=self.device, dtype=self.dtype)
        if int(steps) < 0:
            raise ValueError(f"steps: expected an integer >= 0, got {steps}")
        if int(steps) == 0:
            return state.new_zeros(state.shape[0], 0, *state.shape[1:])
        pieces = self.batch_pieces(state.shape[0])
        if len(pieces) == 1 and pieces[0][2] == state.shape[0]:
            return self._rollout_batch(state, coefficients, steps)
        outputs = []
        for start, stop, size in pieces:
            part = state[start:stop]
            if size > stop - start:  # pad with copies of the last sample: a traced size, frames dropped below
                part = torch.cat([part, part[-1:].expand(size - (stop - start), *part.shape[1:])])
            outputs.append(self._rollout_batch(part, coefficients, steps)[: stop - start])
        return torch.cat(outputs)

    def _rollout_batch(self, state: torch.Tensor, coefficients: dict[str, torch.Tensor], steps: int) -> torch.Tensor:
        """`rollout` of one compiled batch (`state` already checked, on the model's device and dtype)."""
        unknown = sorted(set(coefficients) - {s.name for s in self.coefficient_specs})
        if unknown:
            raise ValueError(f"unknown coefficient(s) {unknown}; expected {[c.name for c in self.coefficient_specs]}")
        coefficients = {s.name: torch.as_tensor(coefficients[s.name]) if s.name in coefficients else None
                        for s in self.coefficient_specs}
        need_grad = torch.is_grad_enabled() and (state.requires_grad or any(
            c is not None and c.requires_grad for c in coefficients.values()))
        advancers = [self._advancer(n, need_grad) for n in self._chunks]
        if self.jit and need_grad:  # see __init__: every input of the grad trace requires grad
            state = _requiring_grad(state)
            coefficients = {k: None if c is None else _requiring_grad(c) for k, c in coefficients.items()}
        scope = None
        if need_grad and (self.dtype != torch.float32 or self.device.type != "cpu"):
            scope = _BackwardScope(self)
            state = scope.wrap_input(state)
            coefficients = {k: scope.wrap_input(c) for k, c in coefficients.items()}
        with self.phiml_context():
            coeffs = self._coefficient_tensors(coefficients)
            parts = torch.split(state, [f.channels for f in self.fields], dim=1)
            values = [layout.to_values(p) for p, layout in zip(parts, self._layouts)]
            dynamic = [i for i, f in enumerate(self.fields) if f.dynamic]
            history: list[list[torch.Tensor]] = [[] for _ in self.fields]
            # Without autograd, frames are written straight into the output (one copy); with autograd,
            # stack + cat, whose backward is cheaper than a chain of in-place slice writes.
            out = None if need_grad else state.new_empty((state.shape[0], int(steps), *state.shape[1:]))
            starts = [sum(f.channels for f in self.fields[:i]) for i in range(len(self.fields))]
            for k in range(int(steps)):
                poll_threads()  # the thread count follows other processes' load (hyco.utils.threads)
                for advance in advancers:  # the frame's substeps, in one or a few compiled calls
                    new = advance(tuple(values), coeffs)
                    for i, value in zip(dynamic, new):
                        values[i] = value
                for i in dynamic:
                    value = values[i]
                    tensor = self._layouts[i].to_tensor(value)
                    if out is None:
                        history[i].append(tensor)
                    else:
                        out[:, k, starts[i]:starts[i] + self.fields[i].channels] = tensor
        if out is not None:
            for i, f in enumerate(self.fields):
                if not f.dynamic:
                    out[:, :, starts[i]:starts[i] + f.channels] = parts[i].unsqueeze(1)
            return out
        outputs = []
        for i, f in enumerate(self.fields):
            if f.dynamic:
                outputs.append(torch.stack(history[i], dim=1))
            else:
                outputs.append(parts[i].unsqueeze(1).expand(-1, int(steps), *parts[i].shape[1:]))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return scope.wrap_outputs(out) if scope is not None else out

    @contextlib.contextmanager
    def phiml_context(self) -> Iterator[None]:
        """PhiML precision = the model's dtype; new PhiML tensors on the model's device."""
        from phiml.backend.torch import TORCH

        previous = TORCH.get_default_device()
        wanted = None
        if self.device.type != "cpu":
            ref = f"{self.device.type}:{self.device.index if self.device.index is not None else 0}"
            wanted = TORCH.get_device_by_ref(ref)
        try:
            if wanted is not None:
                TORCH.set_default_device(wanted)
            with TORCH, math.precision(64 if self.dtype == torch.float64 else 32):
                yield
        finally:
            if wanted is not None:
                TORCH.set_default_device(previous)

    # ----------------------------------------------------------------- description
    @classmethod
    def registered_name(cls) -> str:
        from hyco.registry import PHYSICS

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


def substep_chunks(substeps: int, limit: int) -> list[int]:
    """Split a frame's substeps into compiled calls of at most `limit`: equal chunks (a divisor of
    `substeps` of at least limit / 2) when there is one, so that only one chunk size is traced, else
    balanced chunks of two neighbouring sizes."""
    limit = max(1, int(limit))
    if substeps <= limit:
        return [substeps]
    for size in range(limit, (limit + 1) // 2 - 1, -1):
        if substeps % size == 0:
            return [size] * (substeps // size)
    calls = -(-substeps // limit)
    base, extra = divmod(substeps, calls)
    return [base + 1] * extra + [base] * (calls - extra)


def _data_params(params) -> dict:
    """`params` as a dict without the learning-only keys of its coefficients (see `PhysicalModel.spec`)."""
    if not dataclasses.is_dataclass(params):
        return {}
    out = dataclasses.asdict(params)
    for f in dataclasses.fields(params):
        if isinstance(getattr(params, f.name), CoefficientParams):
            out[f.name] = {k: v for k, v in out[f.name].items() if k not in LEARNING_KEYS}
    return out


def _requiring_grad(t: torch.Tensor) -> torch.Tensor:
    """`t` itself if it requires grad, else a detached copy that does (its gradient is never used)."""
    if t.requires_grad or not t.is_floating_point():
        return t
    return t.detach().requires_grad_(True)


class _BackwardScope:
    """PhiML computes the backward pass of implicit solves (smoke's pressure) when autograd runs it, outside
    `phiml_context`: at the global precision (32 bits by default, which would round float64 gradients
    through float32) and with new tensors on the default device (the CPU). Identity autograd nodes at a
    rollout's outputs enter the model's context when the backward pass reaches the rollout, and identity
    nodes at its inputs leave it again when the pass is through."""

    def __init__(self, model: PhysicalModel):
        self.model = model
        self._context = None

    def enter(self) -> None:
        if self._context is None:
            self._context = self.model.phiml_context()
            self._context.__enter__()

    def leave(self) -> None:
        if self._context is not None:
            context, self._context = self._context, None
            context.__exit__(None, None, None)

    def wrap_outputs(self, t: torch.Tensor) -> torch.Tensor:
        return _OnBackward.apply(self.enter, t)

    def wrap_input(self, t: torch.Tensor | None) -> torch.Tensor | None:
        return t if t is None or not t.requires_grad else _OnBackward.apply(self.leave, t)


class _OnBackward(torch.autograd.Function):
    """Identity whose backward pass first calls `action` (entering or leaving a `_BackwardScope`)."""

    @staticmethod
    def forward(ctx, action, x: torch.Tensor) -> torch.Tensor:
        ctx.action = action
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        ctx.action()
        return None, grad
