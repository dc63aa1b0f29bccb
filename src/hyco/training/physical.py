"""Coefficient inference: one batched objective over many windows, minimised with L-BFGS-B or Adam.

The coefficients are shared by every sample, so each epoch builds ONE loss over a mini-batch of windows
(a single batched, jit-compiled rollout) instead of solving per sample. The optimiser works on the
model's unconstrained raw parameters (`model.encode`/`decode`), so every step stays physical.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyco.config.errors import DataError
from hyco.config.models.physics import BUFFERS_PER_SUBSTEP
from hyco.config.schema import PhysicalTrainerConfig
from hyco.physics.accuracy import coefficient_errors, parameter_error
from hyco.training import checkpoint as ckpt
from hyco.training.loss import dynamic_mask, term_sums, weighted_loss, with_terms
from hyco.training.run_log import RunLog
from hyco.utils.distributed import (
    all_gather_objects,
    all_reduce_grads,
    all_reduce_sum,
    grad_share,
    same_on_all_ranks,
    sum_over_ranks,
)

log = logging.getLogger(__name__)

# Autograd keeps every intermediate state of the rollout: budget this many state-sized buffers per
# solver substep and window when sizing the batch from `memory_budget_gb`. Measured peak RSS of one
# forward + backward (32x32, float32, CPU, batches of 128-512 windows): Burgers 21-24 buffers, heat 15.
# A model whose step keeps much more (smoke: advection + pressure solve, measured 81-122) declares its
# own `memory_buffers_per_substep`.
_BUFFERS_PER_STEP = BUFFERS_PER_SUBSTEP  # 28: the measured 24 plus a margin for the trace of a new batch size
# A loss below (this many machine epsilons x the targets' RMS)^2 is round-off: the data are fitted as well
# as the dtype allows, and rescaling it to O(1) would only hand L-BFGS-B amplified noise (its line search
# then burns `maxls` evaluations without a step). Such an epoch ends after its first evaluation.
_ROUND_OFF_EPS = 4
_REJECTED_LOSS = 1e6  # what a non-finite trial point costs L-BFGS-B (after scaling the loss to O(1))
_VALIDATION_CHUNK = 64  # simulations per gradient-free validation rollout


class PhysicalTrainer:
    """`PhysicalTrainer(config, model, learnable_params)`, then `train(data_source, num_epochs)` as often
    as needed; it keeps its coefficients, Adam state and counters between calls and knows nothing about
    where the batches come from (real or generated)."""

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
        self.loss_weights: tuple[float, float] = (1.0, 1.0)  # (data, interaction): see hyco.training.loss
        self.epoch = 0
        self.rejected_steps = 0
        self.history: list[dict[str, Any]] = []
        self._last_iterations = self._last_evaluations = 0  # of the last epoch's optimiser run
        self._moments: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # of the last objective
        self._epoch_start = self._epoch_floor = math.nan  # the last epoch's first loss, the floor at its end
        self.converged = False  # the last epoch ended at the noise floor (trainer.physical.early_stop)
        self._converged_on: tuple | None = None  # (objective's fingerprint, loss weights, coefficients) then
        self._adam = (torch.optim.Adam([self.raw[n] for n in self.learnable], lr=config.lr)
                      if config.optimizer == "adam" and self.learnable else None)
        self.run_log = RunLog(run_dir, "physical")

    # ---------------------------------------------------------------- coefficients
    def coefficients(self) -> dict[str, torch.Tensor]:
        """Current physical coefficient values (detached)."""
        with torch.no_grad():
            return {k: v.detach().clone() for k, v in self.model.decode(self.raw).items()}

    def _window_step_bytes(self) -> int:
        """Autograd memory of one window and one stored frame of its rollout (see `_BUFFERS_PER_STEP`)."""
        values = self.model.num_channels * int(np.prod(self.model.spatial_shape))
        substeps = max(1, getattr(self.model, "substeps", 1))
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
    def _objective(self, raw: dict[str, torch.Tensor], groups: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
        """The HYCO loss (hyco.training.loss) over every group of windows, plus the smoothness penalty.

        A group holds windows of one rollout length (one batched rollout each): e.g. whole trajectories of
        the real data next to R-step windows of the partner's predictions. The terms are pooled over the
        groups before they are weighted, so each is still the mean over its own values."""
        coefficients = self.model.decode(raw)
        sums = counts = fourth = None
        for group in groups:
            inputs, targets = group[0], group[1]
            mask = dynamic_mask(group[2], self.dynamic) if len(group) > 2 else None
            terms = group[3] if len(group) > 3 else None
            prediction = self.model.rollout(inputs, coefficients, targets.shape[1]).index_select(2, self.dynamic)
            target = targets.index_select(2, self.dynamic)
            s, c = term_sums(prediction, target, mask, terms)
            with torch.no_grad():  # sums of the squared errors' squares: the spread of the loss (noise_floor)
                f = term_sums((prediction.detach() - target) ** 2, torch.zeros_like(target), mask, terms)[0]
            sums, counts, fourth = (s, c, f) if sums is None else (sums + s, counts + c, fourth + f)
        # under torchrun: the terms of every rank's shard of windows, so all ranks minimise one objective
        sums, counts, fourth = sum_over_ranks(sums), all_reduce_sum(counts.detach()), all_reduce_sum(fourth)
        self._moments = (sums.detach(), fourth, counts.detach())
        loss = weighted_loss(sums, counts, self.loss_weights)
        if self.config.smoothness > 0:  # computed in full on every rank: its gradient shared among them
            loss = loss + grad_share(self.config.smoothness * self._smoothness(raw))
        return loss

    @torch.no_grad()
    def validate(self, data: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """The error of a rollout from the validation data's initial states `(inputs [N, C, *s], targets
        [N, S, C, *s][, masks])` with the current coefficients: `val_loss`, the MSE over the observed values
        of the dynamic channels, and `val_loss_se`, its standard error (how much of a difference between two
        validation losses is only noise)."""
        inputs, targets = data[0], data[1]
        masks = data[2] if len(data) > 2 else None
        coefficients = self.coefficients()
        total = torch.zeros(3, dtype=torch.float64)  # sum of squared errors, of their squares, count
        for rows in torch.arange(inputs.shape[0]).split(_VALIDATION_CHUNK):
            prediction = self.model.rollout(inputs[rows].to(self.device, self.dtype), coefficients, targets.shape[1])
            truth = targets[rows].to(self.device, self.dtype).index_select(2, self.dynamic)
            error2 = (prediction.index_select(2, self.dynamic).double() - truth.double()) ** 2
            mask = torch.ones_like(error2)
            if masks is not None:
                mask = torch.broadcast_to(dynamic_mask(masks[rows] if masks.shape[0] > 1 else masks, self.dynamic)
                                          .to(self.device, torch.float64), error2.shape)
            total += torch.stack([(error2 * mask).sum(), (error2 ** 2 * mask).sum(), (mask != 0).sum()]).cpu()
        count = float(total[2].clamp_min(1.0))
        mean = float(total[0]) / count
        variance = max(float(total[1]) / count - mean * mean, 0.0)
        return {"val_loss": mean, "val_loss_se": math.sqrt(variance / count)}

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

    def noise_floor(self) -> float:
        """The standard error of the loss last evaluated: how much of a change in it the data can resolve.

        Each term's mean over its values has the standard error sqrt(var / n) of the squared errors it
        averages; the weighted loss adds them in quadrature. On noisy data the loss levels off at the noise
        variance and its changes sink below this floor: further iterations then fit the noise, not the
        coefficients (the rule of `trainer.physical.early_stop`)."""
        if self._moments is None:
            return 0.0
        sums, fourth, counts = (t.double().cpu() for t in self._moments)
        n = counts.clamp_min(1.0)
        mean = sums / n
        variance = (fourth / n - mean**2).clamp_min(0.0)
        weights = torch.tensor(self.loss_weights, dtype=torch.float64)
        present = (counts > 0).double()
        return float(torch.sqrt((present * weights**2 * variance / n).sum()))

    def _gather(self, data_source: Iterable) -> list[tuple[torch.Tensor, ...]]:
        """This epoch's objective: batches from the source, grouped by rollout length and concatenated, up to
        `batch_windows` windows or as many window-frames as fit `memory_budget_gb` (at least one window)."""
        by_length: dict[int, list[tuple[torch.Tensor, ...]]] = {}
        if self.config.batch_windows > 0:
            budget, cost = self.config.batch_windows, (lambda steps: 1)
        else:
            budget = max(1, int(self.config.memory_budget_gb * 2**30 // self._window_step_bytes()))
            cost = (lambda steps: steps)  # noqa: E731 - a window costs one unit per stored frame
        used = 0
        for batch in data_source:
            batch = tuple(t.to(self.device, self.dtype if t.is_floating_point() else t.dtype, non_blocking=True)
                          for t in batch)
            inputs, targets = batch[0], batch[1]
            if len(batch) > 2:  # a mask only broadcastable to [B, R, 1|C, *s] (e.g. one shared by all windows)
                mask = batch[2]
                batch = (inputs, targets, mask.expand(targets.shape[0], targets.shape[1], *mask.shape[2:]),
                         *batch[3:])
            per_window = cost(targets.shape[1])
            take = min(inputs.shape[0], (budget - used) // per_window)
            if take <= 0 and used == 0:
                take = 1
            if take <= 0:
                break
            by_length.setdefault(targets.shape[1], []).append(tuple(t[:take] for t in batch))
            used += take * per_window
            if used >= budget:
                break
        return [self._join(parts) for parts in by_length.values()]

    @staticmethod
    def _join(parts: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        """Concatenate batches of one rollout length; batches with and without masks or loss terms, or with
        masks of 1 and of C channels, are completed to one form first."""
        if any(len(p) > 2 for p in parts) and len({(len(p), p[2].shape[2] if len(p) > 2 else 0) for p in parts}) > 1:
            parts = [with_terms(p) for p in parts]
            channels = max(p[2].shape[2] for p in parts)
            parts = [(p[0], p[1], p[2].expand(*p[2].shape[:2], channels, *p[2].shape[3:]), p[3]) for p in parts]
        return tuple(torch.cat(items) for items in zip(*parts))

    # ---------------------------------------------------------------- training
    def train(self, data_source: Iterable, num_epochs: int) -> dict[str, Any]:
        """Run `num_epochs` epochs; returns the last epoch's metrics (plus the per-epoch history)."""
        epochs: list[dict[str, Any]] = []
        self.converged = False
        for _ in range(num_epochs):
            if self.converged:
                break
            start = time.perf_counter()
            groups = self._gather(data_source)
            if not groups:
                raise DataError("physical trainer: the data source yielded no batch")
            rejected_before = self.rejected_steps
            self._epoch_start = self._epoch_floor = math.nan
            fingerprint = _fingerprint(groups) if self.config.early_stop else None
            if self._same_converged_objective(fingerprint):
                self.epoch += 1
                metrics = {"epoch": self.epoch, "loss": self.history[-1]["loss"], "skipped": True,
                           "windows": _windows(groups), "rejected_steps": 0,
                           "iterations": 0, "evaluations": 0, "seconds": time.perf_counter() - start,
                           "noise_floor": self.history[-1].get("noise_floor")}
                log.info("physical epoch %d skipped: the same objective, from the same coefficients, as an epoch "
                         "that ended at its noise floor (trainer.physical.early_stop)", self.epoch)
                self.converged = True
                metrics.update(self._coefficient_metrics())
                self.history.append(metrics)
                self.run_log.write(metrics)
                epochs.append(metrics)
                break
            if not self.learnable:  # every coefficient is known: nothing to fit, report the loss
                with torch.no_grad():
                    loss = float(self._objective(self.raw, groups))
                self._last_iterations, self._last_evaluations = 0, 1
            elif self.config.optimizer == "lbfgsb":
                loss = self._lbfgsb_epoch(groups)
            else:
                loss = self._adam_epoch(groups)
            self.epoch += 1
            if not same_on_all_ranks(torch.cat([self.raw[n].detach().reshape(-1) for n in self.learnable] or
                                               [torch.zeros(1, device=self.device)])):
                raise RuntimeError("physical trainer: the ranks' coefficients differ after an epoch")
            metrics = {"epoch": self.epoch, "loss": loss, "windows": _windows(groups),
                       "rejected_steps": self.rejected_steps - rejected_before,
                       "iterations": self._last_iterations, "evaluations": self._last_evaluations,
                       "seconds": time.perf_counter() - start}
            self._check_converged(loss, metrics, fingerprint)
            metrics.update(self._coefficient_metrics())
            self.history.append(metrics)
            self.run_log.write(metrics)
            log.info("physical epoch %d: loss %.4g%s", self.epoch, loss,
                     "".join(f", {k} {v:.3g}" for k, v in metrics.items() if k.endswith("_rel_error")))
            epochs.append(metrics)
        result = dict(epochs[-1]) if epochs else {"epoch": self.epoch}
        result["history"] = epochs
        result["converged"] = self.converged
        return result

    def _check_converged(self, loss: float, metrics: dict[str, Any], fingerprint: str | None) -> None:
        """The rule of `trainer.physical.early_stop`: an epoch whose loss fell by less than the noise floor
        (`noise_floor`, at the epoch's end) found nothing the data can resolve, and another epoch on the same
        objective from the same coefficients would not either. The rest of this `train` call is skipped, and
        a later epoch is skipped as long as its objective (the same windows, loss weights and coefficients)
        is that one: e.g. the next HYCO cycle's, when every value is observed (no partner windows)."""
        improvement = self._epoch_start - loss
        metrics["noise_floor"] = self._epoch_floor
        self._converged_on = None
        if not self.config.early_stop or not self.learnable or not math.isfinite(improvement):
            return
        if improvement < self._epoch_floor:
            self.converged = True
            self._converged_on = (fingerprint, tuple(self.loss_weights), _versions(self.raw))
            log.info("physical epoch %d: the loss fell by %.3g, less than its noise floor %.3g (standard error of "
                     "the loss over the observed values): no further epochs on this objective "
                     "(trainer.physical.early_stop)", self.epoch, improvement, self._epoch_floor)

    def _same_converged_objective(self, fingerprint: str | None) -> bool:
        if self._converged_on is None or fingerprint is None:
            return False
        then, weights, tensors = self._converged_on
        unchanged = [(n, t, v) for n, t, v in tensors if self.raw.get(n) is t and t._version == v]
        return then == fingerprint and weights == tuple(self.loss_weights) and len(unchanged) == len(self.raw)

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

    def _lbfgsb_epoch(self, batch: list[tuple[torch.Tensor, ...]]) -> float:
        """SciPy L-BFGS-B on the raw parameters with torch gradients.

        The loss is rescaled by its value at the start of the epoch: SciPy's stopping test is relative to
        max(|f|, 1), so an unscaled loss of 1e-6 would stop after one iteration. Non-finite trial points
        are rejected (a large finite value sends the line search back) and the best finite point is kept.
        """
        from scipy.optimize import minimize

        shapes = [self.raw[n].shape for n in self.learnable]
        sizes = [int(np.prod(s)) for s in shapes]

        def unflatten(x: np.ndarray) -> dict[str, torch.Tensor]:
            raw = dict(self.raw)
            offset = 0
            for name, shape, size in zip(self.learnable, shapes, sizes):
                raw[name] = torch.as_tensor(x[offset:offset + size], device=self.device,
                                            dtype=self.dtype).reshape(shape).requires_grad_(True)
                offset += size
            return raw

        x0 = np.concatenate([self.raw[n].detach().cpu().double().reshape(-1).numpy() for n in self.learnable])
        # SciPy's first evaluation is at x0: its loss sets the scale (no separate forward pass, and no
        # gradient-free trace of the rollout to compile and warm up).
        best: dict[str, Any] = {"loss": math.inf, "x": x0.copy(), "scale": None}
        floor = self._round_off_floor(batch)

        evaluations = [0]

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            evaluations[0] += 1
            raw = unflatten(x)
            loss = self._objective(raw, batch)
            value = float(loss.detach())
            if best["scale"] is None:
                if not math.isfinite(value):
                    raise DataError("physical trainer: the loss is not finite at the current coefficients")
                best["scale"] = 1.0 / max(value, 1e-30)
                best["loss"], best["start"], best["floor"] = value, value, self.noise_floor()
                if value <= floor:
                    raise _Converged
            scale = best["scale"]
            if not math.isfinite(value):
                self.rejected_steps += 1
                log.debug("physical: rejected a non-finite trial point")
                return _REJECTED_LOSS, np.zeros_like(x)
            grads = all_reduce_grads(list(torch.autograd.grad(loss, [raw[n] for n in self.learnable])))
            grad = np.concatenate([g.detach().cpu().double().reshape(-1).numpy() for g in grads])
            if not np.all(np.isfinite(grad)):
                self.rejected_steps += 1
                return _REJECTED_LOSS, np.zeros_like(x)
            if value < best["loss"]:
                best["loss"], best["x"], best["floor"] = value, x.copy(), self.noise_floor()
            return value * scale, grad * scale

        try:
            result = minimize(fun, x0, jac=True, method="L-BFGS-B",
                              options={"maxiter": self.config.iterations, "ftol": self.config.tolerance,
                                       "gtol": self.config.tolerance * 1e-2, "maxls": 20})
            self._last_iterations = int(result.nit)
        except _Converged:
            log.debug("physical: loss %.3g is at round-off level, nothing left to fit", best["loss"])
            self._last_iterations = 0
            best["floor"] = self.noise_floor()
        self._last_evaluations = evaluations[0]
        self._epoch_start, self._epoch_floor = best["start"], best["floor"]
        final = unflatten(best["x"])
        for name in self.learnable:
            self.raw[name] = final[name].detach().clone().requires_grad_(True)
        return best["loss"]

    def _round_off_floor(self, groups: list[tuple[torch.Tensor, ...]]) -> float:
        """The loss that round-off alone produces on these targets (see `_ROUND_OFF_EPS`)."""
        total = torch.zeros(2, dtype=torch.float64)
        with torch.no_grad():
            for group in groups:
                targets = group[1].index_select(2, self.dynamic)
                mask = dynamic_mask(group[2], self.dynamic) if len(group) > 2 else None
                sums, counts = term_sums(targets.double(), torch.zeros_like(targets, dtype=torch.float64), mask)
                total += torch.stack([sums.sum(), counts.sum()]).cpu()
        total = all_reduce_sum(total.to(self.device)).cpu()
        mean_square = float(total[0] / total[1].clamp_min(1.0))
        return (_ROUND_OFF_EPS * torch.finfo(self.dtype).eps) ** 2 * mean_square

    def _adam_epoch(self, batch: list[tuple[torch.Tensor, ...]]) -> float:
        """`iterations` Adam steps on this epoch's objective.

        A step that lands on a non-finite loss (e.g. past the explicit scheme's stability limit) is
        undone: the coefficients go back to the last point with a finite loss and the learning rate is
        halved, so the next step is shorter instead of repeating the same jump.
        """
        assert self._adam is not None
        last_good = {n: self.raw[n].detach().clone() for n in self.learnable}
        loss_value = math.nan
        start = math.nan
        for _ in range(self.config.iterations):
            self._adam.zero_grad(set_to_none=True)
            loss = self._objective(self.raw, batch)
            if not torch.isfinite(loss):
                self._reject(last_good)
                continue
            loss_value = float(loss.detach())  # Adam's steps need not lower the loss: only the epoch rule applies
            start = loss_value if math.isnan(start) else start
            last_good = {n: self.raw[n].detach().clone() for n in self.learnable}
            loss.backward()
            reduced = all_reduce_grads([self.raw[n].grad for n in self.learnable])
            for name, grad in zip(self.learnable, reduced):
                self.raw[name].grad = grad
            self._adam.step()
            if not all(torch.isfinite(self.raw[n]).all() for n in self.learnable):
                self._reject(last_good)
        with torch.no_grad():
            final = float(self._objective(self.raw, batch))
        self._last_iterations, self._last_evaluations = self.config.iterations, self.config.iterations + 1
        self._epoch_start, self._epoch_floor = start, self.noise_floor()
        if not math.isfinite(final):
            self._reject(last_good)
            return loss_value
        return final

    def _reject(self, last_good: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name in self.learnable:
                self.raw[name].copy_(last_good[name])
        for group in self._adam.param_groups:
            group["lr"] *= 0.5
        self.rejected_steps += 1
        log.info("physical: rejected a step with a non-finite loss; learning rate now %.3g",
                 self._adam.param_groups[0]["lr"])

    # ---------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": "physical",
            "coefficient_names": sorted(self.raw),
            "coefficient_shapes": {k: list(v.shape) for k, v in self.raw.items()},
            "raw": {k: v.detach().cpu() for k, v in self.raw.items()},
            # in physical units: readable without the model's encoding (whose bounds depend on the grid)
            "coefficients": {k: v.cpu() for k, v in self.coefficients().items()},
            "adam": self._adam.state_dict() if self._adam is not None else None,
            "epoch": self.epoch,
            "rejected_steps": self.rejected_steps,
            "history": self.history,
            # the objective the coefficients as saved have converged on (trainer.physical.early_stop), if any
            "converged_on": (list(self._converged_on[:2]) if self._converged_on is not None
                             and all(self.raw.get(n) is t and t._version == v for n, t, v in self._converged_on[2])
                             else None),
        }

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> None:
        shapes = {k: list(v.shape) for k, v in self.raw.items()}
        if state.get("kind") != "physical" or state.get("coefficient_shapes") != shapes:
            raise DataError(f"{source}: made for coefficients {state.get('coefficient_shapes')}, "
                            f"this model has {shapes}")
        with torch.no_grad():
            for name, value in state["raw"].items():
                self.raw[name] = value.to(self.device, self.dtype).clone().requires_grad_(name in self.learnable)
        if self._adam is not None:
            self._adam = torch.optim.Adam([self.raw[n] for n in self.learnable], lr=self.config.lr)
            if state.get("adam") is not None:
                self._adam.load_state_dict(state["adam"])
        self.epoch = int(state["epoch"])
        self.rejected_steps = int(state["rejected_steps"])
        self.history = list(state["history"])
        converged = state.get("converged_on")
        self._converged_on = None if converged is None else (converged[0], tuple(converged[1]), _versions(self.raw))
        self.run_log.truncate_after(self.epoch)

    def save(self, path: str | Path) -> Path:
        return ckpt.save_checkpoint(self.state_dict(), path)

    def load(self, path: str | Path) -> None:
        self.load_state_dict(ckpt.load_checkpoint(path), source=str(path))


def _windows(groups: list[tuple[torch.Tensor, ...]]) -> int:
    """Windows in an epoch's objective, over all ranks."""
    return int(all_reduce_sum(torch.tensor(sum(int(g[0].shape[0]) for g in groups), device=groups[0][0].device)))


def better_within_noise(loss: float, loss_se: float, best_loss: float) -> bool:
    """Whether a later model should replace the best one so far: its validation loss is lower, or higher by
    less than the loss's standard error (a difference that is only noise goes to the more trained model).
    Compared with the lowest loss seen, so small drifts cannot add up."""
    return loss <= best_loss + loss_se


def _fingerprint(groups: list[tuple[torch.Tensor, ...]]) -> str:
    """What the objective is, whatever order its windows come in: a hash of, per group, the sorted per-window
    sums of every tensor (inputs, targets, masks, terms) and of the targets' squares."""
    digest = hashlib.sha256()
    parts = []
    for group in groups:
        columns = [t.detach().reshape(t.shape[0], -1).double().sum(dim=1) for t in group]
        columns.append(group[1].detach().reshape(group[1].shape[0], -1).double().square().sum(dim=1))
        rows = torch.cat(all_gather_objects(torch.stack(columns, dim=1).cpu()))  # the objective of all ranks
        order = sorted(range(rows.shape[0]), key=lambda i: tuple(rows[i].tolist()))
        parts.append(repr(tuple(group[1].shape[1:])).encode() + rows[order].numpy().tobytes())
    for part in sorted(parts):
        digest.update(part)
    return digest.hexdigest()


def _versions(raw: dict[str, torch.Tensor]) -> tuple:
    """Each coefficient tensor with its count of in-place writes: the same tensor, the same count = unchanged."""
    return tuple((name, t, t._version) for name, t in sorted(raw.items()))


class _Converged(Exception):
    """Ends an L-BFGS-B epoch whose starting loss is already at round-off level."""
