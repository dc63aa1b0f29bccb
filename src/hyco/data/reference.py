"""Reference data: trajectories simulated on a finer grid with finer time steps, restricted to the learning grid.

Data that a solver learns a coefficient from must not come from that solver's own discretisation: it fits
them to round-off, and the published error says nothing about data from anywhere else (the inverse crime).
With `data.reference.refine = r` every trajectory is simulated on a grid r times finer along each axis, with
`data.reference.substeps` solver steps per stored frame (0: the learning substeps x r^2, what an explicit
scheme's stability bound h <= c dx^2 needs on the finer grid; the time-stepping error then shrinks r^2-fold
too), and every frame is restricted to the learning grid by cell averaging:

- a cell-centred value becomes the mean of the r^d fine cells that make up its coarse cell;
- a staggered component (stored on the lower face of each cell along its own axis, hyco.physics.convert)
  becomes the mean of the r^(d-1) fine faces that make up its coarse face, so the flux through every coarse
  face is the fine flux through it and a discretely divergence-free fine field stays divergence-free.

The initial state is drawn on the fine grid from the simulation's seed (the shipped models draw functions of
space, e.g. random Fourier modes, and evaluate them at the cell centres of whatever grid they run on), and
frame 0 is its restriction like every other frame. The true coefficients are profiles, functions of space:
the reference evaluates them on its own cell centres, the learner's error is measured against them evaluated
on the learning grid.

Physics the learner lacks: `data.reference.physics` lays keys over the learner's `physics` section for the
simulator alone (e.g. `{name: heat_decay, decay: {...}}`: heat plus a decay term). The data then contain a term
the learning solver does not have; the learner's true coefficients (those the two models share) stay its
truth, and `missing_terms` names what the learner lacks, for the report's bias sentence. The overrides are part
of the dataset's hash only when given, so every dataset made before the key existed keeps its name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from hyco.config.schema import ReferenceConfig
from hyco.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ReferencePlan:
    """How a dataset's trajectories are simulated: `refine` fine cells per learning cell and axis, `substeps`
    fine solver steps per stored frame."""

    refine: int
    substeps: int
    physics: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys laid over the learner's section

    def hashed(self) -> dict[str, Any]:
        out: dict[str, Any] = {"refine": self.refine, "substeps": self.substeps}
        if self.physics:  # only when given: the hash of every dataset made before the key is unchanged
            out["physics"] = self.physics
        return out

    def describe(self) -> str:
        if self.refine == 1:
            where = f"the learning grid with {self.substeps} substeps per frame"
        else:
            where = f"a {self.refine}x finer grid per axis with {self.substeps} substeps per frame, cell-averaged"
        if self.physics:
            where += f", by physics {self.physics.get('name', 'of the learner')!r} with {describe_overrides(self)}"
        return where


def describe_overrides(plan: ReferencePlan) -> str:
    """The simulator's extra keys in words, e.g. "`decay`" (the keys other than `name`)."""
    keys = [key for key in plan.physics if key != "name"]
    return ", ".join(f"`{key}`" for key in keys) or "no extra keys"


def reference_plan(config: ReferenceConfig, model: Any) -> ReferencePlan:
    """The reference of `model` that `data.reference` asks for."""
    substeps = int(getattr(model, "substeps", 1))
    refine = int(config.refine)
    return ReferencePlan(refine, int(config.substeps) or substeps * refine * refine, _plain(config.physics))


def is_learning_solver(plan: ReferencePlan, model: Any) -> bool:
    """The reference is the learning solver itself: the data come from the discretisation that learns from them."""
    return plan.refine == 1 and plan.substeps == int(getattr(model, "substeps", 1)) and not plan.physics


def missing_terms(plan: ReferencePlan, learner_name: str) -> dict[str, Any] | None:
    """What the data's simulator has that the learning solver lacks (None: the same PDE): the simulator's model
    name, the learner's, and the keys laid over the learner's section."""
    if not plan.physics:
        return None
    return {"data_model": str(plan.physics.get("name", learner_name)), "learner_model": learner_name,
            "terms": [key for key in plan.physics if key != "name"], "described": describe_overrides(plan)}


def _plain(value: Any) -> Any:
    """A plain, JSON-able copy of a config mapping (OmegaConf containers included)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _laid_over(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it, mapping by mapping (a key the overrides set replaces a value)."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _laid_over(dict(out[key]), value)
        else:
            out[key] = value
    return out


def reference_section(physics: dict[str, Any], plan: ReferencePlan) -> dict[str, Any]:
    """The `physics` config section of the reference model: the learning model's with `data.reference.physics`
    laid over it, on the finer grid and step."""
    name = physics.get("name", "?")
    for key in ("resolution", "substeps"):
        if key not in physics:
            raise ConfigError("data.reference.refine", f"1 and data.reference.substeps 0 for physics {name!r}: its "
                              f"config has no `{key}` key to refine", plan.hashed())
    section = _laid_over(dict(physics), plan.physics)
    section["resolution"] = [int(n) * plan.refine for n in physics["resolution"]]
    section["substeps"] = plan.substeps
    return section


def reference_model(physics: dict[str, Any], model: Any, plan: ReferencePlan):
    """The model that simulates the data: `model` itself when the plan is the learning solver, else the same
    PDE on the finer grid and step (built like `model`, on its device and in its dtype)."""
    if is_learning_solver(plan, model):
        return model
    from hyco.physics import build_physics

    try:
        return build_physics(reference_section(physics, plan), model.device, model.dtype)
    except ConfigError as error:  # e.g. a coefficient's truth outside the finer scheme's stability bound
        raise ConfigError("data.reference", f"a reference the model accepts ({error})", plan.hashed()) from None


def restrict(fine: torch.Tensor, factor: int, fields: Sequence[Any]) -> torch.Tensor:
    """`fine` [..., C, *space] (space in tensor order, x last) averaged onto a grid `factor` times coarser per
    axis: cell averages for centred fields, face averages for staggered ones (module docstring). `fields`
    are the model's FieldSpecs (or dicts with `channels` and `grid`), in channel order."""
    if factor == 1:
        return fine
    ndim = _spatial_ndim(fine, fields)
    parts, start = [], 0
    for spec in fields:
        channels = int(_field_value(spec, "channels"))
        block = fine.narrow(-ndim - 1, start, channels)
        if _field_value(spec, "grid") == "staggered":
            components = [_face_average(block.narrow(-ndim - 1, c, 1), factor, ndim, axis=ndim - 1 - c)
                          for c in range(channels)]
            parts.append(torch.cat(components, dim=-ndim - 1))
        else:
            parts.append(_cell_average(block, factor, ndim))
        start += channels
    return torch.cat(parts, dim=-ndim - 1)


def _field_value(spec: Any, key: str) -> Any:
    return spec[key] if isinstance(spec, dict) else getattr(spec, key)


def _spatial_ndim(fine: torch.Tensor, fields: Sequence[Any]) -> int:
    channels = sum(int(_field_value(f, "channels")) for f in fields)
    for ndim in (1, 2, 3):
        if fine.dim() > ndim and fine.shape[-ndim - 1] == channels:
            return ndim
    raise ValueError(f"restrict: no channel axis of size {channels} before the spatial axes of {tuple(fine.shape)}")


def _check_divisible(shape: Sequence[int], factor: int) -> None:
    if any(n % factor for n in shape):
        raise ValueError(f"restrict: grid {list(shape)} is not a multiple of the factor {factor}")


def _cell_average(block: torch.Tensor, factor: int, ndim: int) -> torch.Tensor:
    """The mean of every factor^ndim cells."""
    space = block.shape[-ndim:]
    _check_divisible(space, factor)
    split = [s for n in space for s in (n // factor, factor)]
    grouped = block.reshape(*block.shape[:-ndim], *split)
    lead = block.dim() - ndim
    return grouped.mean(dim=tuple(lead + 2 * a + 1 for a in range(ndim)))


def _face_average(component: torch.Tensor, factor: int, ndim: int, axis: int) -> torch.Tensor:
    """A staggered component on the lower faces along tensor axis `axis` (of the spatial axes): the coarse
    lower face of a cell is every `factor`-th fine face along `axis`, the mean of its `factor` fine faces
    across the other axes."""
    lead = component.dim() - ndim
    index = [slice(None)] * component.dim()
    index[lead + axis] = slice(None, None, factor)
    faces = component[tuple(index)]  # the fine faces that lie on coarse faces
    space = faces.shape[-ndim:]
    _check_divisible([n for a, n in enumerate(space) if a != axis], factor)
    split = []
    for a, n in enumerate(space):
        split += [n, 1] if a == axis else [n // factor, factor]
    grouped = faces.reshape(*faces.shape[:-ndim], *split)
    return grouped.mean(dim=tuple(lead + 2 * a + 1 for a in range(ndim)))


REGION_FRACTION = 0.1  # a field coefficient acts where |value| exceeds this fraction of its largest |value|


def missing_term_region(physics: dict[str, Any], plan: ReferencePlan, model: Any) -> torch.Tensor | None:
    """[*space] bool on the learning grid: where the terms the learner lacks act (None: no term is missing).

    The data's model is built on the learning grid; its coefficients that the learner does not have are the
    missing terms' (e.g. heat_decay's `decay`): a field acts where |value| > REGION_FRACTION x its largest |value|,
    a scalar (or a coefficient that is the learner's own) everywhere."""
    if not plan.physics:
        return None
    from hyco.physics import build_physics

    section = _laid_over(dict(physics), plan.physics)
    data_model = build_physics(section, "cpu", torch.float64)
    learner_names = {spec.name for spec in model.coefficient_specs}
    region = torch.zeros(tuple(int(n) for n in model.spatial_shape), dtype=torch.bool)
    for name, value in data_model.true_coefficients().items():
        if name in learner_names:
            continue
        value = value.detach().cpu().abs()
        if value.dim() == 0 or value.numel() == 1:
            return torch.ones_like(region)
        region |= (value > REGION_FRACTION * value.max()).reshape(region.shape)
    return region if bool(region.any()) else torch.ones_like(region)
