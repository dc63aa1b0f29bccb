"""The physical objective and one HYCO cycle on the toy diffusion, in whatever process group this process is in:
run by `torch.multiprocessing.spawn` with 2 gloo ranks, or called directly as 1 process
(tests/training/test_ranks.py compares the two). float64 throughout, so the ranks' only difference is the
order in which sums are added."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist

from hyco.data.loader import make_loader
from tests.builders import (
    RealWindows,
    hybrid_trainer,
    physical_trainer,
    sliding_windows,
    synthetic_trainer,
    tiny_network,
    train_physical,
    trajectories,
    validation_data,
)
from tests.training.toy_models import ToyDiffusion1D


def observed_windows(model, sims: int, frames: int = 6) -> RealWindows:
    """Every 2-step window of `sims` trajectories (frames - 2 per simulation), observed on cells 3..12 (noisy,
    seeded)."""
    traj = trajectories(model, sims=sims, frames=frames)
    traj = traj + 0.01 * torch.randn(traj.shape, generator=torch.Generator().manual_seed(1), dtype=traj.dtype)
    inputs, targets = sliding_windows(traj, 2)
    mask = torch.zeros(len(inputs), 2, 1, model.n, dtype=traj.dtype)
    mask[..., 3:13] = 1.0
    return RealWindows(inputs, targets, mask)


def physical_objective(windows: int) -> dict:
    """One L-BFGS-B epoch on this rank's shard of `windows` windows (the loader deals them out)."""
    model = ToyDiffusion1D()
    trainer = physical_trainer(model, iterations=5, early_stop=False)
    sims, frames = {8: (2, 6), 9: (3, 5)}[windows]
    loader = make_loader(observed_windows(model, sims, frames), 4, shuffle=True, seed=3)
    metrics = train_physical(trainer, list(loader), 1, (1.0, 0.0))
    return {"loss": metrics["loss"], "noise_floor": metrics["noise_floor"], "windows": metrics["windows"],
            "kappa": float(trainer.coefficients()["kappa"])}


def hyco_cycle(tmp: str) -> dict:
    """One HYCO cycle (solver first, then the network on real + the solver's windows, then the solver again on
    real + the network's), trust weights heard from the first phase on."""
    model = ToyDiffusion1D()
    real = observed_windows(model, sims=2)  # 8 windows: an even share for 2 ranks
    val = trajectories(model, sims=2, frames=6, seed=5)
    mask = torch.zeros(1, 5, 1, model.n, dtype=val.dtype)
    mask[..., 3:13] = 1.0
    solver = physical_trainer(model, iterations=5, early_stop=False)
    network = synthetic_trainer(tiny_network(dtype=torch.float64), epochs=2, batch_size=4, lr=1e-3)
    hybrid = hybrid_trainer(network, solver, Path(tmp), validation=validation_data(val[:, 0], val[:, 1:], mask),
                            cycles=1, alpha=0.5, synthetic_epochs_per_cycle=2, physical_epochs_per_cycle=1,
                            hear_untrained=True)
    metrics = hybrid.train(real)
    return {"kappa": float(solver.coefficients()["kappa"]), "physical_loss": metrics["physical_loss"],
            "synthetic_loss": metrics["synthetic_loss"], "physical_val_loss": metrics["physical_val_loss"],
            "synthetic_val_loss": metrics["synthetic_val_loss"],
            "weights": {k: v.clone() for k, v in network.model.state_dict().items()}}


def spawned(rank: int, world_size: int, tmp: str, windows: int) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world_size)
    try:
        torch.set_num_threads(1)
        result = {"objective": physical_objective(windows)}
        if windows % 2 == 0:
            result["cycle"] = hyco_cycle(f"{tmp}/rank{rank}")
        torch.save(result, f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()
