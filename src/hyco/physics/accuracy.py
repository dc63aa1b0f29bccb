"""How far learned coefficients are from the truth, and the one relative L2 error every layer uses."""

from __future__ import annotations

import math

import torch

_EPS = 1e-12


def relative_l2(prediction: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor | None = None,
                start_dim: int = 2) -> torch.Tensor:
    """||prediction - truth|| / ||truth|| over the dimensions from `start_dim` on (observed values only when
    `mask` is given): per sample and step for `[N, T, C, *s]` with the default, one number with 0."""
    diff, ref = prediction - truth, truth
    if mask is not None:
        diff, ref = diff * mask, torch.broadcast_to(truth * mask, diff.shape)
    return diff.flatten(start_dim).norm(dim=-1) / ref.flatten(start_dim).norm(dim=-1).clamp_min(_EPS)


def coefficient_error(learned: torch.Tensor, true: torch.Tensor) -> float:
    """Relative error: |l - t| / |t| for a scalar, relative L2 ||l - t|| / ||t|| for a field."""
    learned = learned.detach().to(torch.float64).cpu()
    true = true.detach().to(torch.float64).cpu()
    if learned.shape != true.shape:
        if learned.numel() == 1:  # a scalar guess against a field truth: compare everywhere
            learned = learned.reshape(()).expand(true.shape)
        else:
            raise ValueError(f"learned {tuple(learned.shape)} and true {tuple(true.shape)} coefficient shapes differ")
    if float(true.norm()) == 0:
        return float((learned - true).norm())
    return float(relative_l2(learned, true, start_dim=0))


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
