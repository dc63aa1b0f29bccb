"""Error measures of autoregressive rollouts and of learned coefficients against the truth."""

from __future__ import annotations

from collections.abc import Sequence

import torch

# the coefficient errors are the physical model's own measure (its trainer reports them too): defined there
from hyco.physics.accuracy import (  # noqa: F401  (part of this module's interface)
    coefficient_error,
    coefficient_errors,
    parameter_error,
    parametric_coefficient_error,
    relative_l2,
)
from hyco.utils.io import finite_or_none

_EPS = 1e-12


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[N, S, C, *space] -> [N, S, values] in float64 (metrics must not suffer float32 cancellation)."""
    return x.detach().to(torch.float64).reshape(x.shape[0], x.shape[1], -1)


def per_step_errors(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-simulation, per-step errors of a rollout.

    `prediction` and `truth` are `[N, S, C, *space]` (S predicted steps, the initial state excluded;
    restrict C to the dynamic channels beforehand). Returns `[N, S]` tensors: rel_l2 (||p - t|| / ||t||),
    rmse, mae and corr (Pearson correlation over all values of one frame).
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in shape")
    p, t = _flat(prediction), _flat(truth)
    diff = p - t
    rel_l2 = relative_l2(p, t)
    rmse = diff.pow(2).mean(dim=-1).sqrt()
    mae = diff.abs().mean(dim=-1)
    pc = p - p.mean(dim=-1, keepdim=True)
    tc = t - t.mean(dim=-1, keepdim=True)
    corr = (pc * tc).sum(dim=-1) / (pc.norm(dim=-1) * tc.norm(dim=-1)).clamp_min(_EPS)
    return {"rel_l2": rel_l2, "rmse": rmse, "mae": mae, "corr": corr}


def correlation_time(corr: torch.Tensor, threshold: float = 0.8) -> torch.Tensor:
    """Number of leading steps whose correlation stays at or above `threshold`, per simulation.

    `corr` is `[N, S]`; a rollout that never drops below the threshold scores S.
    """
    below = corr < threshold
    steps = corr.shape[1]
    first_below = torch.where(below.any(dim=1), below.to(torch.int64).argmax(dim=1),
                              torch.full((corr.shape[0],), steps))
    return first_below.to(torch.float64)


def rollout_metrics(prediction: torch.Tensor, truth: torch.Tensor, corr_threshold: float = 0.8) -> dict:
    """Summary of a batch of rollouts: means over simulations and steps, plus the per-step curves."""
    errors = per_step_errors(prediction, truth)
    corr_time = correlation_time(errors["corr"], corr_threshold)
    summary: dict = {name: float(values.mean()) for name, values in errors.items()}
    summary["corr_time"] = float(corr_time.mean())
    summary["per_step"] = {name: values.mean(dim=0).tolist() for name, values in errors.items()}
    summary["num_sims"] = int(prediction.shape[0])
    summary["num_steps"] = int(prediction.shape[1])
    return summary


def field_rollout_metrics(prediction: torch.Tensor, truth: torch.Tensor, fields: Sequence[dict],
                          corr_threshold: float = 0.8) -> dict[str, dict]:
    """`rollout_metrics` of each dynamic field on its own (`prediction`/`truth` `[N, S, C, *space]` with all
    C channels): a pooled figure can hide a large error on a field of small magnitude."""
    out, start = {}, 0
    for spec in fields:
        stop = start + int(spec["channels"])
        if spec["dynamic"]:
            channels = list(range(start, stop))
            summary = rollout_metrics(select_channels(prediction, channels), select_channels(truth, channels),
                                      corr_threshold)
            out[spec["name"]] = {k: (finite_or_none(v) if isinstance(v, float) else v) for k, v in summary.items()
                                 if k != "per_step"}
            out[spec["name"]]["per_step_rel_l2"] = [finite_or_none(x) for x in summary["per_step"]["rel_l2"]]
        start = stop
    return out


def select_channels(x: torch.Tensor, channels: Sequence[int], axis: int = 2) -> torch.Tensor:
    return x.index_select(axis, torch.as_tensor(list(channels), device=x.device))
