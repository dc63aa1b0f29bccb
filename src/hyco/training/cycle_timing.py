"""Where a HYCO cycle's seconds went: each timed phase under one name, the storage strategy's cost taken out of
the phases it happened in, and the totals over the cycles that summary.json and the report show."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hyco.training.augmentation import GeneratedWindows

# a cycle's timed phases (metrics key `seconds_<key>`) by the name summary.json and the report give them
PHASES = {"synthetic_training": "network_training", "physical_training": "solver_training",
          "synthetic_rollouts": "network_predictions", "physical_rollouts": "solver_predictions",
          "completion": "completion", "validation": "validation", "storage": "storage",
          "regeneration": "regeneration"}


def phase_totals(history: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Seconds per phase summed over the cycles' metrics records (`seconds_<key>`)."""
    totals = dict.fromkeys(PHASES.values(), 0.0)
    for record in history:
        for key, phase in PHASES.items():
            totals[phase] += float(record.get(f"seconds_{key}") or 0.0)
    return totals


def storage_apart(seconds: dict[str, float], from_physics: GeneratedWindows,
                   from_network: GeneratedWindows) -> dict[str, float]:
    """Move the cache writes/reads ("storage") and on-the-fly re-generation ("regeneration") out of the
    phase they happened in, so the phases add up to the cycle and the storage strategy's cost is visible.
    Writes happen while a model's windows are generated; reads and re-generation while the OTHER model
    trains on them."""
    out = dict(seconds)
    out["storage"], out["regeneration"] = 0.0, 0.0
    for windows, rollouts, training in ((from_physics, "physical_rollouts", "synthetic_training"),
                                        (from_network, "synthetic_rollouts", "physical_training")):
        created = windows.seconds_at_creation
        for kind in ("storage", "regeneration"):
            during_training = windows.seconds[kind] - created[kind]
            out[kind] += created[kind] + during_training
            out[rollouts] = out.get(rollouts, 0.0) - created[kind]
            if training in out:
                out[training] -= during_training
    return out
