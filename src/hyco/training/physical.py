"""Coefficient inference: one batched objective over many windows, minimised with L-BFGS-B or Adam.

The coefficients are shared by every sample, so each epoch builds ONE loss over a mini-batch of windows
(a single batched, jit-compiled rollout) instead of solving per sample. The optimiser works on the
model's unconstrained raw parameters (`model.encode`/`decode`), so every step stays physical.
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

from hyco.config.errors import DataError
from hyco.config.schema import PhysicalTrainerConfig
from hyco.evaluation.metrics import coefficient_errors, parameter_error
from hyco.training.loss import masked_mse
from hyco.training.run_log import RunLog
from hyco.utils.io import atomic_torch_save

log = logging.getLogger(__name__)

# Autograd keeps every intermediate state of the rollout: budget this many state-sized buffers per
# solver substep and window when sizing the batch from `memory_budget_gb`. Measured peak RSS of one
# forward + backward (32x32, float32, CPU, batches of 128-512 windows): Burgers 21-24 buffers, heat 15.
# A model whose step keeps much more (smoke: advection + pressure solve, measured 81-122) declares its
# own `memory_buffers_per_substep`.
_BUFFERS_PER_STEP = 28  # the measured 24 plus a margin for the trace of a new batch size
# A loss below (this many machine epsilons x the targets' RMS)^2 is round-off: the data are fitted as well
# as the dtype allows, and rescaling it to O(1) would only hand L-BFGS-B amplified noise (its line search
# then burns `maxls` evaluations without a step). Such an epoch ends after its first evaluation.
_ROUND_OFF_EPS = 4
_REJECTED_LOSS = 1e6  # what a non-finite trial point costs L-BFGS-B (after scaling the loss to O(1))


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
        self.epoch = 0
        self.rejected_steps = 0
        self.history: list[dict[str, Any]] = []
        self._last_iterations = self._last_evaluations = 0  # of the last epoch's optimiser run
        self._adam = (torch.optim.Adam([self.raw[n] for n in self.learnable], lr=config.lr)
                      if config.optimizer == "adam" and self.learnable else None)
        self.run_log = RunLog(run_dir, "physical")

    # ---------------------------------------------------------------- coefficients
    def coefficients(self) -> dict[str, torch.Tensor]:
        """Current physical coefficient values (detached)."""
        with torch.no_grad():
            return {k: v.detach().clone() for k, v in self.model.decode(self.raw).items()}

    def max_windows(self) -> int:
        """Windows per objective: `batch_windows`, or as many as fit `memory_budget_gb`."""
        if self.config.batch_windows > 0:
            return self.config.batch_windows
        values = self.model.num_channels * int(np.prod(self.model.spatial_shape))
        steps = max(1, getattr(self.model, "substeps", 1))
        itemsize = torch.finfo(self.dtype).bits // 8
        buffers = getattr(self.model, "memory_buffers_per_substep", _BUFFERS_PER_STEP)
        per_window = values * itemsize * buffers * steps * self._rollout_steps_hint
        return max(1, int(self.config.memory_budget_gb * 2**30 // per_window))

    _rollout_steps_hint = 4

    # ---------------------------------------------------------------- objective
    def _objective(self, raw: dict[str, torch.Tensor], batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        inputs, targets = batch[0], batch[1]
        mask = batch[2] if len(batch) > 2 else None
        prediction = self.model.rollout(inputs, self.model.decode(raw), targets.shape[1])
        prediction = prediction.index_select(2, self.dynamic)
        loss = masked_mse(prediction, targets.index_select(2, self.dynamic), mask)
        if self.config.smoothness > 0:
            loss = loss + self.config.smoothness * self._smoothness(raw)
        return loss

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

    def _gather(self, data_source: Iterable) -> tuple[torch.Tensor, ...] | None:
        """Concatenate batches from the source up to `max_windows` windows: this epoch's objective."""
        parts: list[tuple[torch.Tensor, ...]] = []
        count, limit = 0, None
        for batch in data_source:
            batch = tuple(t.to(self.device, self.dtype, non_blocking=True) for t in batch)
            if len(batch) > 2:  # a mask only broadcastable to [B, R, 1, *s] (e.g. one shared by all windows)
                inputs, targets = batch[0], batch[1]
                batch = (inputs, targets, batch[2].expand(targets.shape[0], targets.shape[1], 1, *targets.shape[3:]))
            if limit is None:
                self._rollout_steps_hint = batch[1].shape[1]
                limit = self.max_windows()
            take = min(batch[0].shape[0], limit - count)
            parts.append(tuple(t[:take] for t in batch))
            count += take
            if count >= limit:
                break
        if not parts:
            return None
        arity = {len(p) for p in parts}
        if len(arity) > 1:  # some batches carry masks, others (generated) do not: complete the missing ones
            parts = [p if len(p) == 3 else (*p, torch.ones_like(p[1][:, :, :1])) for p in parts]
        return tuple(torch.cat(items) for items in zip(*parts))

    # ---------------------------------------------------------------- training
    def train(self, data_source: Iterable, num_epochs: int) -> dict[str, Any]:
        """Run `num_epochs` epochs; returns the last epoch's metrics (plus the per-epoch history)."""
        epochs: list[dict[str, Any]] = []
        for _ in range(num_epochs):
            start = time.perf_counter()
            batch = self._gather(data_source)
            if batch is None:
                raise DataError("physical trainer: the data source yielded no batch")
            rejected_before = self.rejected_steps
            if not self.learnable:  # every coefficient is known: nothing to fit, report the loss
                with torch.no_grad():
                    loss = float(self._objective(self.raw, batch))
                self._last_iterations, self._last_evaluations = 0, 1
            elif self.config.optimizer == "lbfgsb":
                loss = self._lbfgsb_epoch(batch)
            else:
                loss = self._adam_epoch(batch)
            self.epoch += 1
            metrics = {"epoch": self.epoch, "loss": loss, "windows": int(batch[0].shape[0]),
                       "rejected_steps": self.rejected_steps - rejected_before,
                       "iterations": self._last_iterations, "evaluations": self._last_evaluations,
                       "seconds": time.perf_counter() - start}
            metrics.update(self._coefficient_metrics())
            self.history.append(metrics)
            self.run_log.write(metrics)
            log.info("physical epoch %d: loss %.4g%s", self.epoch, loss,
                     "".join(f", {k} {v:.3g}" for k, v in metrics.items() if k.endswith("_rel_error")))
            epochs.append(metrics)
        result = dict(epochs[-1]) if epochs else {"epoch": self.epoch}
        result["history"] = epochs
        return result

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

    def _lbfgsb_epoch(self, batch: tuple[torch.Tensor, ...]) -> float:
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
                best["loss"] = value
                if value <= floor:
                    raise _Converged
            scale = best["scale"]
            if not math.isfinite(value):
                self.rejected_steps += 1
                log.debug("physical: rejected a non-finite trial point")
                return _REJECTED_LOSS, np.zeros_like(x)
            grads = torch.autograd.grad(loss, [raw[n] for n in self.learnable])
            grad = np.concatenate([g.detach().cpu().double().reshape(-1).numpy() for g in grads])
            if not np.all(np.isfinite(grad)):
                self.rejected_steps += 1
                return _REJECTED_LOSS, np.zeros_like(x)
            if value < best["loss"]:
                best["loss"], best["x"] = value, x.copy()
            return value * scale, grad * scale

        try:
            result = minimize(fun, x0, jac=True, method="L-BFGS-B",
                              options={"maxiter": self.config.iterations, "ftol": self.config.tolerance,
                                       "gtol": self.config.tolerance * 1e-2, "maxls": 20})
            self._last_iterations = int(result.nit)
        except _Converged:
            log.debug("physical: loss %.3g is at round-off level, nothing left to fit", best["loss"])
            self._last_iterations = 0
        self._last_evaluations = evaluations[0]
        final = unflatten(best["x"])
        for name in self.learnable:
            self.raw[name] = final[name].detach().clone().requires_grad_(True)
        return best["loss"]

    def _round_off_floor(self, batch: tuple[torch.Tensor, ...]) -> float:
        """The loss that round-off alone produces on these targets (see `_ROUND_OFF_EPS`)."""
        targets = batch[1].index_select(2, self.dynamic)
        with torch.no_grad():
            mean_square = float(masked_mse(targets, torch.zeros_like(targets), batch[2] if len(batch) > 2 else None))
        return (_ROUND_OFF_EPS * torch.finfo(self.dtype).eps) ** 2 * mean_square

    def _adam_epoch(self, batch: tuple[torch.Tensor, ...]) -> float:
        """`iterations` Adam steps on this epoch's objective.

        A step that lands on a non-finite loss (e.g. past the explicit scheme's stability limit) is
        undone: the coefficients go back to the last point with a finite loss and the learning rate is
        halved, so the next step is shorter instead of repeating the same jump.
        """
        assert self._adam is not None
        last_good = {n: self.raw[n].detach().clone() for n in self.learnable}
        loss_value = math.nan
        for _ in range(self.config.iterations):
            self._adam.zero_grad(set_to_none=True)
            loss = self._objective(self.raw, batch)
            if not torch.isfinite(loss):
                self._reject(last_good)
                continue
            loss_value = float(loss.detach())
            last_good = {n: self.raw[n].detach().clone() for n in self.learnable}
            loss.backward()
            self._adam.step()
            if not all(torch.isfinite(self.raw[n]).all() for n in self.learnable):
                self._reject(last_good)
        with torch.no_grad():
            final = float(self._objective(self.raw, batch))
        self._last_iterations, self._last_evaluations = self.config.iterations, self.config.iterations + 1
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
            "adam": self._adam.state_dict() if self._adam is not None else None,
            "epoch": self.epoch,
            "rejected_steps": self.rejected_steps,
            "history": self.history,
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
        self.run_log.truncate_after(self.epoch)

    def save(self, path: str | Path) -> Path:
        atomic_torch_save(self.state_dict(), path)
        return Path(path)

    def load(self, path: str | Path) -> None:
        path = Path(path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # corrupt or foreign file
            raise DataError(f"{path}: not a readable hyco physical checkpoint ({type(exc).__name__})") from None
        self.load_state_dict(state, source=str(path))


class _Converged(Exception):
    """Ends an L-BFGS-B epoch whose starting loss is already at round-off level."""
