"""Scaling out: samples/s of synthetic training and windows/s of the physical objective, 1 process against
2 `torchrun` ranks (gloo on CPU, NCCL on CUDA), with the same global batch.

Each configuration runs in its own processes (`--worker`); rank 0 times the epochs after a warm-up one
(compilation, first-touch allocation) between barriers. Figures are plain measurements: the speed-up of 2
ranks over 1 and the parallel efficiency (speed-up / 2). On a shared 2-core machine expect well below 1:
the two ranks and every other process compete for the same cores, each rank's batch is half as large
(worse vectorisation) and the all-reduces add latency.

    PYTHONPATH=src python -m benchmarks.distributed [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import figure, machine, write_json


class MemoryWindows:
    """Windows held in memory with the loader's dataset interface (`batch(indices)`)."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor):
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, indices: torch.Tensor):
        return self.inputs[indices], self.targets[indices]


def _timed(fn, repeats: int) -> float:
    from hyco.utils.distributed import barrier

    barrier()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    barrier()
    return time.perf_counter() - start


def synthetic(quick: bool, device: torch.device) -> dict:
    from hyco.config.schema import SyntheticTrainerConfig
    from hyco.data.loader import make_loader
    from hyco.networks import build_network
    from hyco.training.synthetic import SyntheticTrainer

    windows, grid, batch, epochs = (64, 32, 16, 2) if quick else (256, 64, 32, 3)
    generator = torch.Generator().manual_seed(0)
    data = MemoryWindows(torch.randn(windows, 2, grid, grid, generator=generator),
                         torch.randn(windows, 2, 2, grid, grid, generator=generator))
    torch.manual_seed(0)
    model = build_network({"name": "unet", "width": 8, "depth": 2}, 2, [0, 1], 2)
    trainer = SyntheticTrainer(SyntheticTrainerConfig(epochs=epochs + 1, batch_size=batch), model, device,
                               progress=False)
    loader = make_loader(data, batch, seed=0, device=device)
    trainer.train(loader, 1)  # warm-up
    seconds = _timed(lambda: trainer.train(loader, 1), epochs)
    return {"windows": windows, "grid": grid, "global_batch": batch, "epochs": epochs, "seconds": seconds,
            "samples_per_s": windows * epochs / seconds}


def physical(quick: bool, device: torch.device) -> dict:
    from hyco.config.schema import PhysicalTrainerConfig
    from hyco.data.loader import make_loader
    from hyco.physics import build_physics, shipped_config
    from hyco.training.physical import PhysicalTrainer

    sims, frames, rollout, iterations = (4, 6, 2, 3) if quick else (8, 10, 3, 5)
    config = shipped_config("burgers_2d")
    model = build_physics(config, device)
    state = model.initial_state(sims, seed=0)
    with torch.no_grad():
        trajectories = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), frames - 1)], 1)
    inputs = torch.cat([trajectories[:, t] for t in range(frames - rollout)]).cpu()
    targets = torch.cat([trajectories[:, t + 1:t + 1 + rollout] for t in range(frames - rollout)]).cpu()
    data = MemoryWindows(inputs, targets)
    loader = make_loader(data, len(data), seed=0, device=device)  # the whole objective per epoch
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=iterations, early_stop=False), model, device=device)
    trainer.train(loader, 1)  # warm-up: traces the rollout of this rank's batch shape
    evaluations = []
    seconds = _timed(lambda: evaluations.append(trainer.train(loader, 1)["evaluations"]), 1)
    return {"windows": len(data), "rollout_steps": rollout, "resolution": list(model.spatial_shape),
            "evaluations": evaluations[0], "seconds": seconds,
            "windows_per_s": len(data) * evaluations[0] / seconds}


def worker(out: Path, quick: bool, device_name: str) -> None:
    from hyco.utils.device import resolve_device
    from hyco.utils.distributed import process_group

    device = resolve_device(device_name)
    with process_group("auto", device) as ranks:
        result = {"ranks": ranks.world_size, "synthetic": synthetic(quick, device),
                  "physical": physical(quick, device)}
        if ranks.is_main:
            out.write_text(json.dumps(result))


def _launch(ranks: int, out: Path, quick: bool, device: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--worker", str(out), "--device", device, *(["--quick"] if quick else [])]
    if ranks == 1:
        command = [sys.executable, "-m", "benchmarks.distributed", *args]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   "-m", "benchmarks.distributed", *args]
    subprocess.run(command, check=True, env=env, cwd=Path(__file__).resolve().parents[1])
    return json.loads(out.read_text())


def run(quick: bool = True, device: str = "cpu") -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        one = _launch(1, Path(tmp) / "one.json", quick, device)
        two = _launch(2, Path(tmp) / "two.json", quick, device)
    speedup = {"synthetic": two["synthetic"]["samples_per_s"] / one["synthetic"]["samples_per_s"],
               "physical": two["physical"]["windows_per_s"] / one["physical"]["windows_per_s"]}
    return {"device": device, "quick": quick, "one_process": one, "two_ranks": two, "speedup": speedup,
            "efficiency": {k: v / 2 for k, v in speedup.items()}, "machine": machine(),
            "figures": [figure(f"{k} 2 ranks / 1 process (speed-up; ideal 2)", v) for k, v in speedup.items()]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(args.worker, args.quick, args.device)
        return
    result = run(args.quick, args.device)
    for kind, unit in (("synthetic", "samples_per_s"), ("physical", "windows_per_s")):
        print(f"{kind:9s} {unit}: 1 process {result['one_process'][kind][unit]:9.1f}   2 ranks "
              f"{result['two_ranks'][kind][unit]:9.1f}   speed-up {result['speedup'][kind]:.2f}   "
              f"efficiency {result['efficiency'][kind]:.2f}")
    print(f"load average {result['machine']['load_average']}, {result['machine']['cpus']} CPUs")
    print(write_json("distributed", result))


if __name__ == "__main__":
    main()
