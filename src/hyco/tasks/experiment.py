"""Builds the pieces of one experiment from its config: PDE model, dataset, windows, network, trainers.

Every task (`train`, `evaluate`, `run`) goes through here, so the physical-only, synthetic-only and HYCO
runs are built the same way and differ only in how they are trained. Run-directory layout:

    <run_dir>/physical/   physical-only: physical.pt, best.pt, metrics.jsonl, tensorboard/, summary.json
    <run_dir>/synthetic/  synthetic-only: best.pt, last.pt, metrics.jsonl, tensorboard/, summary.json
    <run_dir>/hyco/       HYCO: hybrid_last.pt, metrics.jsonl, summary.json, and synthetic/ + physical/ (best.pt:
                          the best cycle by observed validation error)
    <run_dir>/synthetic_matched/  synthetic-only with HYCO's network's samples and steps (`hyco run`)
    <run_dir>/model_floor/        summary.json: the solver fitted to the full, noise-free data (`hyco run`)
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

from hyco.errors import ConfigError
from hyco.tasks.context import RunContext
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

RUN_DIRS = {"physical": "physical", "synthetic": "synthetic", "hybrid": "hyco",
            "synthetic_matched": "synthetic_matched"}
PHYSICAL_CHECKPOINT = "physical.pt"
PHYSICAL_BEST = "best.pt"  # the physical model of the epoch/cycle with the lowest observed validation error
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

    def true_coefficients(self) -> dict[str, torch.Tensor]:
        """The true coefficients of the dataset's data: all of the model's for simulated data; for imported data
        (`data.external`) only those known (the config's, or a file field's as the file stores them), the others
        are unknown (evaluation reports them so)."""
        known = set(self.store.coefficient_names)
        from_file = set((self.store.attrs.get("source") or {}).get("truth_fields", {}))  # a file field's values
        out = {k: v for k, v in self.physics.true_coefficients().items() if k in known and k not in from_file}
        stored = self.store.true_coefficients
        out.update({k: stored[k].to(self.ctx.device, self.ctx.dtype) for k in sorted(from_file & known)})
        return out

    def run_dir(self, mode: str) -> Path:
        return self.ctx.run_dir / RUN_DIRS[mode]

    # ---------------------------------------------------------------- data
    def windows(self, split: str = "train", rollout_steps: int | None = None, from_start: bool = False):
        """Real windows as an observer sees them (mask, noise, hidden states from `observation`); with
        `from_start`, only the window from frame 0 of each simulation."""
        from hyco.data.windows import WindowDataset

        steps = self.cfg.data.rollout_steps if rollout_steps is None else rollout_steps
        return WindowDataset(self.store, split, steps, observation=self.cfg.observation,
                             max_cached_sims=self.cfg.data.max_cached_sims, dtype=self.ctx.dtype,
                             from_start=from_start)

    def train_windows(self):
        """The real training windows (R = `data.rollout_steps`) as an observer sees them."""
        return self.windows("train")

    def trajectory_windows(self, split: str = "train", frames: int | None = None):
        """One window per simulation from frame 0 (known in full, or filled where hidden with
        `observation.initial=observed`): the whole trajectory, or its first `frames` steps."""
        return self.windows(split, self.store.num_frames - 1 if frames is None else frames, from_start=True)

    def physical_windows(self, trainer=None):
        """The real windows of the physical model's data term (`trainer.physical.windows`): trajectories shot
        from frame 0 (nothing to complete, and one fit instead of a fixed-point iteration with the completion)
        or the sliding R-step windows. `auto` takes trajectories when states are hidden, else sliding windows.

        A trajectory is fitted over `trainer.physical.horizon` frames; 0 (default) = the whole trajectory when
        every training simulation's fits the physical memory budget in one objective (`trainer` says how many
        do), else the longest beginning of it that does (at least one frame). Measured on gray_scott_paper
        (10 % of points observed, trajectories 4x the budget): the first frame of all 8 trajectories gave
        D_u, D_v within 6.5e-4, 3.2e-4; the sliding windows with completed inputs that `auto` used to fall back
        to (11 random windows per objective, the budget's share) 0.5 % and 9 %."""
        physical = self.cfg.trainer.physical
        choice = physical.windows
        if choice == "auto":
            choice = "trajectory" if self.train_windows().needs_completion else "sliding"
        if choice == "sliding":
            return self.train_windows()
        frames = self.store.num_frames - 1
        if physical.horizon > frames:
            raise ConfigError("trainer.physical.horizon", f"at most {frames} (the dataset stores {frames + 1} frames "
                              "per simulation), or 0", physical.horizon)
        if physical.horizon:
            return self.trajectory_windows(frames=physical.horizon)
        sims = self.store.num_sims("train")
        horizon = frames
        while trainer is not None and horizon > 1 and trainer.max_windows(horizon) < sims:
            horizon -= 1
        if horizon < frames:
            log.info("trainer.physical.horizon=0: %d whole trajectories of %d frames do not fit "
                     "trainer.physical.memory_budget_gb in one objective; fitting their first %d frame(s)",
                     sims, frames, horizon)
        return self.trajectory_windows(frames=horizon)

    def validation_data(self):
        """What an observer has of the validation split: frame 0 of every simulation and the observed values
        of the later frames (all T-1, or the first K = `data.validation_frames`), a Batch (inputs [N, C, *s],
        targets [N, K, C, *s], the observation's mask). Validation losses,
        `best.pt`, trust weights and the best HYCO cycle are chosen on these, never on the hidden truth.
        Without validation simulations the training split's observations stand in. Read once: every caller
        gets the same tensors (a trainer then knows it has already validated its weights on them)."""
        if "_validation_data" not in self.__dict__:
            split = "val" if self.store.num_sims("val") > 0 else "train"
            if split == "train":
                log.warning("data.num_val = 0: validating on the training split's observations")
            windows = self.trajectory_windows(split, frames=self.cfg.data.validation_frames or None)
            self.__dict__["_validation_data"] = windows.batch(torch.arange(len(windows)))
        return self.__dict__["_validation_data"]

    def completion(self, windows, cache=None):
        """A StateCompletion for `windows` whose later input states are partly hidden, else None."""
        if not windows.needs_completion:
            return None
        from hyco.data.chunks import CacheManager
        from hyco.data.completion import StateCompletion

        data = self.cfg.data
        completion = StateCompletion(windows, data.completion_memory_gb, data.completion_strategy,
                                     cache=cache or CacheManager(self.ctx.cache_dir))
        windows.attach_completion(completion)
        return completion

    def loader(self, dataset, batch_size: int, stream: int = 0):
        """A shuffling loader whose order comes from the configured seed and `stream` (one per trainer)."""
        from hyco.data.loader import make_loader
        from hyco.utils.seed import derive_seed

        return make_loader(dataset, batch_size, shuffle=True, seed=derive_seed(self.cfg.seed, stream),
                           device=self.ctx.device,
                           num_workers=self.cfg.trainer.synthetic.num_workers)

    def initial_states(self, split: str) -> torch.Tensor:
        """Frame 0 of every simulation of `split` [N, C, *space] as an observer has it: noisy, and with
        `observation.initial=observed` known only where observed and filled elsewhere from those values. Every
        rollout the evaluation judges starts here, so no model reads a hidden value of the held-out split."""
        windows = self.windows(split, rollout_steps=1, from_start=True)
        return windows.batch(torch.arange(len(windows))).inputs.to(self.ctx.dtype)

    def trajectories(self, split: str) -> torch.Tensor:
        """The full, clean trajectories of a split: the hidden truth, for the held-out TEST evaluation only."""
        return self.store.trajectories(split).to(self.ctx.dtype)

    # ---------------------------------------------------------------- models
    def surrogate(self):
        """A fresh network, its normalisation statistics taken from the observed training data."""
        from hyco.networks.stats import observed_stats
        from hyco.networks.surrogate import build_network

        stats = observed_stats(self.train_windows())  # one simulation at a time, observed values only
        torch.manual_seed(self.cfg.seed)  # same initial weights for synthetic-only and HYCO
        network = build_network(dict(self.cfg.network), self.physics.num_channels, self.physics.dynamic_channels,
                                self.physics.ndim, stats)
        return network.to(self.ctx.device, self.ctx.dtype)

    def synthetic_trainer(self, run_dir: Path, total_epochs: int, validation: bool = True, per_cycle: bool = False):
        """The network's trainer, validated on `validation_data` (when `validation`); `per_cycle` for HYCO's."""
        from hyco.training.synthetic import SyntheticTrainer

        trainer = SyntheticTrainer(self.cfg.trainer.synthetic, self.surrogate(), self.ctx.device, run_dir,
                                   total_epochs=total_epochs, per_cycle=per_cycle)
        if validation:
            trainer.set_validation(self.validation_data())
        return trainer

    def physical_trainer(self, run_dir: Path | None, validation: bool = True):
        """The solver's trainer, validated on `validation_data` (when `validation`)."""
        from hyco.training.physical import PhysicalTrainer

        truth = {k: v.to(self.ctx.device, self.ctx.dtype) for k, v in self.true_coefficients().items()}
        if any(name not in truth for name in getattr(self.physics, "initial_parameters", dict)()):
            truth = None  # a parametric coefficient's numbers would be compared with an unknown truth
        trainer = PhysicalTrainer(self.cfg.trainer.physical, self.physics, device=self.ctx.device, run_dir=run_dir,
                                  true_coefficients=truth)
        if validation:
            trainer.set_validation(self.validation_data())
        return trainer


def open_experiment(ctx: RunContext) -> Experiment:
    """Build the PDE model and make sure its dataset exists (generated or reused)."""
    from hyco.data.external import physics_config
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    physics = build_physics(physics_config(ctx.cfg), ctx.device, ctx.dtype)  # imported data: the file's domain
    if ctx.cfg.task in ("run", "evaluate"):
        check_uncertainty_method(ctx.cfg, physics)  # before any data is made or model trained
    path = ensure_dataset(ctx.cfg, physics, ctx.data_dir)  # checks the observation against the fields first
    from hyco.data.observation import Observation
    from hyco.data.store import TrajectoryStore

    with TrajectoryStore(path) as store:
        log.info("what the models see: %s", Observation.from_store(ctx.cfg.observation, store).describe())
    return Experiment(ctx=ctx, physics=physics, dataset_path=path)


def check_uncertainty_method(cfg, physics) -> None:
    """Refuse, in one line naming the key, an uncertainty method the learned coefficients are too many for:
    Laplace of more than hyco.training.laplace.LAPLACE_LIMIT numbers (a field of more than 128 x 128 cells)
    would build dense p x p matrices."""
    from hyco.training.laplace import LAPLACE_LIMIT

    if cfg.evaluation.uncertainty != "laplace" or not hasattr(physics, "initial_raw"):
        return
    raw = physics.initial_raw()
    numbers = sum(raw[name].numel() for name in getattr(physics, "learnable_coefficients", raw) if name in raw)
    if numbers > LAPLACE_LIMIT:
        gib = 4 * numbers ** 2 * 8 / 2 ** 30
        raise ConfigError("evaluation.uncertainty", "", message=f"laplace of {numbers} learned numbers needs dense "
                          f"{numbers} x {numbers} matrices (about {gib:.0f} GiB); it is done up to {LAPLACE_LIMIT} "
                          "(a 128 x 128 field): use evaluation.uncertainty=ensemble or off")


def write_summary(run_dir: Path, **values: Any) -> None:
    atomic_write_json(values, Path(run_dir) / SUMMARY)


def read_summary(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.exists() else {}
