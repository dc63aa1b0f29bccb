"""The one bridge between PhiFlow fields and torch tensors.

Layout (see the project's shared contract): a state is ``[B, C, *space]`` with space in PhiFlow's
native ``(z,) y, x`` order (the last axis is x); vector fields contribute ``ndim`` channels ordered
(x, y, z). Staggered components live on the LOWER face of each cell along their own axis, in the
same ``[C, *space]`` grid: exact for periodic boundaries (N faces stored by PhiFlow) and for closed
boxes, where PhiFlow stores only the N-1 interior faces and both boundary faces are zero.
Centered grids and periodic staggered grids convert without copying (the torch tensor may be a
non-contiguous view); autograd flows through every conversion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from phi import math
from phi.field import Field
from phiml.math import batch, channel, dual, spatial

BATCH_DIM = "b"
AXES = ("x", "y", "z")  # PhiFlow's axis names; vector components are ordered like this


def tensor_axes(ndim: int) -> tuple[str, ...]:
    """Spatial axis names in tensor order: ('x',), ('y', 'x'), ('z', 'y', 'x')."""
    if not 1 <= ndim <= 3:
        raise ValueError(f"expected 1 to 3 spatial dimensions, got {ndim}")
    return tuple(reversed(AXES[:ndim]))


def field_channels(field: Field) -> int:
    """Number of tensor channels the field occupies: 1 for a scalar, ndim for a vector field."""
    if field.is_staggered:
        return field.spatial_rank
    return channel(field.values).volume if channel(field.values) else 1


def _field_axes(field: Field) -> tuple[str, ...]:
    axes = tensor_axes(field.spatial_rank)
    missing = set(axes) - set(field.resolution.names)
    if missing:
        raise ValueError(f"field axes must be named {', '.join(reversed(axes))}, got {field.resolution.names}")
    return axes


def _wrap(native: torch.Tensor, leading: list, axes: tuple[str, ...], order: tuple[str, ...]) -> math.Tensor:
    """Wrap `[*leading, *space]` (space in tensor order `axes`) as a PhiML tensor whose spatial dims follow
    `order` (PhiFlow's geometry order x, y, z; some PhiFlow routines require it). The permute is a view."""
    lead = len(leading)
    perm = list(range(lead)) + [lead + axes.index(a) for a in order]
    return math.wrap(native.permute(perm), *leading, spatial(*order))


def _keep_precision(bits: int | None):
    """PhiML casts floats to its global precision (32 by default) when slicing; keep the data's own."""
    return math.precision(bits) if bits in (16, 32, 64) else contextlib.nullcontext()


def field_to_tensor(field: Field) -> torch.Tensor:
    """`[B, C, *space]` torch tensor of a CenteredGrid or StaggeredGrid (batch dim `b`, size 1 if absent)."""
    return values_to_tensor(field.values, field)


def tensor_to_field(tensor: torch.Tensor, template: Field) -> Field:
    """The field with `template`'s geometry and boundary holding `tensor` `[B, C, *space]` (batch dim `b`)."""
    return template.with_values(tensor_to_values(tensor, template))


def values_to_tensor(values: math.Tensor, template: Field) -> torch.Tensor:
    """Like `field_to_tensor` for the values of a field shaped like `template`, without building a Field
    (building a StaggeredGrid costs milliseconds of Python; rollouts convert values only)."""
    with _keep_precision(values.dtype.bits if values.dtype.kind is float else None):
        axes = _field_axes(template)
        other_batch = batch(values).without(BATCH_DIM)
        if other_batch:
            raise ValueError(f"expected at most the batch dimension {BATCH_DIM!r}, got {batch(values)}")
        if template.is_staggered:
            return _staggered_to_tensor(values, template, axes)
        vec = channel(values)
        if not vec:
            return _as_torch(values.native([BATCH_DIM, *axes])).unsqueeze(1)
        if vec.rank != 1:
            raise ValueError(f"expected at most one channel dimension, got {vec}")
        name = vec.names[0]
        labels = values.shape.get_labels(name)
        if labels and set(labels) <= set(AXES):  # a vector: order its components x, y, z
            wanted = [a for a in AXES if a in labels]
            if list(labels) != wanted:
                values = values[{name: wanted}]
        return _as_torch(values.native([BATCH_DIM, name, *axes]))


def _as_torch(native) -> torch.Tensor:
    """Fields built on the NumPy backend (PhiML's default) come back as torch tensors too (no copy)."""
    return native if isinstance(native, torch.Tensor) else torch.as_tensor(native)


def _staggered_to_tensor(values: math.Tensor, template: Field, axes: tuple[str, ...]) -> torch.Tensor:
    resolution = template.resolution
    vector_dim = "~vector"
    components = AXES[: template.spatial_rank]
    if values.shape.is_uniform and all(values.shape.get_size(a) == resolution.get_size(a) for a in axes):
        if tuple(values.shape.get_labels(vector_dim) or ()) != components:
            values = values[{vector_dim: list(components)}]
        return _as_torch(values.native([BATCH_DIM, vector_dim, *axes]))  # periodic: no copy
    planes = []
    for axis in components:
        component = values[{vector_dim: axis}]
        n_faces = component.shape.get_size(axis)
        n_cells = resolution.get_size(axis)
        if n_faces == n_cells - 1:  # closed box: interior faces only; the lower boundary face is zero
            component = math.pad(component, {axis: (1, 0)}, 0)
        elif n_faces != n_cells:
            raise ValueError(f"staggered component {axis!r} has {n_faces} faces for {n_cells} cells; only periodic "
                             "and closed (zero normal velocity) boundaries convert exactly")
        planes.append(_as_torch(component.native([BATCH_DIM, *axes])))
    return torch.stack(planes, dim=1)


def tensor_to_values(tensor: torch.Tensor, template: Field) -> math.Tensor:
    """The PhiML values a field shaped like `template` holds for `tensor` `[B, C, *space]` (no Field built)."""
    with _keep_precision(torch.finfo(tensor.dtype).bits if tensor.dtype.is_floating_point else None):
        axes = _field_axes(template)
        ndim = len(axes)
        expected = (field_channels(template), *(template.resolution.get_size(a) for a in axes))
        if tensor.dim() != ndim + 2 or tuple(tensor.shape[1:]) != expected:
            raise ValueError(f"expected a tensor of shape [B, {', '.join(map(str, expected))}], "
                             f"got {list(tensor.shape)}")
        order = tuple(template.resolution.names)
        if template.is_staggered:
            return _tensor_to_staggered(tensor, template, axes, order)
        if not channel(template.values):
            return _wrap(tensor[:, 0], [batch(BATCH_DIM)], axes, order)
        name = channel(template.values).names[0]
        labels = template.values.shape.get_labels(name)
        if labels and set(labels) <= set(AXES):
            labels = [a for a in AXES if a in labels]
        size = ",".join(labels) if labels else tensor.shape[1]
        return _wrap(tensor, [batch(BATCH_DIM), channel(**{name: size})], axes, order)


def _tensor_to_staggered(tensor: torch.Tensor, template: Field, axes: tuple[str, ...], order: tuple[str, ...]
                         ) -> math.Tensor:
    values = template.values
    components = AXES[: template.spatial_rank]
    vector = dual(vector=",".join(components))
    if values.shape.is_uniform:  # periodic: N faces per axis, no copy
        return _wrap(tensor, [batch(BATCH_DIM), vector], axes, order)
    planes = []
    for d, axis in enumerate(components):
        component = _wrap(tensor[:, d], [batch(BATCH_DIM)], axes, order)
        if values[{"~vector": axis}].shape.get_size(axis) == template.resolution.get_size(axis) - 1:
            component = component[{axis: slice(1, None)}]
        planes.append(component)
    return math.stack(planes, vector)


class FieldLayout:
    """The conversion of one field, prepared once from its template: a rollout converts every frame, and
    re-deriving axes and labels from the template each time costs about as much as a small step."""

    def __init__(self, template: Field):
        self.template = template
        self.axes = _field_axes(template)
        self.channels = field_channels(template)
        self._order: list[str] | None = None  # centered fields: the native order of the tensor layout
        self._labels = None
        if not template.is_staggered:
            vec = channel(template.values)
            if not vec:
                self._order = [BATCH_DIM, *self.axes]
            else:
                name = vec.names[0]
                self._order = [BATCH_DIM, name, *self.axes]
                self._labels = template.values.shape.get_labels(name)
                if self._labels and set(self._labels) <= set(AXES):
                    self._labels = tuple(a for a in AXES if a in self._labels)

    def to_tensor(self, values: math.Tensor) -> torch.Tensor:
        order = self._order
        if order is not None and values.shape.batch.names in ((), (BATCH_DIM,)):
            if len(order) == len(self.axes) + 1:
                if not channel(values):
                    return _as_torch(values.native(order)).unsqueeze(1)
            elif values.shape.get_labels(order[1]) == self._labels:
                return _as_torch(values.native(order))
        return values_to_tensor(values, self.template)  # anything unusual: the general path

    def to_values(self, tensor: torch.Tensor) -> math.Tensor:
        return tensor_to_values(tensor, self.template)


def fields_to_tensor(fields: Sequence[Field]) -> torch.Tensor:
    """Concatenate fields along C in the given order."""
    tensors = [field_to_tensor(f) for f in fields]
    return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=1)


def tensor_to_fields(tensor: torch.Tensor, templates: Sequence[Field]) -> tuple[Field, ...]:
    """Split `[B, C, *space]` along C into one field per template (inverse of `fields_to_tensor`)."""
    counts = [field_channels(t) for t in templates]
    if tensor.dim() < 2 or tensor.shape[1] != sum(counts):
        raise ValueError(f"expected {sum(counts)} channels, got tensor of shape {list(tensor.shape)}")
    parts = torch.split(tensor, counts, dim=1)
    return tuple(tensor_to_field(p, t) for p, t in zip(parts, templates))


def tensor_to_grid_values(tensor: torch.Tensor, ndim: int) -> math.Tensor:
    """A spatial coefficient `[*space]` (or a scalar `[]`) as a PhiML tensor with named axes."""
    if tensor.dim() == 0:
        return math.wrap(tensor)
    if tensor.dim() != ndim:
        raise ValueError(f"expected a scalar or a {ndim}-D field, got shape {list(tensor.shape)}")
    return _wrap(tensor, [], tensor_axes(ndim), AXES[:ndim])
