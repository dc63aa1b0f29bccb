"""Observed validation, one implementation for every trainer: how well a model's rollout from the validation
data's initial states explains the OBSERVED values of the later frames (never the hidden truth).

Its numbers choose the kept models (hyco.training.best) and set HYCO's trust weights, so both models are judged
by the same rule on the same values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from hyco.data.batch import Batch
from hyco.errors import DataError
from hyco.physics.accuracy import relative_l2
from hyco.training.loss import sensor_samples

VALIDATION_CHUNK = 64  # simulations rolled out together (no autograd: a few states per simulation)

Predict = Callable[[torch.Tensor, int], torch.Tensor]  # (states [n, C, *s], steps) -> frames [n, steps, C, *s]


@torch.no_grad()
def observed_validation(predict: Predict, data: Batch, dynamic: torch.Tensor, device: torch.device,
                        dtype: torch.dtype) -> dict[str, Any]:
    """Roll `predict` out from `data.inputs` over all `data.steps` frames, `VALIDATION_CHUNK` simulations at a
    time, and compare with the observed values (`data.mask`) of the `dynamic` channels (on `device`).

    Returns `val_loss`, the MSE over the observed values; `val_loss_se`, its standard error (how much of a
    difference between two validation losses is only noise); `val_rel_l2`, the relative L2 error over the
    observed values per step, mean over simulations (None for a step without observed values), with its mean
    `val_rel_l2_mean` and last value `val_rel_l2_final`."""
    steps = data.steps
    total = torch.zeros(3, dtype=torch.float64)  # sum of squared errors, of their squares, count
    rel_sum = torch.zeros(steps, dtype=torch.float64)
    rel_n = torch.zeros(steps, dtype=torch.float64)
    for rows in torch.arange(data.size).split(VALIDATION_CHUNK):
        part = data.rows(rows)
        frames = predict(part.inputs.to(device, dtype), steps)
        if part.has_sensors:  # point sensors: their samples are the observed values
            rel, seen = _sensor_errors(frames, part.to(device, dtype), dynamic, total)
            rel_sum += (rel * seen).sum(dim=0)
            rel_n += seen.sum(dim=0)
            continue
        prediction = frames.index_select(2, dynamic)
        truth = part.targets.to(device, dtype).index_select(2, dynamic)
        error2 = (prediction.double() - truth.double()) ** 2
        mask = part.dynamic_mask(dynamic)
        weights = torch.ones_like(error2) if mask is None else torch.broadcast_to(
            mask.to(device, torch.float64), error2.shape)
        total += torch.stack([(error2 * weights).sum(), (error2 ** 2 * weights).sum(), (weights != 0).sum()]).cpu()
        mask = None if mask is None else mask.to(device, dtype)
        rel = relative_l2(prediction, truth, mask).double().cpu()  # [n, steps]
        seen = torch.ones_like(rel) if mask is None else (
            torch.broadcast_to(mask, prediction.shape).flatten(2).amax(dim=2).double().cpu())
        rel_sum += (rel * seen).sum(dim=0)
        rel_n += seen.sum(dim=0)
    count = float(total[2].clamp_min(1.0))
    mean = float(total[0]) / count
    variance = max(float(total[1]) / count - mean * mean, 0.0)
    per_step = [float(r / n) if n > 0 else None for r, n in zip(rel_sum, rel_n)]
    observed = [r for r in per_step if r is not None]
    return {"val_loss": mean, "val_loss_se": math.sqrt(variance / count), "val_rel_l2": per_step,
            "val_rel_l2_mean": sum(observed) / max(1, len(observed)),
            "val_rel_l2_final": observed[-1] if observed else None}


def _sensor_errors(frames: torch.Tensor, part: Batch, dynamic: torch.Tensor, total: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Add the sensor samples' squared errors (their sum, sum of squares, count) to `total`; the relative L2 error
    over the sensors per window and step `[n, steps]`, and which of them any sensor read."""
    predicted, observed, active = sensor_samples(frames, part, dynamic)
    error2 = (predicted.double() - observed.double()) ** 2
    weights = torch.broadcast_to(active.double(), error2.shape)
    total += torch.stack([(error2 * weights).sum(), (error2 ** 2 * weights).sum(), (weights != 0).sum()]).cpu()
    norm2 = (observed.double() ** 2 * weights).sum(dim=(2, 3))
    rel = ((error2 * weights).sum(dim=(2, 3)) / norm2.clamp_min(1e-30)).sqrt()
    seen = weights.amax(dim=(2, 3))
    return torch.where(seen > 0, rel, torch.zeros_like(rel)).cpu(), seen.cpu()


def validation_batch(data: Batch | tuple | torch.Tensor, ndim: int | None) -> Batch:
    """What an observer of the validation split has, as a Batch: a Batch (or its tuple form) of frame-0
    windows, or whole trajectories `[N, T, C, *space]` of `ndim` spatial axes (all observed)."""
    if not isinstance(data, torch.Tensor):
        return Batch.of(data)
    if data.dim() != ndim + 3 or data.shape[1] < 2:
        raise DataError(f"validation trajectories: expected [N, T>=2, C, *space], got shape {tuple(data.shape)}")
    return Batch.from_trajectories(data)
