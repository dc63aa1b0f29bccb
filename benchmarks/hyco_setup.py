"""A HYCO trainer on 2D Burgers built the way `hyco train mode=hybrid` builds it (real dataset file,
WindowDataset, surrogate with store statistics, both trainers composed by HybridTrainer), sized by the
benchmark. Shared by hybrid_cycle and scaling so both time the same thing.

The viscosity is scaled with the resolution (0.02 at 32 cells, times (32/n)^2) so that the explicit
scheme stays stable with the same dt and substeps: the cost of a frame then grows like the cell count,
which is what a resolution scaling should show.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

PHASES = ("physical_rollouts", "synthetic_training", "synthetic_rollouts", "physical_training", "storage",
          "regeneration")


@dataclass
class HycoSize:
    resolution: int = 32
    sims: int = 4
    frames: int = 10
    rollout_steps: int = 2
    alpha: float = 0.5
    strategy: str = "auto"
    memory_budget_gb: float = 2.0
    network: dict[str, Any] = field(default_factory=lambda: {"name": "unet", "width": 8, "depth": 2})
    batch_size: int = 16
    physical_iterations: int = 3
    physical_batch_windows: int = 0  # 0: as many as fit trainer.physical.memory_budget_gb
    chunk_size: int = 64


def burgers_section(resolution: int) -> dict[str, Any]:
    from hyco.physics import shipped_config

    section = shipped_config("burgers_2d")
    scale = (32.0 / resolution) ** 2
    section["resolution"] = [resolution, resolution]
    section["viscosity"]["truth"]["value"] = 0.02 * scale
    section["viscosity"]["guess"]["value"] = 0.01 * scale
    return section


def build(size: HycoSize, data_dir: Path, cache_dir: Path, device: torch.device | None = None,
          physics=None) -> tuple[Any, Any]:
    """(HybridTrainer, real windows). `physics` may be shared between trainers of the same resolution
    (its jit traces are then reused)."""
    from hyco.config.schema import (
        CouplingConfig,
        DataConfig,
        HybridTrainerConfig,
        HycoConfig,
        PhysicalTrainerConfig,
        SyntheticTrainerConfig,
    )
    from hyco.data.generate import ensure_dataset
    from hyco.data.store import TrajectoryStore
    from hyco.data.windows import WindowDataset
    from hyco.networks.stats import store_stats
    from hyco.networks.surrogate import build_network
    from hyco.physics import build_physics
    from hyco.training.hybrid import HybridTrainer
    from hyco.training.physical import PhysicalTrainer
    from hyco.training.synthetic import SyntheticTrainer

    device = device or torch.device("cpu")
    section = burgers_section(size.resolution)
    physics = physics or build_physics(section, device, torch.float32)
    cfg = HycoConfig(task="train", experiment_name="bench", physics=section, network=dict(size.network),
                     data=DataConfig(num_train=size.sims, num_val=0, num_test=0, num_frames=size.frames,
                                     rollout_steps=size.rollout_steps, generation_batch=min(size.sims, 8)))
    store = TrajectoryStore(ensure_dataset(cfg, physics, data_dir))
    real = WindowDataset(store, "train", size.rollout_steps, max_cached_sims=size.sims)
    torch.manual_seed(0)
    network = build_network(dict(size.network), physics.num_channels, physics.dynamic_channels, physics.ndim,
                            store_stats(store, "train")).to(device)
    synthetic = SyntheticTrainer(SyntheticTrainerConfig(epochs=0, batch_size=size.batch_size, lr=1e-3,
                                                        scheduler="none"), network, device, progress=False,
                                 total_epochs=1_000_000, per_cycle=True)
    physical = PhysicalTrainer(PhysicalTrainerConfig(optimizer="lbfgsb", iterations=size.physical_iterations,
                                                     batch_windows=size.physical_batch_windows),
                               physics, device=device, true_coefficients=physics.true_coefficients())
    # every value is observed here, so by default (ghost points only, trust weights) no partner windows would
    # be made at all: the coupling everywhere with a fixed weight makes each cycle generate, store and train
    # on them, which is the machinery these benchmarks time
    coupling = {"physical": CouplingConfig(interaction_weight=1.0), "synthetic": CouplingConfig(interaction_weight=1.0)}
    config = HybridTrainerConfig(cycles=1_000_000, alpha=size.alpha, synthetic_epochs_per_cycle=1,
                                 physical_epochs_per_cycle=1, strategy=size.strategy,
                                 memory_budget_gb=size.memory_budget_gb, interaction_region="everywhere",
                                 **coupling)
    hybrid = HybridTrainer(config, synthetic, physical, cache_dir=cache_dir, seed=0, batch_size=size.batch_size,
                           device=device, chunk_size=size.chunk_size)
    return hybrid, real


def one_cycle(hybrid, real) -> dict[str, Any]:
    """Run one more HYCO cycle; its metrics plus the wall time of the whole call."""
    start = time.perf_counter()
    metrics = hybrid.train(real, hybrid.cycle + 1)
    metrics["seconds_cycle"] = time.perf_counter() - start
    return metrics


def phase_summary(cycles: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """min / median / max of every phase and of the whole cycle over the measured cycles."""
    out = {}
    for c in cycles:  # what the phases do not cover: the trainer's bookkeeping, per cycle
        c["seconds_other"] = c["seconds_cycle"] - sum(c.get(f"seconds_{p}", 0.0) for p in PHASES)
    for phase in (*PHASES, "other", "cycle"):
        values = [c.get(f"seconds_{phase}", 0.0) for c in cycles]
        out[phase] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return out
