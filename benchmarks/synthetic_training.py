"""Synthetic-training throughput: SyntheticTrainer against a bare torch loop (target >= 0.9x, issue 16).

Three loops train copies of the same UNet (same initial weights, batch size, rollout length, Adam) on
the same windows of one HDF5 dataset, with the same centre observation mask, epochs alternating in one
process so that machine load affects all alike:
- `bare`: a hand-written loop over pre-loaded tensors (the reference);
- `trainer`: SyntheticTrainer over the same pre-loaded tensors (what the trainer adds: batch checks,
  masked rollout loss, metrics, progress bars, scheduler, a `last.pt` checkpoint every epoch);
- `trainer+loader`: SyntheticTrainer fed by WindowDataset + make_loader reading the HDF5 file (what
  `hyco train mode=synthetic` runs: the data pipeline must not be the bottleneck).

    PYTHONPATH=src python -m benchmarks.synthetic_training [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import figure, interleaved, rate, write_json
from hyco.config.schema import ObservationConfig, SyntheticTrainerConfig
from hyco.data.loader import make_loader
from hyco.data.store import TrajectoryStore, create_store
from hyco.data.windows import WindowDataset
from hyco.networks import build_network, compute_stats
from hyco.training.synthetic import SyntheticTrainer
from hyco.utils.device import resolve_device

TARGET = 0.9


class ShuffledBatches:
    """Pre-loaded windows served in a new random order each epoch (what a real loader does)."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, seed: int = 0):
        self.tensors, self.batch_size = tensors, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.tensors[0].shape[0] // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.tensors[0].shape[0], generator=self.generator).to(self.tensors[0].device)
        for idx in order.split(self.batch_size):
            yield tuple(t[idx] for t in self.tensors)


def _write_dataset(path: Path, sims: int, frames: int, grid: int) -> torch.Tensor:
    """Smooth random fields drifting one cell per frame, 2 channels (a Burgers-like velocity)."""
    g = torch.Generator().manual_seed(0)
    x0 = torch.nn.functional.avg_pool2d(torch.randn(sims, 2, grid, grid, generator=g), 5, 1, 2)
    traj = torch.stack([torch.roll(x0, t, dims=-1) for t in range(frames)], dim=1)
    attrs = {"config_hash": "benchmark",
             "field_specs": [{"name": "u", "channels": 2, "grid": "centered", "dynamic": True}],
             "dynamic_channels": [0, 1], "bounds": [1.0, 1.0], "dt": 0.1}
    with create_store(path, split_sizes={"train": sims}, num_frames=frames, num_channels=2,
                      spatial_shape=(grid, grid), attrs=attrs, coefficients={}) as writer:
        writer.write(0, traj.numpy(), np.arange(sims))
    return traj


def _bare_epoch(model, optimizer, batches: ShuffledBatches, steps: int) -> None:
    for inputs, targets, masks in batches:
        state, loss = inputs, 0.0
        for r in range(steps):
            state = model(state)
            weights = masks[:, r].expand_as(state)
            loss = loss + ((state - targets[:, r]) ** 2 * weights).sum() / weights.sum()
        loss = loss / steps
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def run(quick: bool = False, device: str = "auto") -> dict:
    dev = resolve_device(device)
    sims, frames, grid, steps, batch_size = (8, 10, 32, 2, 16) if quick else (32, 10, 32, 2, 16)
    repeats = 3 if quick else 7
    section = {"name": "unet", "width": 16, "depth": 2}
    loops = ("bare", "trainer", "trainer+loader")
    with tempfile.TemporaryDirectory() as tmp:
        traj = _write_dataset(Path(tmp) / "bench.h5", sims, frames, grid)
        dataset = WindowDataset(TrajectoryStore(Path(tmp) / "bench.h5"), "train", steps,
                                observation=ObservationConfig(spatial="centre", states="full"))
        num = len(dataset)
        preloaded = dataset.batch(torch.arange(num)).to(dev).tensors()
        torch.manual_seed(0)
        base = build_network(section, 2, [0, 1], 2, compute_stats(traj, [0, 1])).to(dev)
        models = {name: copy.deepcopy(base) for name in loops}
        config = SyntheticTrainerConfig(epochs=repeats + 1, batch_size=batch_size, lr=1e-3, scheduler="none",
                                        grad_clip=0.0)
        optimizer = torch.optim.Adam(models["bare"].parameters(), lr=1e-3)
        trainers = {name: SyntheticTrainer(config, models[name], dev, run_dir=Path(tmp) / name)
                    for name in ("trainer", "trainer+loader")}
        sources = {"bare": ShuffledBatches(preloaded, batch_size, seed=1),
                   "trainer": ShuffledBatches(preloaded, batch_size, seed=1),
                   "trainer+loader": make_loader(dataset, batch_size, shuffle=True, seed=1, device=dev)}
        sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else None
        cases = {"bare": rate(num, lambda: _bare_epoch(models["bare"], optimizer, sources["bare"], steps), sync=sync)}
        for name, trainer in trainers.items():
            cases[name] = rate(num, lambda trainer=trainer, name=name: trainer.train(sources[name], 1), sync=sync)
        measured = interleaved(cases, repeats, warmup=1, reference="bare")  # one epoch of each per round
        for trainer in trainers.values():
            trainer.close()
    summary = measured["cases"]
    ratios = {name: measured["ratio"][name] for name in ("trainer", "trainer+loader")}
    result = {
        "benchmark": "synthetic_training", "quick": quick, "device": str(dev), "threads": torch.get_num_threads(),
        "network": section, "grid": [grid, grid], "windows": num, "batch_size": batch_size, "rollout_steps": steps,
        "repeats": repeats, "samples_per_s": summary, "ratio_median": ratios, "target": TARGET,
        "passed": all(r >= TARGET for r in ratios.values()), "machine": measured["machine"],
        "figures": [figure("synthetic training samples/s vs bare torch loop", ratios["trainer"], TARGET),
                    figure("synthetic training + HDF5 loader vs bare torch loop", ratios["trainer+loader"], TARGET)],
    }
    print(f"samples/s on {dev} ({torch.get_num_threads()} threads): {num} windows {grid}x{grid}, batch {batch_size}, "
          f"R={steps}, UNet width 16 depth 2, median of {repeats} epochs after warm-up")
    print(f"{'loop':<16}{'min':>10}{'median':>10}{'max':>10}{'vs bare':>10}")
    for name, s in summary.items():
        ratio = s["median"] / summary["bare"]["median"]
        print(f"{name:<16}{s['min']:>10.1f}{s['median']:>10.1f}{s['max']:>10.1f}{ratio:>10.3f}")
    print(f"target >= {TARGET}x: {'PASS' if result['passed'] else 'FAIL'}")
    print(f"wrote {write_json('synthetic_training', result)}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    run(args.quick, args.device)


if __name__ == "__main__":
    main()
