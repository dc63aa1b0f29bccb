"""The minimisers of the physical objective, as values: `minimiser(config, params).minimise(objective, raw,
learnable)` runs one epoch. The objective does not know how it is minimised, and the minimiser does not know
what the objective means: it sees a loss of the raw parameters and the loss's noise floor.

- `LbfgsB`: SciPy's L-BFGS-B on the flattened raw parameters with torch gradients;
- `Adam`: `iterations` torch Adam steps; its moments persist between epochs (and in checkpoints).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from hyco.config.schema import PhysicalTrainerConfig
from hyco.errors import DataError
from hyco.utils.distributed import all_reduce_grads

log = logging.getLogger(__name__)

_REJECTED_LOSS = 1e6  # what a non-finite trial point costs L-BFGS-B (after scaling the loss to O(1))


class Objective(Protocol):
    """A loss of the raw parameters; it knows the standard error of the loss it last evaluated, and the loss
    that round-off alone produces on its data."""

    def __call__(self, raw: dict[str, torch.Tensor]) -> torch.Tensor: ...

    def noise_floor(self) -> float: ...

    def round_off(self) -> float: ...


@dataclass
class EpochResult:
    """What one epoch of minimisation did: the loss it ends with, its first loss, the noise floor at its end,
    the iterations and objective evaluations it took, and the trial steps it rejected (non-finite loss)."""

    loss: float
    start: float
    floor: float
    iterations: int
    evaluations: int
    rejected: int


class LbfgsB:
    """SciPy L-BFGS-B on the raw parameters with torch gradients.

    The loss is rescaled by its value at the start of the epoch: SciPy's stopping test is relative to
    max(|f|, 1), so an unscaled loss of 1e-6 would stop after one iteration. Non-finite trial points are
    rejected (a large finite value sends the line search back) and the best finite point is kept. A starting
    loss at round-off level (`Objective.round_off`) ends the epoch after its first evaluation: rescaling it to
    O(1) would only hand L-BFGS-B amplified noise."""

    def __init__(self, config: PhysicalTrainerConfig):
        self.iterations, self.tolerance = config.iterations, config.tolerance

    def minimise(self, objective: Objective, raw: dict[str, torch.Tensor], learnable: list[str]) -> EpochResult:
        """One epoch from `raw`; the learned entries of `raw` are replaced by the best point found."""
        from scipy.optimize import minimize

        reference = raw[learnable[0]]
        shapes = [raw[n].shape for n in learnable]
        sizes = [int(np.prod(s)) for s in shapes]

        def unflatten(x: np.ndarray) -> dict[str, torch.Tensor]:
            point = dict(raw)
            offset = 0
            for name, shape, size in zip(learnable, shapes, sizes):
                point[name] = torch.as_tensor(x[offset:offset + size], device=reference.device,
                                              dtype=reference.dtype).reshape(shape).requires_grad_(True)
                offset += size
            return point

        x0 = np.concatenate([raw[n].detach().cpu().double().reshape(-1).numpy() for n in learnable])
        # SciPy's first evaluation is at x0: its loss sets the scale (no separate forward pass, and no
        # gradient-free trace of the rollout to compile and warm up).
        best: dict[str, Any] = {"loss": math.inf, "x": x0.copy(), "scale": None}
        floor = objective.round_off()
        counts = {"evaluations": 0, "rejected": 0}

        def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
            counts["evaluations"] += 1
            point = unflatten(x)
            loss = objective(point)
            value = float(loss.detach())
            if best["scale"] is None:
                if not math.isfinite(value):
                    raise DataError("physical trainer: the loss is not finite at the current coefficients")
                best["scale"] = 1.0 / max(value, 1e-30)
                best["loss"], best["start"], best["floor"] = value, value, objective.noise_floor()
                if value <= floor:
                    raise _Converged
            scale = best["scale"]
            if not math.isfinite(value):
                counts["rejected"] += 1
                log.debug("physical: rejected a non-finite trial point")
                return _REJECTED_LOSS, np.zeros_like(x)
            grads = all_reduce_grads(list(torch.autograd.grad(loss, [point[n] for n in learnable])))
            grad = np.concatenate([g.detach().cpu().double().reshape(-1).numpy() for g in grads])
            if not np.all(np.isfinite(grad)):
                counts["rejected"] += 1
                return _REJECTED_LOSS, np.zeros_like(x)
            if value < best["loss"]:
                best["loss"], best["x"], best["floor"] = value, x.copy(), objective.noise_floor()
            return value * scale, grad * scale

        try:
            result = minimize(fun, x0, jac=True, method="L-BFGS-B",
                              options={"maxiter": self.iterations, "ftol": self.tolerance,
                                       "gtol": self.tolerance * 1e-2, "maxls": 20})
            iterations = int(result.nit)
        except _Converged:
            log.debug("physical: loss %.3g is at round-off level, nothing left to fit", best["loss"])
            iterations = 0
            best["floor"] = objective.noise_floor()
        final = unflatten(best["x"])
        for name in learnable:
            raw[name] = final[name].detach().clone().requires_grad_(True)
        return EpochResult(best["loss"], best["start"], best["floor"], iterations, counts["evaluations"],
                           counts["rejected"])

    def state_dict(self) -> None:
        return None  # nothing persists between epochs

    def load_state_dict(self, state: Any) -> None:
        pass


class Adam:
    """`iterations` Adam steps per epoch on the learned raw parameters `params` (the tensors themselves,
    updated in place).

    A step that lands on a non-finite loss (e.g. past the explicit scheme's stability limit) is undone: the
    coefficients go back to the last point with a finite loss and the learning rate is halved, so the next
    step is shorter instead of repeating the same jump."""

    def __init__(self, config: PhysicalTrainerConfig, params: list[torch.Tensor]):
        self.iterations = config.iterations
        self.optimizer = torch.optim.Adam(params, lr=config.lr)

    def minimise(self, objective: Objective, raw: dict[str, torch.Tensor], learnable: list[str]) -> EpochResult:
        last_good = {n: raw[n].detach().clone() for n in learnable}
        loss_value = start = math.nan
        rejected = 0
        for _ in range(self.iterations):
            self.optimizer.zero_grad(set_to_none=True)
            loss = objective(raw)
            if not torch.isfinite(loss):
                rejected += self._reject(raw, last_good)
                continue
            loss_value = float(loss.detach())  # Adam's steps need not lower the loss: only the epoch rule applies
            start = loss_value if math.isnan(start) else start
            last_good = {n: raw[n].detach().clone() for n in learnable}
            loss.backward()
            reduced = all_reduce_grads([raw[n].grad for n in learnable])
            for name, grad in zip(learnable, reduced):
                raw[name].grad = grad
            self.optimizer.step()
            if not all(torch.isfinite(raw[n]).all() for n in learnable):
                rejected += self._reject(raw, last_good)
        with torch.no_grad():
            final = float(objective(raw))
        floor = objective.noise_floor()
        if not math.isfinite(final):
            rejected += self._reject(raw, last_good)
            final = loss_value
        return EpochResult(final, start, floor, self.iterations, self.iterations + 1, rejected)

    def _reject(self, raw: dict[str, torch.Tensor], last_good: dict[str, torch.Tensor]) -> int:
        with torch.no_grad():
            for name, value in last_good.items():
                raw[name].copy_(value)
        for group in self.optimizer.param_groups:
            group["lr"] *= 0.5
        log.info("physical: rejected a step with a non-finite loss; learning rate now %.3g",
                 self.optimizer.param_groups[0]["lr"])
        return 1

    def state_dict(self) -> dict[str, Any]:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.optimizer.load_state_dict(state)


Minimiser = LbfgsB | Adam


def make_minimiser(config: PhysicalTrainerConfig, params: list[torch.Tensor]) -> Minimiser | None:
    """The configured minimiser (`trainer.physical.optimizer`) of `params`; None when nothing is learned."""
    if not params:
        return None
    return Adam(config, params) if config.optimizer == "adam" else LbfgsB(config)


class _Converged(Exception):
    """Ends an L-BFGS-B epoch whose starting loss is already at round-off level."""

