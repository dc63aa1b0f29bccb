"""Copying a simulation's chunks as they are stored, without HDF5's filter pipeline.

A dataset file's trajectories are chunked `(1, frames, channels, *space)` with fletcher32 as their only filter,
so a stored chunk is its float32 values followed by a 4-byte checksum. HDF5 recomputes that checksum on every
read, which costs about three quarters of the time of reading a simulation from the page cache. A reader that
has already read (and so checked) a simulation may copy its chunks directly when it needs it again.
"""

from __future__ import annotations

import h5py
import numpy as np


def frames_per_stored_chunk(dataset: h5py.Dataset) -> int | None:
    """Frames per chunk when every chunk holds whole frames of one simulation, little-endian float32, with
    fletcher32 as its only filter; None for any other layout (then only HDF5's own read applies)."""
    plist = dataset.id.get_create_plist()
    filters = [plist.get_filter(k)[0] for k in range(plist.get_nfilters())]
    chunks = dataset.chunks
    whole = (chunks is not None and dataset.dtype == np.dtype("<f4") and chunks[0] == 1
             and tuple(chunks[2:]) == tuple(dataset.shape[2:]) and filters == [h5py.h5z.FILTER_FLETCHER32])
    return int(chunks[1]) if whole else None


def copy_stored_chunks(dataset: h5py.Dataset, row: int, frames_per_chunk: int, out: np.ndarray) -> np.ndarray:
    """Simulation `row` of `dataset` (a layout `frames_per_stored_chunk` accepted) into `out`, a C-contiguous
    float32 array [T, C, *space]; the checksums are not recomputed."""
    frames = out.reshape(out.shape[0], -1)  # a view: `out` is contiguous
    corner = (0,) * (dataset.ndim - 2)
    for first in range(0, out.shape[0], frames_per_chunk):
        count = min(frames_per_chunk, out.shape[0] - first)
        _, raw = dataset.id.read_direct_chunk((row, first, *corner))
        frames[first:first + count] = np.frombuffer(raw, np.float32, count=count * frames.shape[1]).reshape(count, -1)
    return out
