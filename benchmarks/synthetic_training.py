"""Synthetic-training throughput: SyntheticTrainer against a bare torch loop (target >= 0.8x).

Both train the same UNet (same initial weights, batch size, rollout length, optimizer) on the same
pre-loaded windows, epochs alternating in one process so that machine load affects both alike.
The ratio measures what the trainer adds: batch unpacking, masked rollout loss, metric bookkeeping,
progress bars, scheduler, per-epoch checkpoint of `last.pt` (written to a temporary directory).

    PYTHONPATH=src python -m benchmarks.synthetic_training [--quick]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from hyco.config.schema import SyntheticTrainerConfig
from hyco.networks import build_network, compute_stats
from hyco.training.synthetic import SyntheticTrainer
from hyco.utils.device import resolve_device
from hyco.utils.io import atomic_write_json

RESULTS = Path(__file__).parent / "results" / "synthetic_training.json"


class ShuffledBatches:
    """Pre-loaded windows served in a new random order each epoch (what a real loader does)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int, seed: int = 0):
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return -(-self.inputs.shape[0] // self.batch_size)

    def __iter__(self):
        order = torch.randperm(self.inputs.shape[0], generator=self.generator).to(self.inputs.device)
        for idx in order.split(self.batch_size):
            yield self.inputs[idx], self.targets[idx]


def _windows(num: int, steps: int, grid: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(num, 2, grid, grid, generator=g)
    frames = torch.stack([torch.roll(x0, t, dims=-1) for t in range(steps + 1)], dim=1)
    return frames[:, 0].contiguous().to(device), frames[:, 1:].contiguous().to(device)


def _bare_epoch(model, optimizer, batches: ShuffledBatches, steps: int) -> None:
    for inputs, targets in batches:
        state, loss = inputs, 0.0
        for r in range(steps):
            state = model(state)
            loss = loss + ((state - targets[:, r]) ** 2).mean()
        loss = loss / steps
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(quick: bool = False, device: str = "auto") -> dict:
    dev = resolve_device(device)
    num, grid, steps, batch_size = (64, 32, 2, 16) if quick else (256, 32, 2, 16)
    repeats = 3 if quick else 7
    inputs, targets = _windows(num, steps, grid, dev)
    stats = compute_stats(torch.cat([inputs[:, None], targets], 1).cpu(), [0, 1])
    torch.manual_seed(0)
    section = {"name": "unet", "width": 16, "depth": 2}
    model_trainer = build_network(section, 2, [0, 1], 2, stats).to(dev)
    model_bare = copy.deepcopy(model_trainer)
    config = SyntheticTrainerConfig(epochs=repeats + 1, batch_size=batch_size, lr=1e-3, scheduler="none",
                                    grad_clip=0.0)
    timings: dict[str, list[float]] = {"bare": [], "trainer": []}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = SyntheticTrainer(config, model_trainer, dev, run_dir=tmp, progress=True)
        optimizer = torch.optim.Adam(model_bare.parameters(), lr=1e-3)
        data_trainer = ShuffledBatches(inputs, targets, batch_size, seed=1)
        data_bare = ShuffledBatches(inputs, targets, batch_size, seed=1)
        for repeat in range(repeats + 1):  # the first round is warm-up
            for name in ("bare", "trainer"):
                _sync(dev)
                start = time.perf_counter()
                if name == "bare":
                    _bare_epoch(model_bare, optimizer, data_bare, steps)
                else:
                    trainer.train(data_trainer, 1)
                _sync(dev)
                if repeat > 0:
                    timings[name].append(num / (time.perf_counter() - start))
        trainer.close()
    summary = {name: {"min": min(v), "median": statistics.median(v), "max": max(v)} for name, v in timings.items()}
    ratio = summary["trainer"]["median"] / summary["bare"]["median"]
    result = {
        "benchmark": "synthetic_training", "quick": quick, "device": str(dev), "threads": torch.get_num_threads(),
        "network": section, "grid": [grid, grid], "windows": num, "batch_size": batch_size, "rollout_steps": steps,
        "repeats": repeats, "samples_per_s": summary, "ratio_median": ratio, "target": 0.8, "passed": ratio >= 0.8,
    }
    print(f"{'loop':<10}{'min':>12}{'median':>12}{'max':>12}   samples/s ({dev}, {num} windows {grid}x{grid}, "
          f"batch {batch_size}, R={steps})")
    for name, s in summary.items():
        print(f"{name:<10}{s['min']:>12.1f}{s['median']:>12.1f}{s['max']:>12.1f}")
    print(f"trainer / bare (median): {ratio:.3f}  (target >= 0.8: {'PASS' if ratio >= 0.8 else 'FAIL'})")
    atomic_write_json(result, RESULTS)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    print(json.dumps(run(args.quick, args.device)["samples_per_s"]))


if __name__ == "__main__":
    main()
