"""Data larger than memory, for `benchmarks.data_pipeline`: an external file in The Well's layout read in place
(`data.external.in_place`), and the peak memory of an epoch streamed through a simulation cache a quarter of
the dataset's size.

The peak is measured in a child process of its own (nothing else there holds memory): its anonymous resident
memory (RssAnon: the data it holds, not the pages of library code that the first calls of a kernel map in) just
before two epochs, then the highest of samples taken every millisecond during them. The budget it is held to is
what the loader holds by design: the cache's slab (`max_cached_sims` simulations) and two batches (the one the
consumer holds while the next is made).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np

STATUS = Path("/proc/self/status")


def write_well_file(path: Path, sims: int, frames: int, space: tuple[int, int], dt: float = 0.1) -> Path:
    """A The Well file written with h5py alone: a 2-component `velocity` (t1_fields) [n, T, x, y, 2], random."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.attrs.update({"dataset_name": "bench", "grid_type": "cartesian", "n_spatial_dims": 2,
                        "n_trajectories": sims})
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = ["x", "y"]
        dims["time"] = np.arange(frames, dtype=np.float32) * dt
        for name, n in zip("xy", space):
            dims[name] = ((np.arange(n) + 0.5) / n).astype(np.float32)
        for order in (0, 2):
            f.create_group(f"t{order}_fields").attrs["field_names"] = []
        group = f.create_group("t1_fields")
        group.attrs["field_names"] = ["velocity"]
        data = group.create_dataset("velocity", shape=(sims, frames, *space, 2), dtype=np.float32)
        for sim in range(sims):
            data[sim] = rng.standard_normal((frames, *space, 2), dtype=np.float32)
        data.attrs.update({"sample_varying": True, "time_varying": True, "dim_varying": [True, True]})
    return path


def in_place_store(source: Path, directory: Path, frames: int) -> Path:
    """A hyco dataset that reads `source` in place (what `data.external.in_place=true` makes): every trajectory in
    the train split, `velocity` onto two channels."""
    from hyco.data.external import ChannelSource, ImportPlan, import_trajectories
    from hyco.data.external.importer import SplitSource

    with h5py.File(source) as f:
        sims, _, *space, _ = f["t1_fields/velocity"].shape
    plan = ImportPlan(format="the_well", parts=[SplitSource("train", source, 0, sims)],
                      channels=[ChannelSource("velocity", c, c) for c in range(2)], frames=slice(0, frames, 1),
                      digests={str(source): "bench"}, bounds=(1.0, 1.0), dt=0.1, truth=[], in_place=True)

    class Grid:  # what an import reads of the physics model
        num_channels, spatial_shape = 2, tuple(reversed(space))

    attrs = {"config_hash": "bench", "config": {}, "dynamic_channels": [0, 1], "bounds": [1.0, 1.0], "dt": 0.1,
             "field_specs": [{"name": "velocity", "channels": 2, "grid": "centered", "dynamic": True}]}
    return import_trajectories(plan, directory / f"{source.stem}-in-place.h5", model=Grid, attrs=attrs, coefficients={},
                               num_frames=frames, window_frames=5)


# ---------------------------------------------------------------------------- peak memory, in a child process
def _anonymous() -> int:
    """This process's anonymous resident memory (its data; not the code pages of libraries it touches)."""
    for line in STATUS.read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def stream_epoch(store_path: str, cached: int, rollout: int, batch_size: int, epochs: int = 2) -> dict:
    """In this process: `epochs` epochs of the loader over `store_path` with `cached` simulations in the cache;
    the anonymous memory before them and its peak during them (sampled every millisecond), in bytes."""
    import torch

    from hyco.data.loader import make_loader
    from hyco.data.store import TrajectoryStore
    from hyco.data.windows import WindowDataset

    torch.set_num_threads(1)
    store = TrajectoryStore(store_path)
    dataset = WindowDataset(store, "train", rollout, max_cached_sims=cached)
    loader = make_loader(dataset, batch_size, shuffle=True, seed=0)
    sim_bytes = int(np.prod(store.shape[1:])) * 4
    batch_bytes = batch_size * (rollout + 1) * int(np.prod(store.shape[2:])) * 4
    before = _anonymous()
    samples = [before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(_anonymous())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    windows = sum(batch.size for _ in range(epochs) for batch in loader)
    stop.set()
    sampler.join()
    return {"dataset_bytes": store.shape[0] * sim_bytes, "cache_bytes": cached * sim_bytes,
            "batch_bytes": batch_bytes, "budget_bytes": cached * sim_bytes + 2 * batch_bytes,
            "before": before, "peak": max(samples), "growth": max(samples) - before, "windows": windows,
            "epochs": epochs, "measured_by": "anonymous RSS sampled every ms"}


def peak_memory(store_path: Path, cached: int, rollout: int, batch_size: int) -> dict:
    """`stream_epoch` in a child process; its figures, and the peak growth over the budget."""
    code = ("import json, sys; from benchmarks.streaming import stream_epoch; "
            "print(json.dumps(stream_epoch(sys.argv[1], *map(int, sys.argv[2:]))))")
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code, str(store_path), str(cached), str(rollout), str(batch_size)],
                            capture_output=True, text=True, cwd=root, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1",
                                 "PYTHONPATH": f"{root}{os.pathsep}{root / 'src'}"})
    if result.returncode != 0:
        raise RuntimeError(f"the streaming child failed:\n{result.stderr[-2000:]}")
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["growth_over_budget"] = out["growth"] / out["budget_bytes"]
    out["dataset_over_budget"] = out["dataset_bytes"] / out["budget_bytes"]
    return out
