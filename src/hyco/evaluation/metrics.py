"""Error measures of autoregressive rollouts and of learned coefficients against the truth.

Besides the relative L2 error of a whole frame, the two per-channel measures peers report (The Well,
Ohana et al. 2024): nRMSE, the RMSE over the grid divided by the root mean square of the truth, and VRMSE,
the RMSE divided by the truth's standard deviation over the grid (so a field that barely varies is not
flattered by its mean; VRMSE 1 is the error of predicting the field's spatial mean). Both are taken per
simulation, frame and channel, then averaged over channels (a field's components, or every dynamic channel for
the pooled figure), frames and simulations. For a one-channel field nRMSE equals the relative L2 error.
"""

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
WELL_EPS = 1e-7  # The Well's guard against a flat truth in nRMSE and VRMSE
QUANTILES = (0.1, 0.5, 0.9)  # the spread over test simulations drawn as bands: 10 %, median, 90 %


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[N, S, C, *space] -> [N, S, values] in float64 (metrics must not suffer float32 cancellation)."""
    return x.detach().to(torch.float64).reshape(x.shape[0], x.shape[1], -1)


def channel_errors(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """nRMSE and VRMSE per simulation, step and channel (`[N, S, C]`) of `[N, S, C, *space]` rollouts.

    nRMSE = sqrt(mean((p - t)^2) / (mean(t^2) + eps)), VRMSE = sqrt(mean((p - t)^2) / (var(t) + eps)), the
    means over the grid of one channel, `var` with Bessel's correction and eps = 1e-7, as The Well has them.
    """
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and truth {tuple(truth.shape)} differ in shape")
    p = prediction.detach().to(torch.float64).flatten(3)
    t = truth.detach().to(torch.float64).flatten(3)
    mse = (p - t).pow(2).mean(dim=-1)
    return {"nrmse": (mse / (t.pow(2).mean(dim=-1) + WELL_EPS)).sqrt(),
            "vrmse": (mse / (t.var(dim=-1, correction=1 if t.shape[-1] > 1 else 0) + WELL_EPS)).sqrt()}


def per_step_errors(prediction: torch.Tensor, truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-simulation, per-step errors of a rollout.

    `prediction` and `truth` are `[N, S, C, *space]` (S predicted steps, the initial state excluded;
    restrict C to the dynamic channels beforehand). Returns `[N, S]` tensors: rel_l2 (||p - t|| / ||t||),
    rmse, mae, corr (Pearson correlation over all values of one frame), and nrmse and vrmse (per channel, see
    `channel_errors`, averaged over the channels).
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
    well = {name: values.mean(dim=-1) for name, values in channel_errors(prediction, truth).items()}
    return {"rel_l2": rel_l2, "rmse": rmse, "mae": mae, "corr": corr, **well}


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
    """Summary of a batch of rollouts: means over simulations and steps, the per-step curves (means over
    simulations), each simulation's mean over its steps (`per_sim`: what a paired comparison of two models
    needs) and the spread of the per-step curves over the simulations (`per_step_quantiles`: 10 %, median,
    90 % of rel_l2 and vrmse)."""
    errors = per_step_errors(prediction, truth)
    corr_time = correlation_time(errors["corr"], corr_threshold)
    summary: dict = {name: float(values.mean()) for name, values in errors.items()}
    summary["corr_time"] = float(corr_time.mean())
    summary["per_step"] = {name: values.mean(dim=0).tolist() for name, values in errors.items()}
    summary["per_sim"] = {name: values.mean(dim=1).tolist() for name, values in errors.items()}
    summary["per_sim"]["corr_time"] = corr_time.tolist()
    summary["per_step_quantiles"] = {name: step_quantiles(errors[name]) for name in ("rel_l2", "vrmse")}
    summary["num_sims"] = int(prediction.shape[0])
    summary["num_steps"] = int(prediction.shape[1])
    return summary


def step_quantiles(values: torch.Tensor) -> dict[str, list[float]]:
    """`QUANTILES` over simulations of `[N, S]` per-step values: {"q10": [S], "q50": [S], "q90": [S]} (NaN of a
    diverged simulation propagates: a band that hides a divergence would lie)."""
    levels = torch.tensor(QUANTILES, dtype=values.dtype)
    q = torch.quantile(values, levels, dim=0)
    return {f"q{round(level * 100)}": q[i].tolist() for i, level in enumerate(QUANTILES)}


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
            out[spec["name"]] = json_safe({k: v for k, v in summary.items() if k != "per_step"})
            out[spec["name"]]["per_step_rel_l2"] = [finite_or_none(x) for x in summary["per_step"]["rel_l2"]]
        start = stop
    return out


def json_safe(value):
    """`finite_or_none` through nested dicts and lists (JSON has no NaN)."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def select_channels(x: torch.Tensor, channels: Sequence[int], axis: int = 2) -> torch.Tensor:
    return x.index_select(axis, torch.as_tensor(list(channels), device=x.device))
