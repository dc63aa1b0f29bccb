"""Error measures of autoregressive rollouts and of learned coefficients against the truth."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

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
    rel_l2 = diff.norm(dim=-1) / t.norm(dim=-1).clamp_min(_EPS)
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


def coefficient_error(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Relative error: |l - t| / |t| for a scalar, relative L2 ||l - t|| / ||t|| for a field."""
    learned = learned.detach().to(torch.float64).cpu()
    true = true.detach().to(torch.float64).cpu()
    if learned.shape != true.shape:
        if learned.numel() == 1:  # a scalar guess against a field truth: compare everywhere
            learned = learned.reshape(()).expand(true.shape)
        else:
            raise ValueError(f"learned {tuple(learned.shape)} and true {tuple(true.shape)} coefficient shapes differ")
    denominator = float(true.norm())
    error = float((learned - true).norm())
    return error / denominator if denominator > 0 else error


def parameter_error(learned: dict[str, torch.Tensor], true: dict[str, torch.Tensor]) -> dict:
    """Relative error of a parametric coefficient's learned numbers (groups such as heights, centers):
    ||p - t|| / ||t|| over all the numbers together -- the HYCO paper's parameter error -- and per group.
    The numbers are compared in the units the profile is written in (domain coordinates for `units: domain`)."""
    groups = [g for g in true if g in learned]
    if not groups:
        raise ValueError(f"no common parameter groups: learned {sorted(learned)}, true {sorted(true)}")
    per_group, diff2, norm2 = {}, 0.0, 0.0
    for g in groups:
        p = torch.as_tensor(learned[g]).detach().to(torch.float64).cpu().reshape(-1)
        t = torch.as_tensor(true[g]).detach().to(torch.float64).cpu().reshape(-1)
        if p.shape != t.shape:
            raise ValueError(f"parameter group {g!r}: learned {list(p.shape)} and true {list(t.shape)} numbers differ")
        d2, n2 = float((p - t).square().sum()), float(t.square().sum())
        per_group[g] = math.sqrt(d2 / n2) if n2 > 0 else math.sqrt(d2)
        diff2, norm2 = diff2 + d2, norm2 + n2
    total = math.sqrt(diff2 / norm2) if norm2 > 0 else math.sqrt(diff2)
    return {"rel_error": total, "groups": per_group}


def parametric_coefficient_error(learned_numbers: dict[str, torch.Tensor], true_numbers: dict[str, torch.Tensor],
                                 learned_field: torch.Tensor, true_field: torch.Tensor) -> dict:
    """Both errors of a parametric coefficient: on its learned numbers (`parameter_error`) and on the field
    they make (`coefficient_error`, relative L2)."""
    numbers = parameter_error(learned_numbers, true_numbers)
    return {"parameter_rel_error": numbers["rel_error"], "parameter_groups": numbers["groups"],
            "field_rel_error": coefficient_error(learned_field, true_field)}


def coefficient_errors(learned: dict[str, torch.Tensor], true: dict[str, torch.Tensor],
                       observed: torch.Tensor | None = None) -> dict[str, dict]:
    """`rel_error` per coefficient; for a field, with `observed` (bool [*space], where any value is
    observed), also `rel_error_observed` and `rel_error_unobserved`: fitting versus inference."""
    out = {}
    for name in true:
        if name not in learned:
            continue
        entry = {"rel_error": coefficient_error(learned[name], true[name])}
        truth = true[name].detach().cpu()
        if observed is not None and truth.dim() > 0 and tuple(observed.shape) == tuple(truth.shape):
            value = learned[name].detach().cpu().to(torch.float64).reshape(()).expand(truth.shape) \
                if learned[name].numel() == 1 else learned[name].detach().cpu()
            inside = observed.bool().cpu()
            for key, region in (("rel_error_observed", inside), ("rel_error_unobserved", ~inside)):
                entry[key] = coefficient_error(value[region], truth[region]) if bool(region.any()) else None
        out[name] = entry
    return out


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


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf: a diverged rollout is reported as null, not as a fake number."""
    return value if math.isfinite(value) else None


def select_channels(x: torch.Tensor, channels: Sequence[int], axis: int = 2) -> torch.Tensor:
    return x.index_select(axis, torch.as_tensor(list(channels), device=x.device))
