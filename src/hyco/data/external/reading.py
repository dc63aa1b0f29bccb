"""One trajectory of an external file as hyco stores it, `[T, C, *space]` with x last, and the true value of a
coefficient that a file field holds: what an import copies and what reading in place serves, alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hyco.data.external.layout import first_line
from hyco.data.external.mapping import ChannelSource
from hyco.data.external.source import Source
from hyco.errors import DataError


@dataclass(frozen=True)
class TrajectoryShape:
    """What a stored trajectory looks like: frames, channels, the grid in tensor order (x last)."""

    frames: int
    channels: int
    spatial: tuple[int, ...]

    @property
    def frames_shape(self) -> tuple[int, ...]:
        return (self.frames, self.channels, *self.spatial)


def read_trajectory(source: Source, channels: Sequence[ChannelSource], frames: slice, shape: TrajectoryShape,
                    trajectory: int, out: np.ndarray | None = None) -> np.ndarray:
    """Trajectory `trajectory` of `source`: [T', *space x first, comps] per file field -> [T, C, *space x last]
    (into `out` when given); a non-finite value is refused naming the trajectory."""
    out = np.empty(shape.frames_shape, dtype=np.float32) if out is None else out
    transpose = (0, *range(len(shape.spatial), 0, -1))  # [T, x, y, z] -> [T, z, y, x]
    by_field: dict[str, list[ChannelSource]] = {}
    for channel in channels:
        by_field.setdefault(channel.field, []).append(channel)
    for name, mapped in by_field.items():
        values = field_frames(source, name, trajectory, frames, shape.frames)
        for channel in mapped:
            out[:, channel.channel] = np.transpose(values[..., channel.component], transpose)
    if not np.isfinite(out).all():
        raise source.error(f"trajectory {trajectory} holds non-finite values")
    return out


def field_frames(source: Source, name: str, trajectory: int, frames: slice, num_frames: int) -> np.ndarray:
    """The frames of one file field of one trajectory, [T, *space x first, comps] (a field constant in time
    repeated)."""
    source_field = source.field(name)
    try:
        values = source_field.read(trajectory, frames)
    except DataError:
        raise
    except Exception as exc:  # a damaged chunk: h5py raises several types
        raise source.error(f"cannot read trajectory {trajectory} of field '{name}' ({first_line(exc)})") from None
    if values.shape[0] == 1 and num_frames > 1 and not source_field.time_varying:
        values = np.broadcast_to(values, (num_frames, *values.shape[1:]))
    return values


def coefficient_truth(source: Source, channel: ChannelSource, trajectories: Sequence[int], frames: slice,
                      kind: str, name: str, reference: np.ndarray | None = None) -> np.ndarray:
    """The true value of coefficient `name` held by a file field: the same in every frame and trajectory taken
    (hyco learns one coefficient for all of them), in tensor order (x last); a scalar coefficient takes a field
    constant in space. `reference`: the value found in another file, which this one must repeat."""
    value = reference
    where = f"field '{channel.field}' ({name}'s true value, data.external.fields)"
    for trajectory in trajectories:
        values = field_frames(source, channel.field, trajectory, frames, 1)[..., channel.component]
        if not np.isfinite(values).all():
            raise source.error(f"{where} holds non-finite values in trajectory {trajectory}")
        first = np.transpose(values[0], tuple(range(values.ndim - 2, -1, -1)))
        if not (values == values[:1]).all() or (value is not None and not np.array_equal(first, value)):
            raise source.error(f"{where} differs between frames or trajectories; hyco learns one {name} for all "
                               "the trajectories")
        value = first
    if value is None:
        raise source.error(f"{where}: no trajectory to read it from")
    if kind == "scalar":
        if float(np.ptp(value)) > 1e-6 * max(abs(float(np.mean(value))), 1e-30):
            raise source.error(f"{where} varies in space; {name} is a scalar (physics.{name}.kind=scalar): "
                               f"learn a field (kind=field) or map a field constant in space")
        return np.asarray(float(np.mean(value)), dtype=np.float32)
    return np.ascontiguousarray(value, dtype=np.float32)
