"""The import of external trajectories into a hyco store: the plan (every source checked against the model and
the config before anything is written), the sources' digests, the copy itself (or, in place, the description
of where the trajectories lie: hyco.data.external.in_place). The physics config on the data's domain is
hyco.data.external.physics_setup."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hyco.config.schema import ExternalDataConfig, HycoConfig
from hyco.data.external.in_place import file_stamp
from hyco.data.external.mapping import ChannelSource, channel_map, model_truth_sources
from hyco.data.external.reading import TrajectoryShape, coefficient_truth, read_trajectory
from hyco.data.external.source import Source
from hyco.data.store import SPLITS, create_store
from hyco.errors import ConfigError, DataError
from hyco.utils.filesystems import network_filesystem
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

DIGEST_CACHE = ".external-digests.json"  # in data_dir: path -> size, mtime, sha256 of imported sources


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
    # coefficient -> the file field that holds its true value
    truth_fields: dict[str, ChannelSource] = field(default_factory=dict)
    in_place: bool = False  # read where they lie (hyco.data.external.in_place), not copied

    def hashed(self) -> dict[str, Any]:
        """What of the import changes the dataset (hashed into its name): the sources' contents, not their
        paths, so a moved file is not imported again and a changed one is."""
        return {"format": self.format,
                "sources": [{"split": p.split, "sha256": self.digests[str(p.path)], "first": p.first,
                             "count": p.count} for p in self.parts],
                "channels": [[c.field, c.component, c.channel] for c in self.channels],
                "frames": [self.frames.start, self.frames.stop, self.frames.step],
                "known_truth": sorted(self.truth),
                **({"truth_fields": {k: [c.field, c.component] for k, c in sorted(self.truth_fields.items())}}
                   if self.truth_fields else {}),
                **({"in_place": True} if self.in_place else {})}

    def model_identity(self, model: Any) -> dict[str, Any]:
        """What of the physics model shapes the imported arrays (its fields on its grid) and the true values
        stored with them; not its solver settings (substeps, the guesses): another `physics.substeps` reads the
        same file into the same dataset."""
        spec = model.spec() if hasattr(model, "spec") else {}
        truth = {name: value.detach().cpu().double().reshape(-1).tolist()  # the config's; a file's is in its digest
                 for name, value in model.true_coefficients().items()
                 if name in self.truth and name not in self.truth_fields}
        return {"name": spec.get("name"), "fields": [[f.name, int(f.channels), bool(f.dynamic)] for f in model.fields],
                "resolution": [int(n) for n in model.spatial_shape], "truth": truth}

    def record(self) -> dict[str, Any]:
        """Where the data came from: the `source` attribute of the imported file."""
        stamps = {str(p): file_stamp(p) for p in dict.fromkeys(p.path for p in self.parts)} if self.in_place else {}
        return {**self.hashed(), "paths": {s: [str(p.path) for p in self.parts if p.split == s]
                                           for s in dict.fromkeys(p.split for p in self.parts)},
                **({"stamps": stamps} if stamps else {}),
                "bounds": list(self.bounds) if self.bounds else None, "dt": self.dt,
                "boundary": dict(self.boundary), "info": self.info}


HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")


def split_files(config: ExternalDataConfig) -> dict[str, list[Path]]:
    """The files of each split: `splits.<split>` or `path`; a folder stands for its HDF5 files in name order
    (The Well spreads a split over `data/train/*.hdf5`)."""
    out = {}
    for split in SPLITS:
        path = getattr(config.splits, split) or config.path
        if path:
            out[split] = _files_of(Path(path).expanduser(), split)
    return out


def _files_of(path: Path, split: str) -> list[Path]:
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in HDF5_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{path}: a folder without HDF5 files ({', '.join('*' + s for s in HDF5_SUFFIXES)}) for the "
                        f"{split} trajectories")
    return files


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
    return what to import; DataError/ConfigError in one line otherwise. A split spread over several files takes
    its trajectories from them in order; splits reading the same files take consecutive trajectories."""
    ext = cfg.data.external
    files = split_files(ext)
    counts = _counts(cfg)
    frames = source_frames(cfg)
    parts: list[SplitSource] = []
    taken: dict[tuple[Path, ...], int] = {}  # trajectories already taken from the files of a split
    trajectories: dict[Path, int] = {}  # of every file checked
    first_file: Path | None = None
    domain: tuple[tuple[float, ...] | None, float | None] | None = None
    channels: list[ChannelSource] | None = None
    fmt, boundary, info = ext.format, {}, {}
    truth_fields: dict[str, ChannelSource] = {}
    for split in SPLITS:
        if counts[split] == 0:
            continue
        if split not in files:
            raise ConfigError(f"data.external.splits.{split}", f"a file for the {counts[split]} {split} "
                              f"trajectories (or data.external.path)", "")
        files_here = tuple(files[split])
        for path in files_here:
            if path in trajectories:
                continue
            with Source(path, ext.format) as source:
                _check_source(source, model, cfg, frames)
                current = channel_map(source, model, ext.fields)
                truth_fields = model_truth_sources(source, model, ext.fields)
                if channels is not None and current != channels:
                    raise source.error(f"its fields map onto the physics channels differently from {first_file}'s")
                channels, fmt = current, source.format
                here = (source.bounds, None if source.dt is None else source.dt * ext.frame_stride)
                if domain is None:
                    domain, boundary, info, first_file = here, dict(source.boundary), dict(source.info), path
                elif not _same_domain(domain, here):
                    raise source.error(f"grid bounds {here[0]} and dt {here[1]} differ from those of "
                                       f"{first_file} ({domain[0]}, {domain[1]})")
                trajectories[path] = source.num_trajectories
        offset, wanted = taken.get(files_here, 0), counts[split]
        total = sum(trajectories[p] for p in files_here)
        if offset + wanted > total:
            before = " + ".join(f"{counts[p.split]} {p.split}" for p in parts if p.path in files_here)
            wanted_text = f"{before} + {wanted} {split}" if before else f"{wanted} {split}"
            where = f"{files_here[0]}" if len(files_here) == 1 else f"{files_here[0].parent} ({len(files_here)} files)"
            raise DataError(f"{where}: holds {total} trajectories, data.num_* take {wanted_text}")
        parts += _take(split, files_here, trajectories, offset, wanted)
        taken[files_here] = offset + wanted
    digests = {str(p): file_digest(p, digest_dir) for p in dict.fromkeys(p.path for p in parts)}
    bounds, dt = domain if domain is not None else (None, None)
    truth = sorted(set(truth_names(cfg, model)) | set(truth_fields))
    return ImportPlan(format=fmt, parts=parts, channels=channels or [], frames=frames, digests=digests,
                      bounds=bounds, dt=dt, truth=truth, boundary=boundary, info=info, truth_fields=truth_fields,
                      in_place=ext.in_place and _local(parts))


def _local(parts: list[SplitSource]) -> bool:
    """Every file lies on a local disk (`data.external.in_place` then reads them where they are)."""
    for path in dict.fromkeys(p.path for p in parts):
        kind = network_filesystem(path)
        if kind is not None:
            log.warning("%s lies on a network file system (%s): imported into data_dir instead of read in place "
                        "(data.external.in_place), which would read it over the network at every epoch", path, kind)
            return False
    return True


def read_truths(plan: ImportPlan, model: Any) -> dict[str, np.ndarray]:
    """The true values the files hold (`plan.truth_fields`), checked to be one value for every trajectory."""
    kinds = {spec.name: spec.kind for spec in model.coefficient_specs}
    out: dict[str, np.ndarray] = {}
    for name, channel in plan.truth_fields.items():
        value = None
        for part in plan.parts:
            with Source(part.path, plan.format) as source:
                value = coefficient_truth(source, channel, range(part.first, part.first + part.count), plan.frames,
                                          kinds[name], name, value)
        out[name] = value
    return out


def _take(split: str, files_here: tuple[Path, ...], trajectories: dict[Path, int], offset: int, wanted: int
          ) -> list[SplitSource]:
    """`wanted` trajectories of the files of `files_here` one after the other, from the `offset`-th on."""
    out = []
    for path in files_here:
        here = trajectories[path]
        if offset >= here:
            offset -= here
            continue
        count = min(wanted, here - offset)
        out.append(SplitSource(split, path, offset, count))
        wanted -= count
        offset = 0
        if wanted == 0:
            break
    return out


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
    trajectory at a time (hyco.data.external.reading); with `plan.in_place` read them all the same (the checks,
    the statistics) but write only the description of where they lie (hyco.data.external.in_place)."""
    path = Path(path)
    sizes = {s: sum(p.count for p in plan.parts if p.split == s) for s in SPLITS}
    shape = TrajectoryShape(num_frames, int(model.num_channels), tuple(int(n) for n in model.spatial_shape))
    log.info("%s %s %s: %s trajectories x %d frames of %s", "checking" if plan.in_place else "importing",
             ", ".join(sorted(plan.digests)), f"to read in place through {path}" if plan.in_place else f"into {path}",
             sizes, num_frames, shape.spatial)
    with create_store(path, split_sizes=sizes, num_frames=num_frames, num_channels=shape.channels,
                      spatial_shape=shape.spatial, attrs={**attrs, "source": plan.record()},
                      coefficients=coefficients, window_frames=window_frames, in_place=plan.in_place) as writer:
        row = 0
        frames = np.empty((1, *shape.frames_shape), dtype=np.float32)
        for part in plan.parts:
            with Source(part.path, plan.format) as source:
                for trajectory in range(part.first, part.first + part.count):
                    read_trajectory(source, plan.channels, plan.frames, shape, trajectory, out=frames[0])
                    writer.write(row, frames, np.array([trajectory], dtype=np.int64))
                    row += 1
    return path
