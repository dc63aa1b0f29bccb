"""Data pipeline throughput against bare references measured in the same run.

1. Loader: windows/s of `make_loader(WindowDataset(...))` over a whole epoch against gathering the same
   windows (same shuffled order, same batch size) from a tensor pre-loaded in memory.  Target >= 0.8x with every
   simulation cached, with a cache of a quarter of them (data larger than memory: the loader reads ahead in a
   background thread), and for an external file in The Well's layout read in place through such a cache.
   Memory: the peak resident-set growth while an epoch streams a dataset 4x or more the loader's budget (its
   cache plus the batches in flight), in a child process (benchmarks.streaming).  Target <= 1.1x the budget.
2. Generation: sample-steps/s of `ensure_dataset(..., regenerate=always)` (initial states, batched
   jit rollout, finiteness check, HDF5 write, atomic rename) against the bare `model.rollout` of the same
   batches.  Target >= 0.8x.

Every figure is measured after a warm-up, as the median of repeats (min and max reported too).
Run: ``PYTHONPATH=src python -m benchmarks.data_pipeline [--quick] [--device cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import figure, interleaved, machine, rate, write_json
from benchmarks.streaming import in_place_store, peak_memory, write_well_file


def _syncer(device: torch.device) -> Callable[[], None] | None:
    """Wait for queued GPU work before reading the clock (nothing to wait for on CPU)."""
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else None


# ---------------------------------------------------------------------------- loader
def _write_random_store(path: Path, sims: int, frames: int, channels: int, space: tuple[int, ...]) -> None:
    from hyco.data.store import create_store

    rng = np.random.default_rng(0)
    attrs = {"config_hash": "bench", "config": {}, "dynamic_channels": list(range(channels)),
             "field_specs": [{"name": "u", "channels": channels, "grid": "centered", "dynamic": True}],
             "bounds": [1.0] * len(space), "dt": 0.1}
    with create_store(path, split_sizes={"train": sims}, num_frames=frames, num_channels=channels,
                      spatial_shape=space, attrs=attrs, coefficients={}) as writer:
        for first in range(0, sims, 16):
            n = min(16, sims - first)
            writer.write(first, rng.standard_normal((n, frames, channels, *space), dtype=np.float32), np.arange(n))


def bench_loader(quick: bool, device: torch.device) -> dict:
    from hyco.config.schema import ObservationConfig
    from hyco.data.loader import BatchOrder, make_loader
    from hyco.data.store import TrajectoryStore
    from hyco.data.windows import WindowDataset

    sims, frames, channels, space = (16, 16, 2, (32, 32)) if quick else (64, 32, 2, (64, 64))
    rollout, batch_size, repeats = 4, 32, 3 if quick else 5
    out: dict = {"sims": sims, "frames": frames, "channels": channels, "space": list(space), "rollout_steps": rollout,
                 "batch_size": batch_size, "device": str(device)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        _write_random_store(path, sims, frames, channels, space)
        store = TrajectoryStore(path)
        preloaded = store.trajectories("train")
        offsets = torch.arange(rollout + 1)
        windows_per_sim = frames - rollout
        total = sims * windows_per_sim
        order = BatchOrder(total, batch_size, shuffle=True, seed=0)
        pin = device.type == "cuda"

        def reference() -> None:
            for index in order:  # the bare loop: gather windows from the in-memory tensor
                sim, t = index // windows_per_sim, index % windows_per_sim
                window = preloaded[sim[:, None], t[:, None] + offsets]
                batch = (window[:, 0], window[:, 1:])
                if device.type != "cpu":
                    batch = tuple((b.pin_memory() if pin else b).to(device, non_blocking=True) for b in batch)

        def loader_rate(dataset) -> Callable[[], float]:
            loader = make_loader(dataset, batch_size, shuffle=True, seed=0, device=device)

            def epoch() -> None:
                for _ in loader:
                    pass

            return rate(total, epoch, sync=sync)

        sync = _syncer(device)
        well = write_well_file(Path(tmp) / "velocity.hdf5", sims, frames, tuple(space))
        external = TrajectoryStore(in_place_store(well, Path(tmp), frames))
        quarter = max(1, sims // 4)
        cases = {
            "preloaded tensor (reference)": rate(total, reference, sync=sync),
            "loader, all sims cached": loader_rate(WindowDataset(store, "train", rollout, max_cached_sims=sims)),
            "loader, centre mask + noise": loader_rate(WindowDataset(
                store, "train", rollout, max_cached_sims=sims,
                observation=ObservationConfig(spatial="centre", noise_level=0.05, states="full"))),
            "loader, cache = 1/4 of sims": loader_rate(WindowDataset(store, "train", rollout, max_cached_sims=quarter)),
            "streamed external file in place": loader_rate(WindowDataset(external, "train", rollout,
                                                                        max_cached_sims=quarter)),
        }
        measured = interleaved(cases, repeats, reference="preloaded tensor (reference)")
        store.close()
        external.close()
        out["memory"] = streamed_memory(Path(tmp), 2 * sims, frames, channels, space, rollout, batch_size // 2)
    out["windows_per_s"] = measured["cases"]
    out["ratio"] = measured["ratio"]
    out["machine"] = measured["machine"]
    out["target_ratio"] = 0.8
    out["meets_target"] = all(out["ratio"][k] >= 0.8 for k in ("loader, all sims cached", "loader, cache = 1/4 of sims",
                                                             "streamed external file in place"))
    return out


def streamed_memory(directory: Path, sims: int, frames: int, channels: int, space: tuple[int, ...], rollout: int,
                    batch_size: int) -> dict:
    """Peak memory while streaming `sims` simulations (a hyco store, and a The Well file read in place) through a
    cache of an eighth of them: the data are about 6x the loader's budget (cache + two batches)."""
    store = directory / "memory.h5"
    _write_random_store(store, sims, frames, channels, space)
    well = write_well_file(directory / "memory.hdf5", sims, frames, tuple(space))
    external = in_place_store(well, directory, frames)
    cached = max(1, sims // 8)
    return {"hyco store": peak_memory(store, cached, rollout, batch_size),
            "external file in place": peak_memory(external, cached, rollout, batch_size)}


# ---------------------------------------------------------------------------- generation
def bench_generation(quick: bool, device: torch.device) -> dict:
    from hyco.config.schema import DataConfig, HycoConfig
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    resolution, sims, frames, batch = ([32, 32], 16, 17, 4) if quick else ([64, 64], 32, 33, 8)
    repeats = 3 if quick else 5
    # the default experiment's physics (32^2, dt 0.02, 4 substeps); 64^2 needs a smaller dt for stability
    physics = {"name": "burgers", "resolution": resolution, "bounds": [1.0, 1.0], "dt": 0.02 if quick else 0.01,
               "substeps": 4}
    model = build_physics(physics, device, torch.float32)
    cfg = HycoConfig(task="generate", experiment_name="bench", physics=physics, network={"name": "none"},
                     data=DataConfig(num_train=sims, num_val=0, num_test=0, num_frames=frames, rollout_steps=1,
                                     generation_batch=batch, regenerate="always"))
    coefficients = model.true_coefficients()
    states = torch.cat([model.initial_state(1, seed) for seed in range(batch)])
    sample_steps = sims * (frames - 1)

    def bare() -> None:
        with torch.no_grad():
            for _ in range(sims // batch):
                model.rollout(states, coefficients, frames - 1)

    sync = _syncer(device)
    with tempfile.TemporaryDirectory() as tmp:
        measured = interleaved({"bare model.rollout (reference)": rate(sample_steps, bare, sync=sync),
                                "ensure_dataset (regenerate=always)": rate(sample_steps,
                                                                           lambda: ensure_dataset(cfg, model, tmp))},
                               repeats, warmup=2, reference="bare model.rollout (reference)")
    out = {"resolution": resolution, "sims": sims, "frames": frames, "generation_batch": batch, "device": str(device),
           "sample_steps_per_s": measured["cases"], "machine": measured["machine"]}
    out["ratio"] = measured["ratio"]["ensure_dataset (regenerate=always)"]
    out["target_ratio"] = 0.8
    out["meets_target"] = out["ratio"] >= 0.8
    return out


# ---------------------------------------------------------------------------- report
def _table(title: str, unit: str, rows: dict[str, dict[str, float]], reference: float) -> str:
    lines = [f"\n{title}", f"{'case':<40} {'min':>12} {'median':>12} {'max':>12} {'ratio':>7}  ({unit})"]
    for name, r in rows.items():
        lines.append(f"{name:<40} {r['min']:>12.0f} {r['median']:>12.0f} {r['max']:>12.0f} "
                     f"{r['median'] / reference:>7.2f}")
    return "\n".join(lines)


def run(quick: bool = True, device: str = "cpu") -> dict:
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    dev = torch.device(device)
    loader = bench_loader(quick, dev)
    generation = bench_generation(quick, dev)
    env = machine()  # other processes on the machine skew every figure
    result = {"benchmark": "data_pipeline", "quick": quick, "torch": torch.__version__,
              "threads": env["torch_threads"], "cpus": env["cpus"], "load_average_1min": env["load_average"][0],
              "machine": env, "loader": loader, "generation": generation,
              "figures": [
                  figure("loader windows/s vs preloaded tensor", loader["ratio"]["loader, all sims cached"], 0.8),
                  figure("loader with mask + noise vs preloaded tensor",
                         loader["ratio"]["loader, centre mask + noise"], note="information: observation cost"),
                  figure("loader, cache = 1/4 of sims, vs preloaded tensor",
                         loader["ratio"]["loader, cache = 1/4 of sims"], 0.8),
                  figure("streamed external file in place vs preloaded tensor",
                         loader["ratio"]["streamed external file in place"], 0.8),
                  *(figure(f"peak RSS growth streaming ({name}) / budget", m["growth_over_budget"], 1.1,
                           higher_is_better=False,
                           note=f"dataset {m['dataset_over_budget']:.1f}x the budget of "
                                f"{m['budget_bytes'] / 2**20:.1f} MiB ({m['measured_by']})")
                    for name, m in loader["memory"].items()),
                  figure("generation sample-steps/s vs bare rollout", generation["ratio"], 0.8),
              ]}
    ref = loader["windows_per_s"]["preloaded tensor (reference)"]["median"]
    print(_table(f"loader: {loader['sims']} sims x {loader['frames']} frames, {loader['space']}, "
                 f"R={loader['rollout_steps']}, batch {loader['batch_size']}, {dev}", "windows/s",
                 loader["windows_per_s"], ref))
    gen = generation["sample_steps_per_s"]
    print(_table(f"generation: burgers {generation['resolution']}, {generation['sims']} sims x "
                 f"{generation['frames']} frames, batch {generation['generation_batch']}, {dev}", "sample-steps/s",
                 gen, gen["bare model.rollout (reference)"]["median"]))
    print(f"\nmachine load average {result['load_average_1min']:.1f} on {env['cpus']} CPUs")
    for name, m in loader["memory"].items():
        print(f"streaming {name}: dataset {m['dataset_bytes'] / 2**20:.1f} MiB ({m['dataset_over_budget']:.1f}x the "
              f"budget of {m['budget_bytes'] / 2**20:.1f} MiB: cache {m['cache_bytes'] / 2**20:.1f} + 2 batches), peak "
              f"RSS growth {m['growth'] / 2**20:.1f} MiB = {m['growth_over_budget']:.2f}x the budget (target <= 1.1)")
    print(f"loader ratio {loader['ratio']['loader, all sims cached']:.2f}, cache = 1/4 of sims "
          f"{loader['ratio']['loader, cache = 1/4 of sims']:.2f}, external file in place "
          f"{loader['ratio']['streamed external file in place']:.2f} (targets >= 0.8), "
          f"generation ratio {generation['ratio']:.2f} (target >= 0.8)")
    print(f"wrote {write_json('data_pipeline', result)}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    run(quick=args.quick, device=args.device)


if __name__ == "__main__":
    main(sys.argv[1:])
