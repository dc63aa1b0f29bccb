"""PDEBench's HDF5 layouts: arrays at the root (`tensor`, or one dataset per variable, with `x-coordinate`...)
or one group per trajectory holding `data` and `grid` (see hyco.data.external)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import h5py
import numpy as np

from hyco.data.external.layout import AXES, SourceField

if TYPE_CHECKING:
    from hyco.data.external.source import Source

PDEBENCH_COORDINATES = tuple(f"{a}-coordinate" for a in AXES)


def read(source: Source, f: h5py.File) -> None:
    """Fill `source` from a file in one of PDEBench's layouts."""
    groups = sorted(k for k in f if isinstance(f[k], h5py.Group) and k != "grid")
    arrays = [k for k in f if isinstance(f[k], h5py.Dataset) and k not in PDEBENCH_COORDINATES
              and k != "t-coordinate"]
    if groups and not arrays:
        _read_groups(source, f, groups)
    elif arrays:
        _read_arrays(source, f, arrays)
    else:
        raise source.error("neither arrays at the root (dataset 'tensor' or one per variable) nor one group per "
                         "trajectory holding 'data' (PDEBench layouts)")
    source.info = {"layout": "groups" if groups and not arrays else "arrays"}

def _read_groups(source: Source, f: h5py.File, groups: list[str]) -> None:
    first = f[groups[0]]
    data = source.member(first, "data", h5py.Dataset, "PDEBench")
    grid = source.member(first, "grid", h5py.Group, "PDEBench")
    axes = [a for a in AXES if a in grid]
    if not axes:
        source.member(grid, "x", h5py.Dataset, "PDEBench")  # raises: the x coordinate is required
    shape = tuple(data.shape)
    if len(shape) != len(axes) + 2:
        raise source.error(f"'{groups[0]}/data' has {len(shape)} axes {list(shape)}, expected {len(axes) + 2} "
                         f"[T, {', '.join(axes)}, C] ({len(axes)} coordinate(s) in '{groups[0]}/grid')")
    coordinates = [np.asarray(source.member(grid, a, h5py.Dataset, "PDEBench")[()]).reshape(-1) for a in axes]
    if [c.size for c in coordinates] != list(shape[1:-1]):
        raise source.error(f"'{groups[0]}/data' has the grid {list(shape[1:-1])}, '{groups[0]}/grid' "
                         f"{[c.size for c in coordinates]}")
    times = np.asarray(grid["t"][()]).reshape(-1) if "t" in grid else None
    source.set_grid(shape[1:-1], coordinates, axes, times, f"{groups[0]}/grid/t")
    for name in groups[1:]:
        other = source.member(f[name], "data", h5py.Dataset, "PDEBench")
        if tuple(other.shape) != shape:
            raise source.error(f"'{name}/data' has shape {list(other.shape)}, '{groups[0]}/data' {list(shape)}")
    source.num_trajectories, source.num_frames = len(groups), int(shape[0])
    datasets = [f[name]["data"] for name in groups]

    def read_frames(trajectory: int, frames: slice) -> np.ndarray:
        return np.asarray(datasets[trajectory][frames], dtype=np.float32)

    source.add(SourceField("data", int(shape[-1]), True, read_frames))

def _read_arrays(source: Source, f: h5py.File, arrays: list[str]) -> None:
    names = [c for c in PDEBENCH_COORDINATES if c in f]
    if not names:
        raise source.error("dataset 'x-coordinate' missing (PDEBench layout: the grid of the root arrays)")
    coordinates = [np.asarray(f[c][()]).reshape(-1) for c in names]
    times = np.asarray(f["t-coordinate"][()]).reshape(-1) if "t-coordinate" in f else None
    source.set_grid([c.size for c in coordinates], coordinates, names, times, "t-coordinate")
    space, counts, frames = list(source.resolution), set(), set()
    for name in sorted(arrays):
        dataset = f[name]
        shape = list(dataset.shape)
        if shape[2:2 + source.ndim] == space and len(shape) in (2 + source.ndim, 3 + source.ndim):
            timely = True
        elif shape[1:1 + source.ndim] == space and len(shape) in (1 + source.ndim, 2 + source.ndim):
            timely = False
        else:
            grid = ", ".join(a.upper() for a in AXES[:source.ndim])
            source.unreadable[name] = (f"'{name}' has shape {shape}, expected [N, T, {grid}] (optionally with a "
                                     f"trailing component axis) on the grid {space} of {', '.join(names)}")
            continue
        trailing = len(shape) == (2 if timely else 1) + source.ndim + 1  # a component axis
        counts.add(shape[0])
        if timely:
            frames.add(shape[1])
        source.add(SourceField(name, shape[-1] if trailing else 1, timely, _array_reader(dataset, timely, trailing)))
    if len(counts) > 1 or len(frames) > 1:
        raise source.error(f"the root arrays disagree on trajectories {sorted(counts)} or frames {sorted(frames)}")
    source.num_trajectories = counts.pop() if counts else 0
    source.num_frames = frames.pop() if frames else 1
    if source.fields and times is not None and times.size not in (source.num_frames, source.num_frames + 1):
        raise source.error(f"'t-coordinate' has {times.size} entries for {source.num_frames} frames")


def _array_reader(dataset: h5py.Dataset, timely: bool, trailing: bool) -> Callable[[int, slice], np.ndarray]:
    def read_frames(trajectory: int, frames: slice) -> np.ndarray:
        values = np.asarray(dataset[(trajectory, frames) if timely else trajectory], dtype=np.float32)
        if not timely:
            values = values[None]
        return values if trailing else values[..., None]

    return read_frames
