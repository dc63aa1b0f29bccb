"""A run's coefficient posterior (hyco.training.laplace) as metrics.json has it, and the maps the report draws.

Per learned coefficient, merged into `runs[key].coefficients[name]`:

- a scalar: `std`, `interval` [low, high], `class`, `prior_fraction`;
- a parametric coefficient: the same per learned number, by group (`parameter_std`, `parameter_interval`
  {group: [[low...], [high...]]}, `parameter_class`, `parameter_prior_fraction`, `parameter_labels` such as
  `centers[1][0]`, all flat in the group's order) and the correlations of all its
  numbers (`correlation` {labels, matrix});
- a field: the mean std over the grid, inside and outside the observed region, and the share of cells in each
  class (`class_shares`); the maps themselves go to evaluation/uncertainty.pt (`field_maps`).

Each gets `identifiability`: the classes in words; and `misfit` (with a clause in those words) when the solver's
residuals are more than twice what the configured noise explains (hyco.training.laplace.MISFIT_LIMIT).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hyco.training.identifiability import CLASSES, class_indices, classify, describe, describe_field
from hyco.training.laplace import Posterior


def coefficient_entries(posterior: Posterior, observed_region: torch.Tensor | None,
                        truth: dict[str, torch.Tensor] | None = None) -> dict[str, dict[str, Any]]:
    """What metrics.json adds to each learned coefficient's entry (see the module docstring)."""
    out: dict[str, dict[str, Any]] = {}
    for name, c in posterior.coefficients.items():
        classes = classify(c.prior_fraction)
        if c.kind == "field" or not c.labels:
            std = c.std.reshape(c.shape)
            entry: dict[str, Any] = {"std_mean": float(std.mean()), "class_shares": {
                cls: float(np.mean(class_indices(c.prior_fraction) == i)) for i, cls in enumerate(CLASSES)},
                "identifiability": describe_field(name, classes)}
            if observed_region is not None and tuple(observed_region.shape) == tuple(c.shape):
                seen = observed_region.cpu().numpy().astype(bool)
                entry["std_mean_observed"] = float(std[seen].mean()) if seen.any() else None
                entry["std_mean_unobserved"] = float(std[~seen].mean()) if (~seen).any() else None
            if truth is not None and name in truth and tuple(truth[name].shape) == tuple(c.shape):
                z = z_scores(c.value.reshape(c.shape), truth[name].cpu().numpy(), std)
                entry["inside_interval"] = float(np.mean(np.abs(z) <= 1.959963984540054))
        elif c.kind == "scalar":
            entry = {"std": float(c.std[0]), "interval": [float(c.low[0]), float(c.high[0])], "class": classes[0],
                     "prior_fraction": float(c.prior_fraction[0]), "identifiability": describe(name, c.labels, classes)}
        else:
            entry = {"parameter_std": _by_group(c.labels, c.std), "parameter_interval": {
                g: [low, high] for (g, low), high in zip(_by_group(c.labels, c.low).items(),
                                                          _by_group(c.labels, c.high).values())},
                "parameter_class": _by_group(c.labels, classes), "parameter_labels": _by_group(c.labels, c.labels),
                "parameter_prior_fraction": _by_group(c.labels, c.prior_fraction),
                "identifiability": describe(name, c.labels, classes)}
            if posterior.correlation is not None:
                rows = [i for i, label in enumerate(posterior.labels) if label.startswith(f"{name}.")]
                entry["correlation"] = {"labels": c.labels,
                                        "matrix": posterior.correlation[np.ix_(rows, rows)].round(4).tolist()}
        entry["uncertainty"] = posterior.kind
        if c.ensemble_mean is not None:  # the members' own mean and std (physical units)
            if c.kind == "field" or not c.labels:
                entry["ensemble_std_mean"] = float(c.ensemble_std.mean())
            elif c.kind == "scalar":
                entry.update(ensemble_mean=float(c.ensemble_mean[0]), ensemble_std=float(c.ensemble_std[0]))
            else:
                entry.update(parameter_ensemble_mean=_by_group(c.labels, c.ensemble_mean),
                             parameter_ensemble_std=_by_group(c.labels, c.ensemble_std))
        if posterior.misfits:
            entry["misfit"] = posterior.misfit
            entry["identifiability"] += (
                f"; but the solver misfits the observed data (its residuals are {posterior.misfit:.3g} times what "
                "the configured noise explains: discretisation, missing physics or a filled initial state), so the "
                "interval, widened by that factor, still rests on a wrong model and need not hold the truth")
        out[name] = entry
    return out


def method_words(runs: dict[str, Any]) -> str:
    """How the intervals of `runs` (metrics.json's) were made, in words for captions and notes."""
    made = {(run.get("uncertainty") or {}).get("method", "laplace"): run.get("uncertainty") or {}
            for run in runs.values() if run.get("uncertainty")}
    words = []
    if "laplace" in made or not made:
        words.append("Laplace / Gauss–Newton posterior at the evaluated optimum")
    if "ensemble" in made:
        k = made["ensemble"].get("members", "K")
        words.append(f"an ensemble of {k} solvers refitted to the observations with their noise drawn again: the "
                     f"evaluated value ± t × their std")
    return "; ".join(words)


def field_maps(posterior: Posterior) -> dict[str, dict[str, np.ndarray]]:
    """Per field coefficient: its std map and class map (indices into CLASSES), in tensor order."""
    return {name: {"std": c.std.reshape(c.shape).astype(np.float32),
                   "class": class_indices(c.prior_fraction).reshape(c.shape).astype(np.int8),
                   "value": c.value.reshape(c.shape).astype(np.float32)}
            for name, c in posterior.coefficients.items() if c.kind == "field" or not c.labels}


def z_scores(learned: np.ndarray, truth: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(learned − true) / std, cell by cell (0 where the std is 0 and the two agree, ±inf where they do not)."""
    difference = np.asarray(learned, dtype=float) - np.asarray(truth, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = difference / np.asarray(std, dtype=float)
    return np.where(np.isnan(z), 0.0, z)


def _by_group(labels: list[str], values) -> dict[str, list]:
    """Flat per-number values -> {group: [values in the group's flat order]} (labels `group[i]...`)."""
    out: dict[str, list] = {}
    for label, value in zip(labels, values):
        out.setdefault(label.split("[")[0], []).append(value if isinstance(value, str) else float(value))
    return out
