"""The compiled-rollout engine of every PhysicalModel: batched, jit-compiled rollouts of the model's `step`.

A model says what one solver substep is (hyco.physics.base); this engine runs it: all substeps of a stored
frame in one or a few compiled calls, batches in traced sizes, frames written straight into the output when no
gradient is needed, and the backward pass of implicit solves kept in the model's precision and device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from phi import math

from hyco.physics.convert import tensor_to_grid_values
from hyco.utils.threads import poll as poll_threads


class CompiledRollout:
    """The rollout half of `PhysicalModel` (a mixin): `rollout(state, coefficients, steps)` and what it needs.

    It reads what the model's set-up defines: `fields`, `coefficient_specs`, `substep`, `substeps`,
    `substep_dt`, `device`, `dtype`, `ndim`, `spatial_shape`, `num_channels`, and the Field templates and
    layouts (`_templates`, `_layouts`); `_init_rollout` is called once they exist."""

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

    def _init_rollout(self) -> None:
        self.jit = True  # False runs the same step eagerly (tests compare both)
        # A frame runs as one compiled call per chunk of substeps (see `max_substeps_per_call`). Two compiled
        # versions per chunk size: torch.jit.trace bakes in which inputs required grad when it traced, and a
        # trace made without grad on an input silently drops gradients that flow through it later (e.g.
        # through grid_sample coordinates). The grad version always gets inputs that all require grad.
        self._chunks = substep_chunks(self.substeps, self.max_substeps_per_call)
        self._compiled: dict[tuple[int, bool], object] = {}

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
            state.update(self.substep(state, coeffs, self.substep_dt))
        return tuple(state[f.name].values for f in self.fields if f.dynamic)

    def _advancer(self, substeps: int, grad: bool):
        """The function running `substeps` substeps: compiled (one per chunk size and grad flag) or eager."""
        if not self.jit:
            return lambda values, coefficients: self._advance(values, coefficients, substeps)
        key = (substeps, grad)
        if key not in self._compiled:
            def advance(values, coefficients):
                return self._advance(values, coefficients, substeps)

            self._compiled[key] = _settled(math.jit_compile(advance))
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


def _settled(compiled):
    """`compiled` (a PhiML jit function), whose result never comes from a trace's first run.

    torch.jit's profiling executor runs a new trace once as recorded, then as its optimised graph; the two can
    differ in round-off (measured: a scalar coefficient's float64 gradient through Burgers 2D, whose reduction
    the optimised graph reorders). A process's first call of every shape would then differ from all later
    ones, so a run resumed in a fresh process left the uninterrupted run's path by round-off (a physical epoch
    took 8 objective evaluations against 9). Each new trace is therefore run twice and the second result kept;
    the cost, one extra run per traced shape, is small beside the trace itself."""
    def traces() -> int:
        return sum(len(v) for v in getattr(compiled, "traces", {}).values())

    def run(*args):
        before = traces()
        out = compiled(*args)
        if traces() != before:
            out = compiled(*args)
        return out

    return run


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

    def __init__(self, model: CompiledRollout):
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
