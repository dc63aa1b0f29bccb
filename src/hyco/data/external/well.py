"""The Well's HDF5 layout (one file per split): the grid from `dimensions`, the fields of the `t0_fields`,
`t1_fields`, `t2_fields` groups, the boundary conditions (see hyco.data.external)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import h5py
import numpy as np

from hyco.data.external.layout import SourceField, plain, string, strings

if TYPE_CHECKING:
    from hyco.data.external.source import Source

WELL_FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")


def read(source: Source, f: h5py.File) -> None:
    """Fill `source` from a file in The Well's layout."""
    grid_type = string(f.attrs.get("grid_type", "cartesian"))
    if grid_type.lower() != "cartesian":
        raise source.error(f"grid_type '{grid_type}'; hyco reads cartesian grids only")
    dims = source.member(f, "dimensions", h5py.Group, "The Well")
    names = strings(dims.attrs.get("spatial_dims"))
    if not names:
        raise source.error("attribute 'spatial_dims' of group 'dimensions' missing (The Well layout)")
    coordinates = []
    for name in names:
        values = np.asarray(source.member(dims, name, h5py.Dataset, "The Well")[()])
        coordinates.append(values.reshape(-1, values.shape[-1])[0] if values.ndim > 1 else values)
    time = np.asarray(source.member(dims, "time", h5py.Dataset, "The Well")[()])
    time = time.reshape(-1, time.shape[-1])[0] if time.ndim > 1 else time.reshape(-1)
    source.set_grid([c.size for c in coordinates], coordinates, names, time, "dimensions/time")
    source.num_frames = int(time.size)
    source.axis_names = list(names)
    groups = [g for g in WELL_FIELD_GROUPS if g in f]
    if not groups:
        raise source.error(f"none of the groups {', '.join(WELL_FIELD_GROUPS)} (The Well's fields) in the file")
    declared = f.attrs.get("n_trajectories")
    counts = set()
    for group_name in groups:
        order = WELL_FIELD_GROUPS.index(group_name)
        group = source.member(f, group_name, h5py.Group, "The Well")
        listed = strings(group.attrs.get("field_names")) or sorted(group)
        for name in listed:
            dataset = source.member(group, name, h5py.Dataset, "The Well")
            count = _field(source, dataset, name, order)
            if count is not None:
                counts.add(count)
    if declared is not None:
        counts.add(int(np.asarray(declared).reshape(-1)[0]))
    if len(counts) > 1:
        raise source.error(f"fields and attribute 'n_trajectories' disagree on the number of trajectories "
                         f"({sorted(counts)})")
    source.num_trajectories = counts.pop() if counts else 1
    source.info = {"dataset_name": string(f.attrs.get("dataset_name", "")),
                 "simulation_parameters": {p: plain(f.attrs[p]) for p in strings(f.attrs.get(
                     "simulation_parameters")) if p in f.attrs}}
    if "boundary_conditions" in f and isinstance(f["boundary_conditions"], h5py.Group):
        for bc in f["boundary_conditions"].values():
            kind = string(bc.attrs.get("bc_type", "")).lower()
            for axis in strings(bc.attrs.get("associated_dims")):
                source.boundary[axis] = kind


def _field(source: Source, dataset: h5py.Dataset, name: str, order: int) -> int | None:
    """Register a The Well field; returns its number of trajectories (None when it does not vary)."""
    where = dataset.name.strip("/")
    sample = bool(dataset.attrs.get("sample_varying", True))
    timely = bool(dataset.attrs.get("time_varying", True))
    varying = [bool(v) for v in np.atleast_1d(dataset.attrs.get("dim_varying", [True] * source.ndim))]
    if len(varying) != source.ndim:
        raise source.error(f"'{where}': attribute dim_varying has {len(varying)} entries for {source.ndim} axes")
    lead = int(sample) + int(timely)
    full, short = lead + source.ndim + order, lead + sum(varying) + order
    shape = tuple(dataset.shape)
    axes = ["n_traj"] * sample + ["T"] * timely + source.axis_names + ["D"] * order
    if len(shape) not in (full, short):
        raise source.error(f"'{where}' has {len(shape)} axes {list(shape)}, expected {full} "
                         f"[{', '.join(axes)}] (sample_varying={sample}, time_varying={timely})")
    space = list(shape[lead:lead + (source.ndim if len(shape) == full else sum(varying))])
    expected = ([n if v else 1 for n, v in zip(source.resolution, varying)] if len(shape) == full
                else [n for n, v in zip(source.resolution, varying) if v])
    tensor = list(shape[len(shape) - order:]) if order else []
    if space != expected or any(d != source.ndim for d in tensor):
        raise source.error(f"'{where}' has shape {list(shape)}, expected [{', '.join(axes)}] on the grid "
                         f"{list(source.resolution)} of 'dimensions'")
    if timely and shape[int(sample)] != source.num_frames:
        raise source.error(f"'{where}' has {shape[int(sample)]} frames, 'dimensions/time' {source.num_frames}")
    absent = [i for i, v in enumerate(varying) if not v] if len(shape) == short and short != full else []
    resolution, ndim = source.resolution, source.ndim

    def read_frames(trajectory: int, frames: slice) -> np.ndarray:
        index = ((trajectory,) if sample else ()) + ((frames,) if timely else ())
        values = np.asarray(dataset[index] if index else dataset[()], dtype=np.float32)
        if not timely:
            values = values[None]
        for axis in absent:
            values = np.expand_dims(values, 1 + axis)
        values = np.broadcast_to(values, (values.shape[0], *resolution, *values.shape[1 + ndim:]))
        return values.reshape(values.shape[0], *resolution, -1)

    source.add(SourceField(name, source.ndim ** order, timely, read_frames))
    return int(shape[0]) if sample else None
