"""External trajectories read where they lie (`data.external.in_place`): no copy in `data_dir`.

The dataset file is then a small one (hyco.data.store, attribute `in_place`): every attribute, the seeds, the
true coefficients and the train split's channel statistics, made by one pass over the data with the checks of an
import (layout, grid, frames, finite values); the `source` attribute names the files, their trajectories and
the field mapping, and records each file's size and modification time. `InPlaceReader` serves a simulation the
way the store would, `[T, C, *space]` with x last (hyco.data.external.reading), from the files themselves, and
refuses a file changed since the dataset was made in one line.
"""

from __future__ import annotations

import bisect
import contextlib
import threading
from pathlib import Path
from typing import Any

import numpy as np

from hyco.data.external.mapping import ChannelSource
from hyco.data.external.reading import TrajectoryShape, read_trajectory
from hyco.data.external.source import Source
from hyco.errors import DataError


def file_stamp(path: str | Path) -> list[int]:
    """What says a file is unchanged without reading it: its size and modification time (ns)."""
    stat = Path(path).stat()
    return [int(stat.st_size), int(stat.st_mtime_ns)]


class InPlaceReader:
    """The simulations of a dataset read in place, from the files its `source` attribute names."""

    def __init__(self, store: Any):
        record = store.attrs.get("source") or {}
        self.store_path = store.path
        self.format = record["format"]
        self.channels = [ChannelSource(field, int(component), int(channel))
                         for field, component, channel in record["channels"]]
        start, stop, step = record["frames"]
        self.frames = slice(start, stop, step)
        self.shape = TrajectoryShape(store.num_frames, store.num_channels, tuple(store.spatial_shape))
        self.stamps = {path: list(stamp) for path, stamp in record.get("stamps", {}).items()}
        paths = {split: list(files) for split, files in record["paths"].items()}
        # split -> its parts in order: (the part's first index in the split, file, first trajectory there, count)
        self.parts: dict[str, list[tuple[int, str, int, int]]] = {}
        for source in record["sources"]:
            parts = self.parts.setdefault(source["split"], [])
            start = parts[-1][0] + parts[-1][3] if parts else 0
            parts.append((start, paths[source["split"]][len(parts)], int(source["first"]), int(source["count"])))
        self._sources: dict[str, Source] = {}
        self._lock = threading.Lock()  # the loader's read-ahead thread and the training thread both read

    def _source(self, path: str) -> Source:
        with self._lock:
            return self._open(path)

    def _open(self, path: str) -> Source:
        if path not in self._sources:
            if path in self.stamps and Path(path).is_file() and file_stamp(path) != self.stamps[path]:
                raise DataError(f"{path}: changed since {self.store_path.name} was made to read it in place; run "
                                "the task again to check and read it anew")
            self._sources[path] = Source(path, self.format)
        return self._sources[path]

    def read(self, split: str, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Simulation `index` of `split`, float32 [T, C, *space] (into `out` when given)."""
        parts = self.parts.get(split, [])
        k = bisect.bisect_right([start for start, _, _, _ in parts], index) - 1
        if k < 0 or index - parts[k][0] >= parts[k][3]:
            raise IndexError(f"simulation {index} out of range for split {split!r}")
        start, path, first, _ = parts[k]
        return read_trajectory(self._source(path), self.channels, self.frames, self.shape, first + index - start,
                               out=out)

    def close(self) -> None:
        for source in self._sources.values():
            with contextlib.suppress(Exception):
                source.close()
        self._sources = {}
