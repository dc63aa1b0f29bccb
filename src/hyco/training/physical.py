"""Coefficient inference: one batched objective over many windows, minimised with L-BFGS-B or Adam.

The coefficients are shared by every sample, so each epoch builds ONE loss over a mini-batch of windows
(a single batched, jit-compiled rollout) instead of solving per sample. The optimiser works on the
model's unconstrained raw parameters (`model.encode`/`decode`), so every step stays physical. How the
objective is minimised is hyco.training.optimisers; when an epoch finds nothing more the data can resolve
is hyco.training.convergence.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyco.config.models.physics import BUFFERS_PER_SUBSTEP
from hyco.config.schema import PhysicalTrainerConfig
from hyco.data.batch import NUM_TERMS, Batch
from hyco.errors import DataError
from hyco.physics.accuracy import coefficient_errors, parameter_error
from hyco.training.best import BestKeeper
from hyco.training.convergence import EarlyStop, Moments, fingerprint, noise_floor
from hyco.training.loss import LossWeights, batch_sums, term_sums, weighted_loss
from hyco.training.optimisers import EpochResult, make_minimiser
from hyco.training.protocol import DEFAULT_WEIGHTS, Trainer
from hyco.training.run_log import RunLog
from hyco.training.validation import observed_validation
from hyco.utils.distributed import (
    all_reduce_sum,
    grad_share,
    process_info,
    rank_share,
    same_on_all_ranks,
    sum_over_ranks,
)
from hyco.utils.io import finite_or_none

log = logging.getLogger(__name__)

# Autograd keeps every intermediate state of the rollout: budget this many state-sized buffers per
# solver substep and window when sizing the batch from `memory_budget_gb`. Measured peak RSS of one
# forward + backward (32x32, float32, CPU, batches of 128-512 windows): Burgers 21-24 buffers, heat 15.
# A model whose step keeps much more (smoke: advection + pressure solve, measured 81-122) declares its
# own `memory_buffers_per_substep`.
_BUFFERS_PER_STEP = BUFFERS_PER_SUBSTEP  # 28: the measured 24 plus a margin for the trace of a new batch size
# A loss below (this many machine epsilons x the targets' RMS)^2 is round-off: the data are fitted as well
# as the dtype allows (see hyco.training.optimisers.LbfgsB).
_ROUND_OFF_EPS = 4


class PhysicalTrainer(Trainer):
    """`PhysicalTrainer(config, model, learnable_params)`, then `train(source, epochs, weights)` as often as
    needed (hyco.training.protocol); it keeps its coefficients, optimiser state and counters between calls and
    knows nothing about where the batches come from (real or generated)."""

    last_checkpoint = "physical.pt"
    best_checkpoint = "best.pt"

    def __init__(self, config: PhysicalTrainerConfig, model, learnable_params: list[str] | None = None,
                 device: torch.device | None = None, run_dir: str | Path | None = None,
                 true_coefficients: dict[str, torch.Tensor] | None = None):
        self.config = config
        self.model = model
        self.device = device or torch.device("cpu")
        self.dtype = getattr(model, "dtype", torch.float32)
        names = [spec.name for spec in model.coefficient_specs]
        learned = list(getattr(model, "learnable_coefficients", names))  # the config's `physics.<name>.learn`
        self.learnable = list(learnable_params) if learnable_params is not None else learned
        unknown = sorted(set(self.learnable) - set(names))
        if unknown:
            raise ValueError(f"learnable_params: unknown coefficient(s) {unknown}; the model has {names}")
        known = sorted(set(self.learnable) - set(learned))
        if known:
            raise ValueError(f"learnable_params: {known} known to the model (physics.<name>.learn: false)")
        if hasattr(model, "initial_raw"):  # PhysicalModel: parametric coefficients start from their guessed numbers
            raw = {k: v.to(self.device, self.dtype) for k, v in model.initial_raw().items()}
        else:
            raw = model.encode({k: v.to(self.device, self.dtype) for k, v in model.initial_guess().items()})
        self.raw = {name: value.detach().clone().requires_grad_(name in self.learnable) for name, value in raw.items()}
        self.true_coefficients = true_coefficients
        self.dynamic = torch.as_tensor(model.dynamic_channels, device=self.device)
        self.epoch = 0
        self.rejected_steps = 0
        self.history: list[dict[str, Any]] = []
        self.early_stop = EarlyStop(config.early_stop and bool(self.learnable))
        self.minimiser = make_minimiser(config, [self.raw[n] for n in self.learnable])
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.run_log = RunLog(run_dir, "physical")
        # the epoch with the lowest observed validation error, kept in best.pt by `keep_best` (physical-only runs)
        self.best = BestKeeper(self.run_dir / self.best_checkpoint if self.run_dir is not None else None)
        self.val_losses: list[float | None] = []  # per `keep_best` call: the observed validation error

    @property
    def converged(self) -> bool:
        """The last epoch ended at the noise floor (trainer.physical.early_stop)."""
        return self.early_stop.converged

    def spatial_ndim(self) -> int:
        return len(self.model.spatial_shape)

    # ---------------------------------------------------------------- coefficients
    def coefficients(self) -> dict[str, torch.Tensor]:
        """Current physical coefficient values (detached)."""
        with torch.no_grad():
            return {k: v.detach().clone() for k, v in self.model.decode(self.raw).items()}

    def _window_step_bytes(self) -> int:
        """Autograd memory of one window and one stored frame of its rollout (see `_BUFFERS_PER_STEP`)."""
        values = self.model.num_channels * int(np.prod(self.model.spatial_shape))
        substeps = max(1, getattr(self.model, "substeps", 1)) * getattr(self.model, "rate_evaluations", 1)
        itemsize = torch.finfo(self.dtype).bits // 8
        buffers = getattr(self.model, "memory_buffers_per_substep", _BUFFERS_PER_STEP)
        return values * itemsize * buffers * substeps

    def max_windows(self, rollout_steps: int = 4) -> int:
        """Windows of `rollout_steps` frames per objective: `batch_windows`, or as many as fit
        `memory_budget_gb`."""
        if self.config.batch_windows > 0:
            return self.config.batch_windows
        return max(1, int(self.config.memory_budget_gb * 2**30 // (self._window_step_bytes() * rollout_steps)))

    # ---------------------------------------------------------------- objective
    def objective(self, groups: list[Batch], weights: LossWeights = DEFAULT_WEIGHTS) -> PhysicalObjective:
        """The objective of an epoch over `groups` of windows (on the trainer's device and dtype)."""
        return PhysicalObjective(self, groups, weights)

    def _smoothness(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean squared finite-difference gradient of every field coefficient (periodic differences)."""
        total = torch.zeros((), device=self.device, dtype=self.dtype)
        decoded = self.model.decode(raw)
        for spec in self.model.coefficient_specs:
            if spec.kind == "field" and spec.name in self.learnable:
                value = decoded[spec.name]
                for axis in range(value.ndim):
                    total = total + (torch.roll(value, -1, axis) - value).pow(2).mean()
        return total

    def validate(self, data: Batch | tuple | torch.Tensor | None = None) -> dict[str, Any]:
        """Observed validation (hyco.training.validation) of a rollout with the current coefficients from the
        initial states of `data` (default: the `set_validation` data)."""
        coefficients = self.coefficients()
        return observed_validation(lambda states, steps: self.model.rollout(states, coefficients, steps),
                                   self._validation_batch(data), self.dynamic, self.device, self.dtype)

    def keep_best(self) -> dict[str, Any]:
        """Validate the coefficients as they are (the `set_validation` data) and keep them in best.pt when they
        are the best so far (hyco.training.best); the result, and whether they were kept (`best`), is returned.
        The keeper's state and every validation error are part of the checkpoint, so a resumed run keeps the
        same epoch as an uninterrupted one."""
        result = self.validate()
        self.val_losses.append(finite_or_none(result["val_loss"]))
        result["best"] = self.best.offer(result, self.epoch, self.save)
        return result

    def adopt_best(self, loss: float | None, epoch: int | None, val_losses: list | None) -> None:
        """The kept epoch and the validation errors of a run whose checkpoint predates them (its summary's)."""
        self.best.load_state_dict({"loss": loss, "step": epoch})
        self.val_losses = list(val_losses or [])[:self.epoch]

    def gather(self, source: Iterable) -> list[Batch]:
        """This epoch's objective: batches from the source, grouped by rollout length and concatenated, up to
        `batch_windows` windows or as many window-frames as fit `memory_budget_gb` (at least one window).

        The budget is global: under torchrun a source's k-th batch on each rank is that rank's round-robin part
        of the k-th global batch (hyco.data.loader), so the ranks together take the windows one process takes,
        the first of each global batch, and no other (each rank its own of them)."""
        by_length: dict[int, list[Batch]] = {}
        if self.config.batch_windows > 0:
            budget, cost = self.config.batch_windows, (lambda steps: 1)
        else:
            budget = max(1, int(self.config.memory_budget_gb * 2**30 // self._window_step_bytes()))
            cost = (lambda steps: steps)  # noqa: E731 - a window costs one unit per stored frame
        ranks = process_info()
        used = 0
        for batch in source:
            batch = Batch.of(batch)
            size = batch.size
            if ranks.parallel:  # the global batch's size: every rank decides the same take
                size = int(all_reduce_sum(torch.tensor([size], device=self.device)))
            per_window = cost(batch.steps)
            take = min(size, (budget - used) // per_window)
            if take <= 0 and used == 0:
                take = 1
            if take <= 0:
                break
            mine = min(batch.size, rank_share(take, ranks))
            if mine:
                # a mask only broadcastable to [B, R, 1|C, *s] (e.g. one shared by all windows) is expanded first
                part = batch.head(mine).to(self.device, self.dtype, non_blocking=True).expanded()
                by_length.setdefault(batch.steps, []).append(part)
            used += take * per_window
            if used >= budget:
                break
        return [Batch.cat(parts) for parts in by_length.values()]

    # ---------------------------------------------------------------- training
    def train(self, source: Iterable, epochs: int, weights: LossWeights = DEFAULT_WEIGHTS) -> dict[str, Any]:
        """Run `epochs` epochs with the loss weights `weights`; returns the last epoch's metrics (plus the
        per-epoch history and whether it ended at the noise floor, `converged`)."""
        weights = (float(weights[0]), float(weights[1]))
        done: list[dict[str, Any]] = []
        self.early_stop.converged = False
        for _ in range(epochs):
            if self.early_stop.converged:
                break
            start = time.perf_counter()
            groups = self.gather(source)
            if not _windows(groups, self.device):
                raise DataError("physical trainer: the data source yielded no batch")
            objective = self.objective(groups, weights)
            signature = fingerprint(groups) if self.early_stop.enabled else None
            if self.early_stop.skips(signature, weights, self.raw):
                done.append(self._skipped(groups, start))
                break
            if self.minimiser is None:  # every coefficient is known: nothing to fit, report the loss
                with torch.no_grad():
                    result = EpochResult(float(objective(self.raw)), math.nan, math.nan, 0, 1, 0)
            else:
                result = self.minimiser.minimise(objective, self.raw, self.learnable)
            self.rejected_steps += result.rejected
            self.epoch += 1
            if not same_on_all_ranks(torch.cat([self.raw[n].detach().reshape(-1) for n in self.learnable] or
                                               [torch.zeros(1, device=self.device)])):
                raise RuntimeError("physical trainer: the ranks' coefficients differ after an epoch")
            metrics = {"epoch": self.epoch, "loss": result.loss, "windows": _windows(groups, self.device),
                       "rejected_steps": result.rejected, "iterations": result.iterations,
                       "evaluations": result.evaluations, "seconds": time.perf_counter() - start,
                       "noise_floor": result.floor}
            self.early_stop.check(result.start, result.loss, result.floor, fingerprint=signature, weights=weights,
                                  raw=self.raw, epoch=self.epoch)
            done.append(self._record(metrics))
            log.info("physical epoch %d: loss %.4g%s", self.epoch, result.loss,
                     "".join(f", {k} {v:.3g}" for k, v in metrics.items() if k.endswith("_rel_error")))
        out = dict(done[-1]) if done else {"epoch": self.epoch}
        out["history"] = done
        out["converged"] = self.converged
        return out

    def _skipped(self, groups: list[Batch], start: float) -> dict[str, Any]:
        """An epoch on the objective the coefficients converged on (trainer.physical.early_stop): not run."""
        self.epoch += 1
        metrics = {"epoch": self.epoch, "loss": self.history[-1]["loss"], "skipped": True,
                   "windows": _windows(groups, self.device), "rejected_steps": 0,
                   "iterations": 0, "evaluations": 0, "seconds": time.perf_counter() - start,
                   "noise_floor": self.history[-1].get("noise_floor")}
        log.info("physical epoch %d skipped: the same objective, from the same coefficients, as an epoch "
                 "that ended at its noise floor (trainer.physical.early_stop)", self.epoch)
        self.early_stop.converged = True
        return self._record(metrics)

    def _record(self, metrics: dict[str, Any]) -> dict[str, Any]:
        metrics.update(self._coefficient_metrics())
        self.history.append(metrics)
        self.run_log.write(metrics)
        return metrics

    def _coefficient_metrics(self) -> dict[str, float]:
        out: dict[str, float] = {}
        current = self.coefficients()
        for spec in self.model.coefficient_specs:
            if spec.kind == "scalar":
                out[f"{spec.name}"] = float(current[spec.name])
        if self.true_coefficients is not None:
            for name, err in coefficient_errors(current, self.true_coefficients).items():
                out[f"{name}_rel_error"] = err["rel_error"]
        if hasattr(self.model, "parameter_values"):  # parametric coefficients: their learned numbers, by name
            truth = self.model.true_parameters()
            for name, numbers in self.model.parameter_values(self.raw).items():
                out.update({f"{name}.{group}": v.detach().cpu().reshape(-1).tolist() for group, v in numbers.items()})
                if self.true_coefficients is not None:
                    out[f"{name}_parameter_rel_error"] = parameter_error(numbers, truth[name])["rel_error"]
        return out

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "physical",
            "coefficient_names": sorted(self.raw),
            "coefficient_shapes": {k: list(v.shape) for k, v in self.raw.items()},
            "raw": {k: v.detach().cpu() for k, v in self.raw.items()},
            # in physical units: readable without the model's encoding (whose bounds depend on the grid)
            "coefficients": {k: v.cpu() for k, v in self.coefficients().items()},
            "adam": self.minimiser.state_dict() if self.minimiser is not None else None,
            "epoch": self.epoch,
            "rejected_steps": self.rejected_steps,
            "history": self.history,
            # the objective the coefficients as saved have converged on (trainer.physical.early_stop), if any
            "converged_on": self.early_stop.state_dict(self.raw),
            "converged": self.early_stop.converged,  # the last epoch ended at the noise floor: a run stops there
            "best": self.best.state_dict(),
            "val_losses": list(self.val_losses),
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        shapes = {k: list(v.shape) for k, v in self.raw.items()}
        if state.get("kind") != "physical" or state.get("coefficient_shapes") != shapes:
            raise DataError(f"{source}: made for coefficients {state.get('coefficient_shapes')}, "
                            f"this model has {shapes}")
        with torch.no_grad():
            for name, value in state["raw"].items():
                self.raw[name] = value.to(self.device, self.dtype).clone().requires_grad_(name in self.learnable)
        self.minimiser = make_minimiser(self.config, [self.raw[n] for n in self.learnable])
        if self.minimiser is not None:
            self.minimiser.load_state_dict(state.get("adam"))
        self.epoch = int(state["epoch"])
        self.rejected_steps = int(state["rejected_steps"])
        self.history = list(state["history"])
        self.early_stop.load_state_dict(state.get("converged_on"), self.raw)
        self.early_stop.converged = bool(state.get("converged", False))
        self.best.load_state_dict(state.get("best") or {})
        self.val_losses = list(state.get("val_losses", []))
        self.run_log.truncate_after(self.epoch)


class PhysicalObjective:
    """One epoch's objective: the HYCO loss (hyco.training.loss) of the coefficients' rollouts over every group
    of windows, plus the smoothness penalty; a function of the raw parameters, for a minimiser.

    A group holds windows of one rollout length (one batched rollout each): e.g. whole trajectories of the
    real data next to R-step windows of the partner's predictions. The terms are pooled over the groups before
    they are weighted, so each is still the mean over its own values. Each evaluation records the moments of
    the loss, so its standard error (`noise_floor`) is known."""

    def __init__(self, trainer: PhysicalTrainer, groups: list[Batch], weights: LossWeights):
        self.trainer, self.groups, self.weights = trainer, groups, weights
        self.moments: Moments | None = None  # of the last evaluation

    def __call__(self, raw: dict[str, torch.Tensor]) -> torch.Tensor:
        trainer = self.trainer
        coefficients = trainer.model.decode(raw)
        sums = counts = fourth = None
        for group in self.groups:
            frames = trainer.model.rollout(group.inputs, coefficients, group.steps)
            s, c = batch_sums(frames, group, trainer.dynamic)
            with torch.no_grad():  # sums of the squared errors' squares: the spread of the loss (noise_floor)
                f = batch_sums(frames.detach(), group, trainer.dynamic, fourth_powers=True)[0]
            sums, counts, fourth = (s, c, f) if sums is None else (sums + s, counts + c, fourth + f)
        if sums is None:  # no window on this rank: zeros, still on the coefficients' graph (the gradient's sum)
            zeros = torch.zeros(NUM_TERMS, dtype=trainer.dtype, device=trainer.device)
            sums = sum((v.sum() * 0 for v in raw.values() if v.requires_grad), zeros)
            counts, fourth = zeros, zeros
        # under torchrun: the terms of every rank's shard of windows, so all ranks minimise one objective
        sums, counts, fourth = sum_over_ranks(sums), all_reduce_sum(counts.detach()), all_reduce_sum(fourth)
        self.moments = (sums.detach(), fourth, counts.detach())
        loss = weighted_loss(sums, counts, self.weights)
        if trainer.config.smoothness > 0:  # computed in full on every rank: its gradient shared among them
            loss = loss + grad_share(trainer.config.smoothness * trainer._smoothness(raw))
        return loss

    def noise_floor(self) -> float:
        """The standard error of the loss last evaluated (hyco.training.convergence)."""
        return noise_floor(self.moments, self.weights)

    def round_off(self) -> float:
        """The loss that round-off alone produces on these targets (see `_ROUND_OFF_EPS`)."""
        total = torch.zeros(2, dtype=torch.float64)
        dynamic = self.trainer.dynamic
        with torch.no_grad():
            for group in self.groups:
                targets = group.targets.index_select(2, dynamic)
                sums, counts = term_sums(targets.double(), torch.zeros_like(targets, dtype=torch.float64),
                                         group.dynamic_mask(dynamic))
                total += torch.stack([sums.sum(), counts.sum()]).cpu()
        total = all_reduce_sum(total.to(self.trainer.device)).cpu()
        mean_square = float(total[0] / total[1].clamp_min(1.0))
        return (_ROUND_OFF_EPS * torch.finfo(self.trainer.dtype).eps) ** 2 * mean_square


def _windows(groups: list[Batch], device: torch.device) -> int:
    """Windows in an epoch's objective, over all ranks."""
    return int(all_reduce_sum(torch.tensor(sum(g.size for g in groups), device=device)))
