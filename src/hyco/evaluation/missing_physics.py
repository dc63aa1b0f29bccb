"""Physics the solver lacks: the bias of its shared coefficients, and the models' errors where the missing term acts.

An experiment declares the missing physics by simulating its data with a model that has a term the learner
lacks (`data.reference.physics`, hyco.data.reference). The coefficients the two models share keep their truth, so
the solver's estimate can be scored against it after training: its bias says how much of the missing term the
solver's equation soaked up. The errors of the rollouts inside the region where the missing term acts say which
model carries it. Computed at evaluation, from the learned coefficients and the test split (the judge); nothing
here is read during training.
"""

from __future__ import annotations

from typing import Any

import torch

from hyco.evaluation.figure_style import run_label

SOLVER_RUNS = ("physical", "hyco_physical")


def region_rel_l2(prediction: torch.Tensor, target: torch.Tensor, region: torch.Tensor) -> float | None:
    """The relative L2 error of `prediction` against `target` ([..., *space]) over the cells of `region` (bool
    [*space]) of every sample, step and channel; None where the rollout diverged."""
    mask = region.to(device=target.device).expand_as(target)
    diff = (prediction.to(torch.float64) - target.to(torch.float64))[mask]
    norm = torch.linalg.vector_norm(target.to(torch.float64)[mask])
    error = float(torch.linalg.vector_norm(diff) / norm) if float(norm) > 0 else float(torch.linalg.vector_norm(diff))
    return error if torch.isfinite(torch.tensor(error)) else None


def signed_bias(learned: Any, truth: Any) -> float:
    """(mean learned - mean truth) / |mean truth|: the sign says which way the solver's coefficient moved."""
    value = float(torch.as_tensor(learned, dtype=torch.float64).mean())
    true = float(torch.as_tensor(truth, dtype=torch.float64).mean())
    return (value - true) / abs(true) if true else value


def missing_physics_entry(declared: dict[str, Any], metrics: dict[str, Any], region: torch.Tensor,
                          region_errors: dict[str, float | None]) -> dict[str, Any]:
    """metrics.json's `missing_physics`: what the data's model has that the learner lacks (`declared`, from
    hyco.data.reference.missing_terms), each solver's bias per shared coefficient with a truth (and its Laplace
    std where there is one), the rollout errors inside the missing term's region, and the sentence."""
    bias: dict[str, dict[str, dict[str, float]]] = {}
    for key in SOLVER_RUNS:
        learned = metrics.get("learned_coefficients", {}).get(key)
        if not learned:
            continue
        entries = metrics["runs"].get(key, {}).get("coefficients", {})
        for name, truth in metrics.get("true_coefficients", {}).items():
            if name not in learned or entries.get(name, {}).get("known"):
                continue
            item = {"bias": signed_bias(learned[name], truth), "rel_error": entries.get(name, {}).get("rel_error")}
            std = entries.get(name, {}).get("std")
            if isinstance(std, (int, float)) and std > 0:
                true_mean = abs(float(torch.as_tensor(truth, dtype=torch.float64).mean())) or 1.0
                item["bias_over_std"] = abs(item["bias"]) * true_mean / std
            bias.setdefault(key, {})[name] = item
    entry = dict(declared)
    entry.update({"bias": bias, "region_fraction": float(region.float().mean()),
                  "rollout_in_region": {k: v for k, v in region_errors.items()}})
    entry["sentence"] = sentence(entry)
    return entry


def sentence(entry: dict[str, Any]) -> str:
    """E.g. "The solver's diffusivity is biased by +98.6 % because its equation (heat) lacks the data's `decay`
    term (heat_decay); where that term acts (14 % of the domain) the rollout errors are: ..."."""
    lacks = f"its equation ({entry['learner_model']}) lacks the data's {entry['described']} term"
    lacks += "s" if len(entry.get("terms", [])) > 1 else ""
    lacks += f" ({entry['data_model']})"
    parts = []
    for key, coefficients in entry.get("bias", {}).items():
        for name, item in coefficients.items():
            parts.append(f"{run_label(key)}'s {name} by {item['bias']:+.1%}")
    text = (f"The solver's coefficients are biased ({'; '.join(parts)}) because {lacks}." if parts
            else f"No solver coefficient with a truth to score: {lacks}.")
    errors = {k: v for k, v in entry.get("rollout_in_region", {}).items() if v is not None}
    if errors:
        listed = ", ".join(f"{run_label(k)} {v:.3g}" for k, v in sorted(errors.items(), key=lambda kv: kv[1]))
        text += (f" Where that term acts ({entry['region_fraction']:.0%} of the domain), the rollouts' relative L2 "
                 f"errors are: {listed}.")
    return text
