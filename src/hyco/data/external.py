"""Trajectories made elsewhere, imported into hyco's dataset store: The Well's and PDEBench's HDF5 layouts.

With `data.external.path` set, `ensure_dataset` imports the file's trajectories instead of simulating them;
the store keeps its validation, checksums and atomic writes, and every task reads the imported file like a
generated one. The SHA-256 of each source file is part of the dataset's config hash, so a changed source is
imported anew (the digest is cached next to the datasets by size and modification time: a multi-GB file is
read once, not at every run).

Layouts read (arrays have x first; hyco stores space in tensor order, x last, and transposes on import):

The Well (one file per split of a dataset, ``data/{train,valid,test}/*.hdf5``):
- root attributes ``n_trajectories``, ``grid_type`` (only ``cartesian`` grids are read), ``dataset_name``;
- group ``dimensions``: attribute ``spatial_dims`` (e.g. ``['x', 'y']``), one coordinate dataset per axis and
  ``time`` (``[T]``, or ``[n_traj, T]`` when it varies between trajectories);
- groups ``t0_fields`` (scalars), ``t1_fields`` (vectors: D components), ``t2_fields`` (tensors: D x D) with
  attribute ``field_names``; a field is ``[n_traj, T, *space, (D,)*order]``, the two leading axes present only
  when its attributes ``sample_varying``/``time_varying`` say so, and a spatial axis of size 1 or absent where
  ``dim_varying`` is false (it is broadcast);
- ``boundary_conditions/*``: ``bc_type`` per ``associated_dims``, recorded and compared with the model's.

PDEBench, two layouts:
- arrays at the root: ``tensor`` ``[N, T, X(, Y, Z)]`` (advection, Burgers, 1D reaction-diffusion) or one
  dataset per variable (``density``, ``pressure``, ``Vx``, ... of the CFD problems), each ``[N, T, *space]``
  with an optional trailing component axis (``[N, *space]``: constant in time), the grid in
  ``x-coordinate`` (``y-coordinate``, ``z-coordinate``) and ``t-coordinate``;
- one group per trajectory (``0000``, ``0001``, ..., taken in name order) holding ``data``
  ``[T, *space, C]`` and ``grid/x`` (``grid/y``, ``grid/z``), ``grid/t`` (2D diffusion-reaction, shallow water).

Mapping (`data.external.fields`, file field -> physics field): the file's field names (The Well: a
dataset of a ``t*_fields`` group; PDEBench: ``tensor``, ``density``, ``data``, ...), with ``[i]`` or ``_i`` to
take one component (or The Well's own component names, ``velocity_x``, ``stress_xy``), onto the physics
model's fields, with ``[j]`` for one channel. Left empty, a physics field
takes the file field of its own name, and a file with a single field whose components match the model's
channels fills them in order. A file field constant in time may only fill a static (not evolved) field.

Splits: `data.num_train`, `num_val`, `num_test` trajectories, in this order, from `path` (or from the file
`splits.<split>`, the The Well way); frames `start_frame`, `start_frame + frame_stride`, ... (`data.num_frames`
of them). The grid must match `physics.resolution`; the file's bounds and dt (times `frame_stride`) replace
`physics.bounds` and `physics.dt` (see `physics_config`). True coefficients are those of the physics config
that are known (`learn: false`) or listed in `data.external.known_truth`; the others are unknown, and the
evaluation reports them so.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hyco.config.errors import ConfigError, DataError
from hyco.config.schema import ExternalDataConfig, HycoConfig
from hyco.data.store import SPLITS, create_store
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

WELL, PDEBENCH = "the_well", "pdebench"
WELL_FIELD_GROUPS = ("t0_fields", "t1_fields", "t2_fields")
AXES = ("x", "y", "z")
PDEBENCH_COORDINATES = tuple(f"{a}-coordinate" for a in AXES)
DIGEST_CACHE = ".external-digests.json"  # in data_dir: path -> size, mtime, sha256 of imported sources
UNIFORM_TOLERANCE = 1e-3  # relative spread of grid spacings still taken as a uniform grid (float32 coordinates)
_SELECTOR = re.compile(r"^\s*(.+?)\s*(?:\[\s*(\d+)\s*\])?\s*$")


# ---------------------------------------------------------------------------- one source file
@dataclass
class SourceField:
    """A field of an external file: its components and a reader of one trajectory's frames."""

    name: str
    components: int
    time_varying: bool
    read: Callable[[int, slice], np.ndarray]  # (trajectory, frames) -> float32 [T' or 1, *space x first, comps]


class Source:
    """One external file, opened read-only: trajectories, fields, grid and time step, in either layout.

    Every problem (missing group or dataset, wrong rank or size) raises a DataError naming the file."""

    def __init__(self, path: str | Path, fmt: str = "auto"):
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise self.error("no such file" if not self.path.exists() else "not a file")
        try:
            self._file = h5py.File(self.path, "r")
        except Exception as exc:  # OSError mostly; damaged superblocks raise others
            raise self.error(f"not a readable HDF5 file ({_first_line(exc)})") from None
        self.fields: dict[str, SourceField] = {}
        self.unreadable: dict[str, str] = {}  # datasets that are not fields, and why (named if mapped)
        self.boundary: dict[str, str] = {}
        self.info: dict[str, Any] = {}
        try:
            self.format = _detect(self._file) if fmt == "auto" else fmt
            if self.format == WELL:
                self._read_well(self._file)
            else:
                self._read_pdebench(self._file)
        except DataError:
            self.close()
            raise
        except Exception as exc:  # a damaged object header or an attribute of an unexpected type
            self.close()
            raise self.error(f"unreadable {self.format if fmt != 'auto' else 'HDF5'} layout ({_first_line(exc)})") \
                from None
        if not self.fields:
            self.close()
            why = "; ".join(f"{k}: {v}" for k, v in self.unreadable.items())
            raise self.error(f"no field readable in the {self.format} layout" + (f" ({why})" if why else ""))

    # ------------------------------------------------------------------ helpers
    def error(self, problem: str) -> DataError:
        return DataError(f"{self.path}: {problem}")

    def _member(self, group: h5py.Group, name: str, kind: type, layout: str) -> Any:
        where = f"{group.name.strip('/')}/{name}".strip("/")
        if name not in group:
            what = "group" if kind is h5py.Group else "dataset"
            raise self.error(f"{what} '{where}' missing ({layout} layout)")
        obj = group[name]
        if not isinstance(obj, kind):
            raise self.error(f"'{where}' is not a {'group' if kind is h5py.Group else 'dataset'} ({layout} layout)")
        return obj

    def _spacing(self, coords: np.ndarray, what: str) -> float | None:
        """Grid spacing of uniform coordinates (None for a single point); refuses a non-uniform grid."""
        coords = np.asarray(coords, dtype=np.float64).reshape(-1)
        if coords.size < 2:
            return None
        steps = np.diff(coords)
        mean = float(steps.mean())
        if not np.isfinite(mean) or mean <= 0 or np.abs(steps - mean).max() > UNIFORM_TOLERANCE * abs(mean):
            raise self.error(f"{what} is not uniform and increasing (hyco's grids are uniform)")
        return mean

    def _set_grid(self, resolution: Sequence[int], coordinates: Sequence[np.ndarray], names: Sequence[str],
                  times: np.ndarray | None, time_name: str) -> None:
        self.resolution = tuple(int(n) for n in resolution)
        self.ndim = len(self.resolution)
        if not 1 <= self.ndim <= 3:
            raise self.error(f"{self.ndim} spatial axes; hyco reads 1 to 3")
        spacings = [self._spacing(c, f"coordinate '{name}'") for c, name in zip(coordinates, names)]
        self.bounds = (tuple(n * s for n, s in zip(self.resolution, spacings))
                       if all(s is not None for s in spacings) else None)
        self.dt = self._spacing(times, f"'{time_name}'") if times is not None else None

    # ------------------------------------------------------------------ The Well
    def _read_well(self, f: h5py.File) -> None:
        grid_type = _string(f.attrs.get("grid_type", "cartesian"))
        if grid_type.lower() != "cartesian":
            raise self.error(f"grid_type '{grid_type}'; hyco reads cartesian grids only")
        dims = self._member(f, "dimensions", h5py.Group, "The Well")
        names = _strings(dims.attrs.get("spatial_dims"))
        if not names:
            raise self.error("attribute 'spatial_dims' of group 'dimensions' missing (The Well layout)")
        coordinates = []
        for name in names:
            values = np.asarray(self._member(dims, name, h5py.Dataset, "The Well")[()])
            coordinates.append(values.reshape(-1, values.shape[-1])[0] if values.ndim > 1 else values)
        time = np.asarray(self._member(dims, "time", h5py.Dataset, "The Well")[()])
        time = time.reshape(-1, time.shape[-1])[0] if time.ndim > 1 else time.reshape(-1)
        self._set_grid([c.size for c in coordinates], coordinates, names, time, "dimensions/time")
        self.num_frames = int(time.size)
        self.axis_names = list(names)
        groups = [g for g in WELL_FIELD_GROUPS if g in f]
        if not groups:
            raise self.error(f"none of the groups {', '.join(WELL_FIELD_GROUPS)} (The Well's fields) in the file")
        declared = f.attrs.get("n_trajectories")
        counts = set()
        for group_name in groups:
            order = WELL_FIELD_GROUPS.index(group_name)
            group = self._member(f, group_name, h5py.Group, "The Well")
            listed = _strings(group.attrs.get("field_names")) or sorted(group)
            for name in listed:
                dataset = self._member(group, name, h5py.Dataset, "The Well")
                count = self._well_field(dataset, name, order)
                if count is not None:
                    counts.add(count)
        if declared is not None:
            counts.add(int(np.asarray(declared).reshape(-1)[0]))
        if len(counts) > 1:
            raise self.error(f"fields and attribute 'n_trajectories' disagree on the number of trajectories "
                             f"({sorted(counts)})")
        self.num_trajectories = counts.pop() if counts else 1
        self.info = {"dataset_name": _string(f.attrs.get("dataset_name", "")),
                     "simulation_parameters": {p: _plain(f.attrs[p]) for p in _strings(f.attrs.get(
                         "simulation_parameters")) if p in f.attrs}}
        if "boundary_conditions" in f and isinstance(f["boundary_conditions"], h5py.Group):
            for bc in f["boundary_conditions"].values():
                kind = _string(bc.attrs.get("bc_type", "")).lower()
                for axis in _strings(bc.attrs.get("associated_dims")):
                    self.boundary[axis] = kind

    def _well_field(self, dataset: h5py.Dataset, name: str, order: int) -> int | None:
        """Register a The Well field; returns its number of trajectories (None when it does not vary)."""
        where = dataset.name.strip("/")
        sample = bool(dataset.attrs.get("sample_varying", True))
        timely = bool(dataset.attrs.get("time_varying", True))
        varying = [bool(v) for v in np.atleast_1d(dataset.attrs.get("dim_varying", [True] * self.ndim))]
        if len(varying) != self.ndim:
            raise self.error(f"'{where}': attribute dim_varying has {len(varying)} entries for {self.ndim} axes")
        lead = int(sample) + int(timely)
        full, short = lead + self.ndim + order, lead + sum(varying) + order
        shape = tuple(dataset.shape)
        axes = ["n_traj"] * sample + ["T"] * timely + self.axis_names + ["D"] * order
        if len(shape) not in (full, short):
            raise self.error(f"'{where}' has {len(shape)} axes {list(shape)}, expected {full} "
                             f"[{', '.join(axes)}] (sample_varying={sample}, time_varying={timely})")
        space = list(shape[lead:lead + (self.ndim if len(shape) == full else sum(varying))])
        expected = ([n if v else 1 for n, v in zip(self.resolution, varying)] if len(shape) == full
                    else [n for n, v in zip(self.resolution, varying) if v])
        tensor = list(shape[len(shape) - order:]) if order else []
        if space != expected or any(d != self.ndim for d in tensor):
            raise self.error(f"'{where}' has shape {list(shape)}, expected [{', '.join(axes)}] on the grid "
                             f"{list(self.resolution)} of 'dimensions'")
        if timely and shape[int(sample)] != self.num_frames:
            raise self.error(f"'{where}' has {shape[int(sample)]} frames, 'dimensions/time' {self.num_frames}")
        absent = [i for i, v in enumerate(varying) if not v] if len(shape) == short and short != full else []
        resolution, ndim = self.resolution, self.ndim

        def read(trajectory: int, frames: slice) -> np.ndarray:
            index = ((trajectory,) if sample else ()) + ((frames,) if timely else ())
            values = np.asarray(dataset[index] if index else dataset[()], dtype=np.float32)
            if not timely:
                values = values[None]
            for axis in absent:
                values = np.expand_dims(values, 1 + axis)
            values = np.broadcast_to(values, (values.shape[0], *resolution, *values.shape[1 + ndim:]))
            return values.reshape(values.shape[0], *resolution, -1)

        self._add(SourceField(name, self.ndim ** order, timely, read))
        return int(shape[0]) if sample else None

    # ------------------------------------------------------------------ PDEBench
    def _read_pdebench(self, f: h5py.File) -> None:
        groups = sorted(k for k in f if isinstance(f[k], h5py.Group) and k != "grid")
        arrays = [k for k in f if isinstance(f[k], h5py.Dataset) and k not in PDEBENCH_COORDINATES
                  and k != "t-coordinate"]
        if groups and not arrays:
            self._read_pdebench_groups(f, groups)
        elif arrays:
            self._read_pdebench_arrays(f, arrays)
        else:
            raise self.error("neither arrays at the root (dataset 'tensor' or one per variable) nor one group per "
                             "trajectory holding 'data' (PDEBench layouts)")
        self.info = {"layout": "groups" if groups and not arrays else "arrays"}

    def _read_pdebench_groups(self, f: h5py.File, groups: list[str]) -> None:
        first = f[groups[0]]
        data = self._member(first, "data", h5py.Dataset, "PDEBench")
        grid = self._member(first, "grid", h5py.Group, "PDEBench")
        axes = [a for a in AXES if a in grid]
        if not axes:
            self._member(grid, "x", h5py.Dataset, "PDEBench")  # raises: the x coordinate is required
        shape = tuple(data.shape)
        if len(shape) != len(axes) + 2:
            raise self.error(f"'{groups[0]}/data' has {len(shape)} axes {list(shape)}, expected {len(axes) + 2} "
                             f"[T, {', '.join(axes)}, C] ({len(axes)} coordinate(s) in '{groups[0]}/grid')")
        coordinates = [np.asarray(self._member(grid, a, h5py.Dataset, "PDEBench")[()]).reshape(-1) for a in axes]
        if [c.size for c in coordinates] != list(shape[1:-1]):
            raise self.error(f"'{groups[0]}/data' has the grid {list(shape[1:-1])}, '{groups[0]}/grid' "
                             f"{[c.size for c in coordinates]}")
        times = np.asarray(grid["t"][()]).reshape(-1) if "t" in grid else None
        self._set_grid(shape[1:-1], coordinates, axes, times, f"{groups[0]}/grid/t")
        for name in groups[1:]:
            other = self._member(f[name], "data", h5py.Dataset, "PDEBench")
            if tuple(other.shape) != shape:
                raise self.error(f"'{name}/data' has shape {list(other.shape)}, '{groups[0]}/data' {list(shape)}")
        self.num_trajectories, self.num_frames = len(groups), int(shape[0])
        datasets = [f[name]["data"] for name in groups]

        def read(trajectory: int, frames: slice) -> np.ndarray:
            return np.asarray(datasets[trajectory][frames], dtype=np.float32)

        self._add(SourceField("data", int(shape[-1]), True, read))

    def _read_pdebench_arrays(self, f: h5py.File, arrays: list[str]) -> None:
        names = [c for c in PDEBENCH_COORDINATES if c in f]
        if not names:
            raise self.error("dataset 'x-coordinate' missing (PDEBench layout: the grid of the root arrays)")
        coordinates = [np.asarray(f[c][()]).reshape(-1) for c in names]
        times = np.asarray(f["t-coordinate"][()]).reshape(-1) if "t-coordinate" in f else None
        self._set_grid([c.size for c in coordinates], coordinates, names, times, "t-coordinate")
        space, counts, frames = list(self.resolution), set(), set()
        for name in sorted(arrays):
            dataset = f[name]
            shape = list(dataset.shape)
            if shape[2:2 + self.ndim] == space and len(shape) in (2 + self.ndim, 3 + self.ndim):
                timely = True
            elif shape[1:1 + self.ndim] == space and len(shape) in (1 + self.ndim, 2 + self.ndim):
                timely = False
            else:
                grid = ", ".join(a.upper() for a in AXES[:self.ndim])
                self.unreadable[name] = (f"'{name}' has shape {shape}, expected [N, T, {grid}] (optionally with a "
                                         f"trailing component axis) on the grid {space} of {', '.join(names)}")
                continue
            trailing = len(shape) == (2 if timely else 1) + self.ndim + 1  # a component axis
            counts.add(shape[0])
            if timely:
                frames.add(shape[1])
            self._add(SourceField(name, shape[-1] if trailing else 1, timely, _array_reader(dataset, timely, trailing)))
        if len(counts) > 1 or len(frames) > 1:
            raise self.error(f"the root arrays disagree on trajectories {sorted(counts)} or frames {sorted(frames)}")
        self.num_trajectories = counts.pop() if counts else 0
        self.num_frames = frames.pop() if frames else 1
        if self.fields and times is not None and times.size not in (self.num_frames, self.num_frames + 1):
            raise self.error(f"'t-coordinate' has {times.size} entries for {self.num_frames} frames")

    # ------------------------------------------------------------------ fields and reading
    def _add(self, source_field: SourceField) -> None:
        self.fields[source_field.name] = source_field

    def field(self, name: str, key: str = "data.external.fields") -> SourceField:
        if name in self.fields:
            return self.fields[name]
        if name in self.unreadable:
            raise self.error(self.unreadable[name])
        raise self.error(f"{key}: no field '{name}' in the file (its fields: {', '.join(self.fields)})")

    def describe_fields(self) -> str:
        return ", ".join(f"{n}[{f.components}]" if f.components > 1 else n for n, f in self.fields.items())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._file.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _array_reader(dataset: h5py.Dataset, timely: bool, trailing: bool) -> Callable[[int, slice], np.ndarray]:
    def read(trajectory: int, frames: slice) -> np.ndarray:
        values = np.asarray(dataset[(trajectory, frames) if timely else trajectory], dtype=np.float32)
        if not timely:
            values = values[None]
        return values if trailing else values[..., None]

    return read


def _detect(f: h5py.File) -> str:
    return WELL if "dimensions" in f or any(g in f for g in WELL_FIELD_GROUPS) else PDEBENCH


def _string(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return _string(value.reshape(-1)[0])
    return str(value)


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [_string(value)]
    return [_string(v) for v in np.asarray(value).reshape(-1)]


def _plain(value: Any) -> Any:
    """An attribute as JSON-able data (recorded with the import)."""
    if isinstance(value, (bytes, str)):
        return _string(value)
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return _strings(value)
    return array.tolist()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().split("\n")[0]) or type(exc).__name__


# ---------------------------------------------------------------------------- mapping onto the model
@dataclass(frozen=True)
class ChannelSource:
    """Physics channel `channel` is component `component` of file field `field`."""

    field: str
    component: int
    channel: int


def _parse(selector: str) -> tuple[str, int | None]:
    """'name' or 'name[i]' -> (name, i or None)."""
    match = _SELECTOR.match(str(selector))
    if not match:
        return str(selector), None
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def _parse_source(source: Source, selector: str) -> tuple[str, int | None]:
    """A file field, or one component: 'name[i]', 'name_i', or The Well's flattened names 'velocity_y',
    'stress_xy' (component names from the axes, x first; the forms without brackets fit in a command-line key)."""
    name, component = _parse(selector)
    if name in source.fields or component is not None:
        return name, component
    match = re.match(r"^(.+)_(\d+)$", name)
    if match and match.group(1) in source.fields:
        return match.group(1), int(match.group(2))
    match = re.match(r"^(.+)_([xyz]+)$", name)
    if match and match.group(1) in source.fields:
        axes = "xyz"[:source.ndim]
        letters = match.group(2)
        if all(a in axes for a in letters) and source.fields[match.group(1)].components == source.ndim ** len(letters):
            index = 0
            for letter in letters:
                index = index * source.ndim + axes.index(letter)
            return match.group(1), index
    return name, None


def _model_fields(model: Any) -> dict[str, tuple[int, int, bool, str]]:
    """Physics field name -> (first channel, channels, dynamic, grid)."""
    out, start = {}, 0
    for spec in model.fields:
        out[spec.name] = (start, int(spec.channels), bool(spec.dynamic), getattr(spec, "grid", "centered"))
        start += int(spec.channels)
    return out


def channel_map(source: Source, model: Any, mapping: Mapping[str, str]) -> list[ChannelSource]:
    """Where each of the model's channels comes from in `source`; one line naming the file and the field if
    a mapping is wrong or a channel has no source."""
    fields = _model_fields(model)
    pairs: list[tuple[str, int | None, str, int | None]] = []
    if mapping:
        for key, value in mapping.items():
            pairs.append((*_parse_source(source, key), *_parse(value)))
    else:
        for name in fields:
            if name in source.fields:
                pairs.append((name, None, name, None))
        if not pairs and len(source.fields) == 1:
            only = next(iter(source.fields.values()))
            if only.components == model.num_channels:
                return [ChannelSource(only.name, c, c) for c in range(only.components)]
    out: dict[int, ChannelSource] = {}
    for file_name, component, target, channel in pairs:
        source_field = source.field(file_name)
        if target not in fields:
            raise ConfigError("data.external.fields", f"physics fields among {', '.join(fields)}", target)
        first, count, dynamic, grid = fields[target]
        if component is not None and component >= source_field.components:
            raise source.error(f"data.external.fields: field '{file_name}' has {source_field.components} "
                               f"component(s), no component {component}")
        if channel is not None and channel >= count:
            raise ConfigError("data.external.fields", f"a channel of physics field '{target}' below {count}",
                              f"{target}[{channel}]")
        components = [component] if component is not None else list(range(source_field.components))
        channels = [first + channel] if channel is not None else list(range(first, first + count))
        if len(components) != len(channels):
            raise source.error(f"field '{file_name}' has {len(components)} component(s), physics field "
                               f"'{target}'{f'[{channel}]' if channel is not None else ''} takes {len(channels)}; "
                               "map single components with [i] in data.external.fields")
        if dynamic and not source_field.time_varying:
            raise source.error(f"field '{file_name}' is constant in time, physics field '{target}' evolves "
                               "(map it to a static field)")
        if grid == "staggered":
            log.warning("%s: field '%s' fills the staggered field '%s': its values are taken as the lower-face "
                        "values of each cell", source.path, file_name, target)
        for comp, ch in zip(components, channels):
            if ch in out:
                raise ConfigError("data.external.fields", "each physics channel filled once",
                                  f"channel {ch} of '{target}' from both '{out[ch].field}' and '{file_name}'")
            out[ch] = ChannelSource(source_field.name, comp, ch)
    for name, (first, count, _, _) in fields.items():
        missing = [c - first for c in range(first, first + count) if c not in out]
        if missing:
            channels = "" if len(missing) == count else f" (channel(s) {missing})"
            raise source.error(f"physics field '{name}'{channels} has no source in the file (its fields: "
                               f"{source.describe_fields()}); map one with data.external.fields")
    return [out[c] for c in sorted(out)]


# ---------------------------------------------------------------------------- plan of an import
@dataclass
class SplitSource:
    split: str
    path: Path
    first: int  # first trajectory of the file taken by this split
    count: int


@dataclass
class ImportPlan:
    """Everything an import reads, checked against the model before anything is written."""

    format: str
    parts: list[SplitSource]
    channels: list[ChannelSource]
    frames: slice
    digests: dict[str, str]  # source path -> sha256
    bounds: tuple[float, ...] | None
    dt: float | None
    truth: list[str]  # coefficients whose true value is known
    boundary: dict[str, str] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def hashed(self) -> dict[str, Any]:
        """What of the import changes the dataset (hashed into its name): the sources' contents, not their
        paths, so a moved file is not imported again and a changed one is."""
        return {"format": self.format,
                "sources": [{"split": p.split, "sha256": self.digests[str(p.path)], "first": p.first,
                             "count": p.count} for p in self.parts],
                "channels": [[c.field, c.component, c.channel] for c in self.channels],
                "frames": [self.frames.start, self.frames.stop, self.frames.step],
                "known_truth": sorted(self.truth)}

    def record(self) -> dict[str, Any]:
        """Where the data came from: the `source` attribute of the imported file."""
        return {**self.hashed(), "paths": {p.split: str(p.path) for p in self.parts},
                "bounds": list(self.bounds) if self.bounds else None, "dt": self.dt,
                "boundary": dict(self.boundary), "info": self.info}


def split_files(config: ExternalDataConfig) -> dict[str, Path]:
    out = {}
    for split in SPLITS:
        path = getattr(config.splits, split) or config.path
        if path:
            out[split] = Path(path).expanduser()
    return out


def _counts(cfg: HycoConfig) -> dict[str, int]:
    return {"train": cfg.data.num_train, "val": cfg.data.num_val, "test": cfg.data.num_test}


def source_frames(cfg: HycoConfig) -> slice:
    ext = cfg.data.external
    return slice(ext.start_frame, ext.start_frame + (cfg.data.num_frames - 1) * ext.frame_stride + 1,
                 ext.frame_stride)


def truth_names(cfg: HycoConfig, model: Any) -> list[str]:
    """Coefficients whose true value is known for external data: the known ones (`learn: false`, the solver
    uses their value) and those listed in `data.external.known_truth`."""
    names = [s.name for s in getattr(model, "coefficient_specs", ())]
    for name in cfg.data.external.known_truth:
        if name not in names:
            raise ConfigError("data.external.known_truth", f"coefficient names of the physics model among "
                              f"{', '.join(names) or '(none)'}", name)
    known = set(getattr(model, "known_coefficients", [])) | set(cfg.data.external.known_truth)
    return [n for n in names if n in known]


def plan_import(cfg: HycoConfig, model: Any, digest_dir: Path | None = None) -> ImportPlan:
    """Check every source file against the model and the config (grid, fields, trajectories, frames) and
    return what to import; DataError/ConfigError in one line otherwise."""
    ext = cfg.data.external
    files = split_files(ext)
    counts = _counts(cfg)
    frames = source_frames(cfg)
    parts, taken, checked = [], {}, {}
    domain: tuple[tuple[float, ...] | None, float | None] | None = None
    channels: list[ChannelSource] | None = None
    fmt, boundary, info = ext.format, {}, {}
    for split in SPLITS:
        if counts[split] == 0:
            continue
        if split not in files:
            raise ConfigError(f"data.external.splits.{split}", f"a file for the {counts[split]} {split} "
                              f"trajectories (or data.external.path)", "")
        path = files[split]
        key = str(path)
        with Source(path, ext.format) as source:
            if key not in checked:
                checked[key] = _check_source(source, model, cfg, frames)
                current = channel_map(source, model, ext.fields)
                if channels is not None and current != channels:
                    raise source.error(f"its fields map onto the physics channels differently from "
                                       f"{parts[0].path}'s")
                channels, fmt = current, source.format
                here = (source.bounds, None if source.dt is None else source.dt * ext.frame_stride)
                if domain is None:
                    domain, boundary, info = here, dict(source.boundary), dict(source.info)
                elif not _same_domain(domain, here):
                    raise source.error(f"grid bounds {here[0]} and dt {here[1]} differ from those of "
                                       f"{parts[0].path} ({domain[0]}, {domain[1]})")
            first = taken.get(key, 0)
            if first + counts[split] > source.num_trajectories:
                wanted = " + ".join(f"{counts[p.split]} {p.split}" for p in parts if str(p.path) == key)
                wanted = f"{wanted} + {counts[split]} {split}" if wanted else f"{counts[split]} {split}"
                raise source.error(f"holds {source.num_trajectories} trajectories, data.num_* take {wanted}")
            taken[key] = first + counts[split]
        parts.append(SplitSource(split, path, first, counts[split]))
    digests = {str(p): file_digest(p, digest_dir) for p in {p.path for p in parts}}
    bounds, dt = domain if domain is not None else (None, None)
    return ImportPlan(format=fmt, parts=parts, channels=channels or [], frames=frames, digests=digests,
                      bounds=bounds, dt=dt, truth=truth_names(cfg, model), boundary=boundary, info=info)


def _same_domain(a: tuple, b: tuple) -> bool:
    def close(x, y):
        if x is None or y is None:
            return x is y
        return bool(np.allclose(np.atleast_1d(x), np.atleast_1d(y), rtol=1e-5, atol=0))

    return close(a[0], b[0]) and close(a[1], b[1])


def _check_source(source: Source, model: Any, cfg: HycoConfig, frames: slice) -> bool:
    resolution = tuple(int(n) for n in model.resolution)
    if source.ndim != len(resolution):
        raise source.error(f"{source.ndim} spatial axes, physics '{cfg.physics.get('name')}' has {len(resolution)} "
                           f"(physics.resolution {list(resolution)})")
    if source.resolution != resolution:
        raise source.error(f"grid {list(source.resolution)} (x first), physics.resolution is {list(resolution)}")
    last = frames.stop - 1
    if last >= source.num_frames:
        raise source.error(f"trajectories of {source.num_frames} frames; data.num_frames={cfg.data.num_frames} "
                           f"from frame {frames.start} every {frames.step} needs {last + 1}")
    model_periodic = getattr(model, "boundary", "periodic") == "periodic"
    for axis, kind in source.boundary.items():
        if (kind == "periodic") != model_periodic:
            log.warning("%s: boundary '%s' along %s, the physics model's is '%s': the solver's boundary differs "
                        "from the data's", source.path, kind, axis, getattr(model, "boundary", "periodic"))
            break
    return True


# ---------------------------------------------------------------------------- the physics config
def physics_config(cfg: HycoConfig) -> dict[str, Any]:
    """`cfg.physics` with the external file's bounds and dt (times `frame_stride`) where the file has them and
    the model's config has the keys: the solver then runs on the data's domain and time step."""
    section = dict(cfg.physics)
    ext = cfg.data.external
    if not ext.enabled:
        return section
    files = split_files(ext)
    path = files.get("train") or next(iter(files.values()))
    with Source(path, ext.format) as source:
        found = {"bounds": list(source.bounds) if source.bounds is not None else None,
                 "dt": source.dt * ext.frame_stride if source.dt is not None else None}
    for key, value in found.items():
        if value is None or key not in section:
            continue
        old = section[key]
        if not np.allclose(np.atleast_1d(np.asarray(old, dtype=float)), np.atleast_1d(value), rtol=1e-6, atol=0):
            log.info("physics.%s = %s from %s (the config said %s)", key, _short(value), path, _short(old))
        section[key] = value
    return section


def _short(value: Any) -> str:
    values = np.atleast_1d(np.asarray(value, dtype=float)).tolist()
    text = ", ".join(f"{v:.6g}" for v in values)
    return f"[{text}]" if len(values) > 1 or isinstance(value, (list, tuple)) else text


# ---------------------------------------------------------------------------- source digests
def file_digest(path: Path, cache_dir: Path | None = None) -> str:
    """SHA-256 of a file's bytes; remembered in `cache_dir` by size and modification time (ns), so a large
    source is read in full only when it changed."""
    path = Path(path).resolve()
    stat = path.stat()
    cache_file = Path(cache_dir) / DIGEST_CACHE if cache_dir is not None else None
    cache = _read_cache(cache_file)
    entry = cache.get(str(path))
    if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns \
            and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            hasher.update(block)
    digest = hasher.hexdigest()
    if cache_file is not None and cache_file.parent.is_dir():
        cache[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
        with contextlib.suppress(OSError):  # a read-only data_dir: the digest is computed again next time
            atomic_write_json(cache, cache_file)
    return digest


def _read_cache(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------------------- the import
def import_trajectories(plan: ImportPlan, path: str | Path, *, model: Any, attrs: Mapping[str, Any],
                        coefficients: Mapping[str, np.ndarray], num_frames: int, window_frames: int) -> Path:
    """Copy the planned trajectories into a new store at `path` (atomically: a failure leaves nothing), one
    trajectory at a time: [T, *space x first, comps] per file field -> [T, C, *space x last]."""
    path = Path(path)
    sizes = {s: sum(p.count for p in plan.parts if p.split == s) for s in SPLITS}
    spatial_shape = tuple(int(n) for n in model.spatial_shape)
    ndim = len(spatial_shape)
    transpose = (0, *range(ndim, 0, -1))  # [T, x, y, z] -> [T, z, y, x]
    by_field: dict[str, list[ChannelSource]] = {}
    for channel in plan.channels:
        by_field.setdefault(channel.field, []).append(channel)
    log.info("importing %s into %s: %s trajectories x %d frames of %s", ", ".join(sorted(plan.digests)), path,
             sizes, num_frames, spatial_shape)
    with create_store(path, split_sizes=sizes, num_frames=num_frames, num_channels=int(model.num_channels),
                      spatial_shape=spatial_shape, attrs={**attrs, "source": plan.record()},
                      coefficients=coefficients, window_frames=window_frames) as writer:
        row = 0
        for part in plan.parts:
            with Source(part.path, plan.format) as source:
                for trajectory in range(part.first, part.first + part.count):
                    frames = np.empty((1, num_frames, int(model.num_channels), *spatial_shape), dtype=np.float32)
                    for name, channels in by_field.items():
                        values = _read(source, name, trajectory, plan.frames, num_frames)
                        for channel in channels:
                            frames[0, :, channel.channel] = np.transpose(values[..., channel.component], transpose)
                    if not np.isfinite(frames).all():
                        raise source.error(f"trajectory {trajectory} holds non-finite values")
                    writer.write(row, frames, np.array([trajectory], dtype=np.int64))
                    row += 1
    return path


def _read(source: Source, name: str, trajectory: int, frames: slice, num_frames: int) -> np.ndarray:
    source_field = source.field(name)
    try:
        values = source_field.read(trajectory, frames)
    except DataError:
        raise
    except Exception as exc:  # a damaged chunk: h5py raises several types
        raise source.error(f"cannot read trajectory {trajectory} of field '{name}' ({_first_line(exc)})") from None
    if values.shape[0] == 1 and num_frames > 1 and not source_field.time_varying:
        values = np.broadcast_to(values, (num_frames, *values.shape[1:]))
    return values

