"""Builds the pieces of one experiment from its config: PDE model, dataset, windows, network, trainers.

Every task (`train`, `evaluate`, `run`) goes through here, so the physical-only, synthetic-only and HYCO
runs are built the same way and differ only in how they are trained. Run-directory layout:

    <run_dir>/physical/   physical-only: physical.pt, metrics.jsonl, tensorboard/, summary.json
    <run_dir>/synthetic/  synthetic-only: best.pt, last.pt, metrics.jsonl, tensorboard/, summary.json
    <run_dir>/hyco/       HYCO: hybrid_last.pt, metrics.jsonl, summary.json, and synthetic/ + physical/
    <run_dir>/metrics.json, evaluation/, figures/, report.html, report.md
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hyco.context import RunContext
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

RUN_DIRS = {"physical": "physical", "synthetic": "synthetic", "hybrid": "hyco"}
PHYSICAL_CHECKPOINT = "physical.pt"
SUMMARY = "summary.json"


@dataclass
class Experiment:
    ctx: RunContext
    physics: Any  # PhysicalModel
    dataset_path: Path

    @property
    def cfg(self):
        return self.ctx.cfg

    @functools.cached_property
    def store(self):
        from hyco.data.store import TrajectoryStore

        return TrajectoryStore(self.dataset_path)

    def run_dir(self, mode: str) -> Path:
        return self.ctx.run_dir / RUN_DIRS[mode]

    # ---------------------------------------------------------------- data
    def train_windows(self):
        """Real training windows as an observer sees them (mask + noise from `observation`)."""
        from hyco.data.windows import WindowDataset

        return WindowDataset(self.store, "train", self.cfg.data.rollout_steps, observation=self.cfg.observation,
                             max_cached_sims=self.cfg.data.max_cached_sims, dtype=self.ctx.dtype)

    def loader(self, dataset, batch_size: int, seed_offset: int = 0):
        from hyco.data.loader import make_loader

        return make_loader(dataset, batch_size, shuffle=True, seed=self.cfg.seed + seed_offset, device=self.ctx.device,
                           num_workers=self.cfg.trainer.synthetic.num_workers)

    def trajectories(self, split: str) -> torch.Tensor:
        return self.store.trajectories(split).to(self.ctx.dtype)

    # ---------------------------------------------------------------- models
    def surrogate(self):
        """A fresh network, its normalisation statistics taken from the training split."""
        from hyco.networks.stats import store_stats
        from hyco.networks.surrogate import build_network

        stats = store_stats(self.store, "train")  # one simulation at a time: memory does not grow with the data
        torch.manual_seed(self.cfg.seed)  # same initial weights for synthetic-only and HYCO
        network = build_network(dict(self.cfg.network), self.physics.num_channels, self.physics.dynamic_channels,
                                self.physics.ndim, stats)
        return network.to(self.ctx.device, self.ctx.dtype)

    def synthetic_trainer(self, run_dir: Path, total_epochs: int, validation: bool = True):
        from hyco.training.synthetic import SyntheticTrainer

        trainer = SyntheticTrainer(self.cfg.trainer.synthetic, self.surrogate(), self.ctx.device, run_dir,
                                   total_epochs=total_epochs)
        if validation and self.store.num_sims("val") > 0:
            trainer.set_validation(self.trajectories("val"))
        return trainer

    def physical_trainer(self, run_dir: Path | None):
        from hyco.training.physical import PhysicalTrainer

        truth = {k: v.to(self.ctx.device, self.ctx.dtype) for k, v in self.physics.true_coefficients().items()}
        return PhysicalTrainer(self.cfg.trainer.physical, self.physics, device=self.ctx.device, run_dir=run_dir,
                               true_coefficients=truth)


def open_experiment(ctx: RunContext) -> Experiment:
    """Build the PDE model and make sure its dataset exists (generated or reused)."""
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    physics = build_physics(dict(ctx.cfg.physics), ctx.device, ctx.dtype)
    path = ensure_dataset(ctx.cfg, physics, ctx.data_dir)
    return Experiment(ctx=ctx, physics=physics, dataset_path=path)


def write_summary(run_dir: Path, **values: Any) -> None:
    atomic_write_json(values, Path(run_dir) / SUMMARY)


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else {}
