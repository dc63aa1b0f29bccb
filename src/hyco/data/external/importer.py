"""The import of external trajectories into a hyco store: the plan (every source checked against the model and
the config before anything is written), the physics config on the data's domain, the copy itself."""

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
from hyco.data.external.layout import first_line
from hyco.data.external.mapping import ChannelSource, channel_map
from hyco.data.external.source import Source
from hyco.data.store import SPLITS, create_store
from hyco.errors import ConfigError, DataError
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
        raise source.error(f"cannot read trajectory {trajectory} of field '{name}' ({first_line(exc)})") from None
    if values.shape[0] == 1 and num_frames > 1 and not source_field.time_varying:
        values = np.broadcast_to(values, (num_frames, *values.shape[1:]))
    return values

