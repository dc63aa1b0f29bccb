"""The physical objective of one small case, computed by this process as one rank of `world` (gloo, a file
rendezvous) or alone: tests/training/test_rank_invariance.py compares 1, 2 and 3 ranks.

The case has an uneven number of windows (7 windows of a 1D Burgers solver, global batches of 4): with 2 ranks
the last batch of 3 is split 2 + 1, with 3 ranks the first batch 2 + 1 + 1. Its windows are noisy and half
observed (a box mask), so the loss, its gradient and its noise floor all depend on every window."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from hyco.config.schema import PhysicalTrainerConfig
from hyco.data.batch import Batch
from hyco.data.loader import make_loader
from hyco.physics import build_physics, shipped_config
from hyco.training.physical import PhysicalTrainer
from hyco.utils.distributed import all_reduce_grads

WINDOWS, GLOBAL_BATCH, STEPS = 7, 4, 2


class NoisyWindows:
    """Windows of the true solver with noise, observed on the left half of the grid (the loader's interface)."""

    def __init__(self, model, count: int = WINDOWS):
        generator = torch.Generator().manual_seed(0)
        self.inputs = model.initial_state(count, seed=0)
        with torch.no_grad():
            frames = model.rollout(self.inputs, model.true_coefficients(), STEPS)
        noise = torch.randn(frames.shape, generator=generator, dtype=torch.float64).to(frames.dtype)
        self.targets = frames + 0.01 * frames.std() * noise
        self.mask = torch.zeros(count, STEPS, 1, *frames.shape[3:], dtype=frames.dtype)
        self.mask[..., : frames.shape[-1] // 2] = 1

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, indices: torch.Tensor) -> Batch:
        return Batch(self.inputs[indices], self.targets[indices], self.mask[indices])


def figures(world: int, dtype: torch.dtype, batch_windows: int = 0, epochs: int = 2) -> dict:
    """The loss, gradient and noise floor at the starting coefficients, then the history and final coefficients
    of `epochs` epochs of L-BFGS-B (the same on every rank)."""
    model = build_physics({**shipped_config("burgers_1d"), "resolution": [32]}, "cpu", dtype)
    windows = NoisyWindows(model)
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=20, batch_windows=batch_windows), model,
                              true_coefficients=model.true_coefficients())
    loader = make_loader(windows, GLOBAL_BATCH, shuffle=True, seed=3)
    objective = trainer.objective(trainer.gather(loader))
    point = {k: v.detach().clone().requires_grad_(v.requires_grad) for k, v in trainer.raw.items()}
    loss = objective(point)
    learned = [point[n] for n in trainer.learnable]
    gradient = all_reduce_grads(list(torch.autograd.grad(loss, learned)))
    loader.epoch = 0
    metrics = trainer.train(loader, epochs)
    return {"world": world, "loss": float(loss.detach()), "gradient": torch.cat([g.reshape(-1) for g in gradient]),
            "noise_floor": objective.noise_floor(), "round_off": objective.round_off(),
            "windows": [h["windows"] for h in metrics["history"]], "losses": [h["loss"] for h in metrics["history"]],
            "coefficients": {k: v.double() for k, v in trainer.coefficients().items()}}


def rank_main(rank: int, world: int, directory: str, dtype: torch.dtype, batch_windows: int) -> None:
    """One rank of `world` (torch.multiprocessing.spawn's entry point): rank 0 saves its figures."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{directory}/rendezvous-{world}", rank=rank,
                            world_size=world)
    try:
        out = figures(world, dtype, batch_windows)
        out["rank"] = rank
        torch.save(out, Path(directory) / f"world{world}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def synthetic_rank_main(rank: int, world: int, directory: str) -> None:
    """One rank of `world` training tests/training/ddp_worker.py's network (10 windows, global batch 4)."""
    from . import ddp_worker

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{directory}/rendezvous-synthetic-{world}", rank=rank,
                            world_size=world)
    try:
        out = ddp_worker.train(Path(directory) / f"synthetic-{world}")
        torch.save(out, Path(directory) / f"synthetic-world{world}-rank{rank}.pt")
    finally:
        dist.destroy_process_group()
