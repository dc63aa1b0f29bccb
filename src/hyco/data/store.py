"""One HDF5 file per dataset: trajectories of every split, true coefficients, and what made them.

Layout (readable with plain h5py, see README "Data"):

- dataset ``trajectories``: float32 ``[sim, time, channel, *space]`` (space in tensor order, x last),
  chunked along time so a window of a few frames reads one or two chunks, fletcher32 checksums on
  every chunk so that a corrupt chunk raises instead of being read silently;
- dataset ``seeds``: int64 ``[sim]``, the seed of each simulation's random initial state;
- group ``coefficients``: one dataset per true coefficient (scalar ``()`` or a field ``[*space]``);
- attributes: ``format_version``, ``config_hash``, ``config`` (JSON of the hashed config),
  ``field_specs`` (JSON), ``dynamic_channels``, ``bounds`` (x first), ``dt``, ``splits``
  (JSON ``{"train": [start, stop], ...}`` sim index ranges), ``channel_mean``/``channel_std`` (of the
  train split), ``physics`` (JSON spec of the model), ``versions`` (JSON), ``complete``, and
  ``checksums`` written last; a file imported from data made elsewhere (`hyco.data.external`) also has
  ``source`` (JSON: the source files, their SHA-256, the field mapping), its ``seeds`` are the
  trajectories' indices in their source file, and ``coefficients`` holds only the true values known;
  ``reference`` says what simulated the trajectories (hyco.data.reference) or that they were imported.

Files are written under a temporary name and renamed when complete, so a crash never leaves a
half-written file under the final name; a reader still checks ``complete`` and the shapes, because a
file can be truncated or damaged after it was written.

Damage anywhere in the file is detected, by three layers of checksums:
- HDF5's own metadata checksums: the file is written in the HDF5 1.10 format (superblock v3, v2 object
  headers, new chunk indices), whose every metadata block carries a Jenkins checksum that the library
  checks on read (the default, oldest format has none: a flipped byte in an object header or B-tree was
  read as valid);
- fletcher32 on every chunk of ``trajectories`` (checked when a chunk is read; `verify` reads them all);
- ``checksums`` (hyco.data.checksums): a JSON map of SHA-256 digests of every attribute, of the values
  of every other dataset (``seeds``, ``coefficients/*``: small, contiguous, without a filter of their own), of the
  layout (which objects exist) and of the type, shape, chunking and filters of ``trajectories``,
  compared on every open, so a change is named ("dataset 'seeds' changed", "attribute 'channel_std'
  missing").
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from hyco.data.checksums import checksum_problem, content_digests
from hyco.data.stored_chunks import copy_stored_chunks, frames_per_stored_chunk
from hyco.errors import DataError
from hyco.utils.io import atomic_path

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: HDF5 1.10 file format with metadata checksums, `checksums` attribute
SPLITS = ("train", "val", "test")
TRAJECTORIES = "trajectories"
SEEDS = "seeds"
COEFFICIENTS = "coefficients"
CHECKSUMS = "checksums"
COMPLETE = "complete"
IN_PLACE = "in_place"  # the trajectories are read from the external files the `source` attribute names
LIBVER = ("v110", "v110")  # the oldest HDF5 file format whose metadata blocks all carry checksums
CHUNK_TARGET_BYTES = 1 << 20  # ~1 MiB chunks: a few frames each, read in one call
JSON_ATTRS = ("config", "field_specs", "splits", "physics", "versions", "source")
# what h5py raises for a damaged chunk, index or heap (besides OSError, the usual one)
H5_ERRORS = (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError, IndexError)


def time_chunk(num_frames: int, frame_bytes: int, window_frames: int = 1) -> int:
    """Frames per chunk: about CHUNK_TARGET_BYTES, never fewer than one window, never more than T."""
    by_size = max(1, CHUNK_TARGET_BYTES // max(1, frame_bytes))
    return int(min(num_frames, max(window_frames, by_size)))


def _encode_attr(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)) and not _is_numeric_sequence(value):
        return json.dumps(value, sort_keys=True)
    return value


def _is_numeric_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    for v in value) and len(value) > 0


def channel_sums(trajectories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sums and sums of squares over space, float64 [b, T, C] (partial sums in float32 are exact enough
    for statistics and cheap; any non-finite value makes its sum non-finite)."""
    tensor = torch.from_numpy(np.ascontiguousarray(trajectories, dtype=np.float32))
    space = tuple(range(3, tensor.dim()))
    return tensor.sum(dim=space).double().numpy(), tensor.square().sum(dim=space).double().numpy()


class StoreWriter:
    """Receives chunks of simulations of each split and tracks which ones are written. With `in_place` the
    trajectories stay where they are read from (hyco.data.external.in_place): only their seeds and statistics
    are written."""

    def __init__(self, file: h5py.File, splits: Mapping[str, tuple[int, int]], in_place: bool = False):
        self._file = file
        self._in_place = in_place
        self._splits = dict(splits)
        self._written = np.zeros(file[TRAJECTORIES].shape[0], dtype=bool)
        num_channels = file[TRAJECTORIES].shape[2]
        self._sum = np.zeros(num_channels, dtype=np.float64)
        self._sum_sq = np.zeros(num_channels, dtype=np.float64)
        self._count = 0

    def write(self, first: int, trajectories: np.ndarray, seeds: np.ndarray) -> None:
        """Store `trajectories` [b, T, C, *space] as simulations (rows) first..first+b-1 of the file.

        Rows are numbered across the splits in the order train, val, test (see the `splits` attribute),
        so a batch of generation may straddle two splits.
        """
        b = trajectories.shape[0]
        if first < 0 or first + b > self._written.size:
            raise ValueError(f"rows {first}..{first + b - 1} outside the {self._written.size} simulations")
        rows = slice(first, first + b)
        if not self._in_place:
            self._file[TRAJECTORIES][rows] = np.asarray(trajectories, dtype=np.float32)
        self._file[SEEDS][rows] = seeds
        self._written[rows] = True
        train_start, train_stop = self._splits["train"]
        lo, hi = max(first, train_start), min(first + b, train_stop)
        if lo < hi:  # statistics of the train split: the scale of observation noise
            sums, sums_sq = channel_sums(trajectories[lo - first:hi - first])
            self._sum += sums.sum(axis=(0, 1))
            self._sum_sq += sums_sq.sum(axis=(0, 1))
            self._count += (hi - lo) * trajectories.shape[1] * int(np.prod(trajectories.shape[3:]))

    def finish(self) -> None:
        if not self._written.all():
            raise RuntimeError(f"dataset incomplete: simulation row {int(np.argmin(self._written))} never written")
        mean = self._sum / max(self._count, 1)
        var = np.maximum(self._sum_sq / max(self._count, 1) - mean**2, 0.0)
        self._file.attrs["channel_mean"] = mean
        self._file.attrs["channel_std"] = np.sqrt(var)
        self._file.flush()
        self._file.attrs[COMPLETE] = 1  # a reader trusts nothing without it
        digests = content_digests(self._file, CHECKSUMS, TRAJECTORIES)
        self._file.attrs[CHECKSUMS] = json.dumps(digests, sort_keys=True)  # last


@contextlib.contextmanager
def create_store(
    path: str | Path,
    *,
    split_sizes: Mapping[str, int],
    num_frames: int,
    num_channels: int,
    spatial_shape: tuple[int, ...],
    attrs: Mapping[str, Any],
    coefficients: Mapping[str, np.ndarray],
    window_frames: int = 1,
    in_place: bool = False,
) -> Iterator[StoreWriter]:
    """Open a new dataset file under a temporary name; on success it is marked complete and renamed.

    If the block raises, the temporary file is removed and nothing appears under `path`. With `in_place` the
    file describes trajectories read where they lie (attribute `in_place`, its `trajectories` never written:
    HDF5 allocates no chunk for it).
    """
    splits, offset = {}, 0
    for name in SPLITS:
        size = int(split_sizes.get(name, 0))
        splits[name] = (offset, offset + size)
        offset += size
    shape = (offset, num_frames, num_channels, *spatial_shape)
    frame_bytes = 4 * num_channels * int(np.prod(spatial_shape))
    chunks = (1, time_chunk(num_frames, frame_bytes, window_frames), num_channels, *spatial_shape)
    with atomic_path(path) as tmp, h5py.File(tmp, "w", libver=LIBVER) as file:
        file.create_dataset(TRAJECTORIES, shape=shape, dtype=np.float32, chunks=chunks, fletcher32=True)
        file.create_dataset(SEEDS, shape=(offset,), dtype=np.int64)
        group = file.create_group(COEFFICIENTS)
        for name, value in coefficients.items():
            group.create_dataset(name, data=np.asarray(value, dtype=np.float32))
        file.attrs["format_version"] = FORMAT_VERSION
        file.attrs["splits"] = json.dumps({k: list(v) for k, v in splits.items()})
        for key, value in attrs.items():
            file.attrs[key] = _encode_attr(value)
        if in_place:
            file.attrs[IN_PLACE] = 1
        writer = StoreWriter(file, splits, in_place)
        yield writer
        writer.finish()
    log.debug("wrote %s: %s, chunks %s", path, shape, chunks)


def _decode_attrs(raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, bytes):
            value = value.decode()
        if key in JSON_ATTRS and isinstance(value, str):
            value = json.loads(value)
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


class TrajectoryStore:
    """Read-only view of one dataset file, validated on open.

    Raises DataError naming the file and the problem when the file is missing, truncated, incomplete,
    of another format version, or internally inconsistent. The HDF5 handle is reopened after a fork
    (DataLoader workers), because h5py handles must not be shared between processes.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle: h5py.File | None = None
        self._pid = -1
        self._reader: Any = None  # of a dataset read in place (`_external`)
        self._reader_pid = -1
        self._raw_layout: int | bool | None = False  # frames per stored chunk (None: another layout; False: unread)
        file = self._file()
        try:
            self.attrs = _decode_attrs(file.attrs)
        except Exception as exc:  # damaged attribute storage or JSON: the file is untrusted input
            self.close()
            raise self._error(f"unreadable attributes, the file is corrupt ({_first_line(exc)})") from None
        try:
            self._validate(file)
        except DataError:
            self.close()
            raise
        except Exception as exc:  # a damaged object header, index or heap: HDF5 raises many types
            self.close()
            raise self._error(f"unreadable structure, the file is corrupt ({_first_line(exc)})") from None

    # ------------------------------------------------------------------ opening and validation
    def _error(self, problem: str) -> DataError:
        return DataError(f"{self.path}: {problem}")

    def _file(self) -> h5py.File:
        if self._handle is None or self._pid != os.getpid():
            if self.path.is_dir():
                raise self._error("a directory is in the dataset file's place; remove it")
            if not self.path.is_file():
                raise self._error("no such dataset file")
            try:
                self._handle = h5py.File(self.path, "r")
            except Exception as exc:  # OSError mostly; a damaged superblock can raise others
                raise self._error(f"not a readable HDF5 file, truncated or corrupt ({_first_line(exc)})") from None
            self._pid = os.getpid()
        return self._handle

    def _validate(self, file: h5py.File) -> None:
        version = self.attrs.get("format_version")
        if version != FORMAT_VERSION:
            raise self._error(f"format version {version!r}, this hyco reads version {FORMAT_VERSION}")
        if self.attrs.get(COMPLETE) != 1:
            raise self._error("incomplete: the write was interrupted (no 'complete' marker)")
        for key in ("config_hash", "field_specs", "dynamic_channels", "bounds", "dt", "splits", "channel_mean",
                    "channel_std"):
            if key not in self.attrs:
                raise self._error(f"attribute {key!r} missing")
        if TRAJECTORIES not in file or not isinstance(file[TRAJECTORIES], h5py.Dataset):
            raise self._error(f"dataset {TRAJECTORIES!r} missing")
        data = file[TRAJECTORIES]
        shape = data.shape
        bounds = list(np.atleast_1d(self.attrs["bounds"]))
        channels = sum(int(f["channels"]) for f in self.attrs["field_specs"])
        if data.dtype != np.float32 or len(shape) != 3 + len(bounds):
            raise self._error(f"{TRAJECTORIES!r} is {data.dtype} {shape}, expected float32 "
                              f"[sim, time, channel, {len(bounds)} spatial axes]")
        if shape[2] != channels:
            raise self._error(f"{TRAJECTORIES!r} has {shape[2]} channels, the field specs declare {channels}")
        expected_start = 0
        for name in SPLITS:
            start, stop = self.attrs["splits"].get(name, (expected_start, expected_start))
            if start != expected_start or stop < start:
                raise self._error(f"split {name!r} range {[start, stop]} is not contiguous")
            expected_start = stop
        if expected_start != shape[0]:
            raise self._error(f"splits cover {expected_start} simulations, {TRAJECTORIES!r} holds {shape[0]}")
        if COEFFICIENTS not in file:
            raise self._error(f"group {COEFFICIENTS!r} missing")
        if CHECKSUMS not in self.attrs:
            raise self._error(f"attribute {CHECKSUMS!r} missing")
        problem = checksum_problem(file, self.attrs[CHECKSUMS], CHECKSUMS, TRAJECTORIES)
        if problem is not None:
            raise self._error(problem)

    def verify(self) -> None:
        """Read every chunk once (checksums) and check for non-finite values; DataError if damaged."""
        for split in SPLITS:
            for index in range(self.num_sims(split)):
                values = self.read_simulation(split, index)
                if not np.isfinite(values).all():
                    raise self._error(f"simulation {index} of split {split!r} holds non-finite values")

    @property
    def in_place(self) -> bool:
        """The trajectories are read where they lie, in the external files of the `source` attribute."""
        return bool(self.attrs.get(IN_PLACE))

    def _external(self) -> Any:
        """The reader of the external files of a dataset read in place (opened once per process)."""
        if self._reader is None or self._reader_pid != os.getpid():
            from hyco.data.external.in_place import InPlaceReader

            self._reader, self._reader_pid = InPlaceReader(self), os.getpid()
        return self._reader

    def _read(self, selection: Any, what: str) -> np.ndarray:
        try:
            return self._file()[TRAJECTORIES][selection]
        except H5_ERRORS as exc:
            raise self._error(f"cannot read {what}, the file is corrupt ({_first_line(exc)}); "
                              f"delete it or regenerate with data.regenerate=always") from None

    # ------------------------------------------------------------------ metadata
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._file()[TRAJECTORIES].shape)

    @property
    def num_frames(self) -> int:
        return self.shape[1]

    @property
    def num_channels(self) -> int:
        return self.shape[2]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.shape[3:]

    @property
    def field_specs(self) -> list[dict[str, Any]]:
        return list(self.attrs["field_specs"])

    @property
    def dynamic_channels(self) -> list[int]:
        return [int(c) for c in np.atleast_1d(self.attrs["dynamic_channels"])]

    @property
    def bounds(self) -> tuple[float, ...]:
        return tuple(float(b) for b in np.atleast_1d(self.attrs["bounds"]))

    @property
    def dt(self) -> float:
        return float(self.attrs["dt"])

    @property
    def config_hash(self) -> str:
        return str(self.attrs["config_hash"])

    @property
    def data_seed(self) -> int:
        """`data.seed` of the config that made the file (it also seeds the observation's masks and noise)."""
        data = self.attrs.get("config", {}).get("data", {})
        return int(data.get("seed") or 0)

    @property
    def periodic(self) -> bool:
        """Whether the data's domain is periodic (the physics spec's `boundary`; imported data: not known, False)."""
        return str(self.attrs.get("physics", {}).get("boundary", "")) == "periodic"

    @property
    def channel_std(self) -> torch.Tensor:
        """Per-channel standard deviation of the train split (the scale of observation noise)."""
        return torch.as_tensor(np.atleast_1d(self.attrs["channel_std"]), dtype=torch.float32)

    @property
    def coefficient_names(self) -> list[str]:
        """The coefficients whose true value the file records (imported data: only those known)."""
        return sorted(self._file()[COEFFICIENTS])

    @property
    def true_coefficients(self) -> dict[str, torch.Tensor]:
        group = self._file()[COEFFICIENTS]
        return {name: torch.as_tensor(np.asarray(group[name][()]), dtype=torch.float32) for name in group}

    def split_range(self, split: str) -> tuple[int, int]:
        if split not in SPLITS:
            raise DataError(f"{self.path}: unknown split {split!r}, expected one of {', '.join(SPLITS)}")
        start, stop = self.attrs["splits"].get(split, (0, 0))
        return int(start), int(stop)

    def num_sims(self, split: str) -> int:
        start, stop = self.split_range(split)
        return stop - start

    def seeds(self, split: str) -> np.ndarray:
        start, stop = self.split_range(split)
        return self._file()[SEEDS][start:stop]

    # ------------------------------------------------------------------ data
    def read_simulation(self, split: str, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Simulation `index` of `split` as float32 [T, C, *space], read into `out` when given."""
        start, stop = self.split_range(split)
        if not 0 <= index < stop - start:
            raise IndexError(f"simulation {index} out of range for split {split!r} with {stop - start}")
        if self.in_place:
            return self._external().read(split, index, out)
        if out is None:
            return self._read(np.s_[start + index], f"simulation {index} of split {split!r}")
        try:
            self._file()[TRAJECTORIES].read_direct(out, source_sel=np.s_[start + index])
        except H5_ERRORS as exc:
            raise self._error(f"cannot read simulation {index} of split {split!r}, the file is corrupt "
                              f"({_first_line(exc)}); delete it or regenerate with data.regenerate=always") from None
        return out

    def reread_simulation(self, split: str, index: int, out: np.ndarray) -> np.ndarray:
        """Simulation `index` of `split` again, into `out`, for a reader that has read (and so checked) it before:
        its chunks copied as stored, checksums not recomputed (hyco.data.stored_chunks, 2.6x faster)."""
        if self._raw_layout is False:
            self._raw_layout = None if self.in_place else frames_per_stored_chunk(self._file()[TRAJECTORIES])
        if self._raw_layout is None or not out.flags.c_contiguous or out.dtype != np.float32:
            return self.read_simulation(split, index, out)
        start, stop = self.split_range(split)
        if not 0 <= index < stop - start:
            raise IndexError(f"simulation {index} out of range for split {split!r} with {stop - start}")
        try:
            return copy_stored_chunks(self._file()[TRAJECTORIES], start + index, self._raw_layout, out)
        except H5_ERRORS as exc:
            raise self._error(f"cannot read simulation {index} of split {split!r}, the file is corrupt "
                              f"({_first_line(exc)}); delete it or regenerate with data.regenerate=always") from None

    def trajectories(self, split: str) -> torch.Tensor:
        """Every simulation of `split` as one tensor [N, T, C, *space] (loads them all into memory)."""
        start, stop = self.split_range(split)
        if self.in_place:
            out = np.empty((stop - start, *self.shape[1:]), dtype=np.float32)
            for index in range(stop - start):
                self.read_simulation(split, index, out=out[index])
            return torch.from_numpy(out)
        return torch.from_numpy(self._read(np.s_[start:stop], f"split {split!r}"))

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                self._handle.close()
        self._handle = None
        if self._reader is not None and self._reader_pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __enter__(self) -> TrajectoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_handle"], state["_pid"] = None, -1  # reopened lazily in the receiving process
        state["_reader"], state["_reader_pid"] = None, -1
        return state

    def __repr__(self) -> str:
        splits = ", ".join(f"{s}={self.num_sims(s)}" for s in SPLITS)
        return f"TrajectoryStore({str(self.path)!r}, {splits}, frames={self.num_frames}, space={self.spatial_shape})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n")[0]
    return text or type(exc).__name__
