"""Which uncertainty figures the report shows (hyco.evaluation.uncertainty_plots draws them) and their captions,
from metrics.json's coefficient entries and the std and class maps of evaluation/uncertainty.pt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hyco.evaluation import uncertainty_plots
from hyco.evaluation.figure_style import run_label
from hyco.evaluation.report import Figure
from hyco.evaluation.uncertainty import method_words


def parameter_interval_figures(plan, runs: dict[str, Any], name: str, figures_dir: Path) -> list[Figure]:
    """A parametric coefficient whose runs estimated intervals: one bar per learned number and run."""
    intervals: dict[str, dict[str, tuple[float, float, float]]] = {}
    classes: dict[str, dict[str, str]] = {}
    truth: dict[str, float] = {}
    for key, run in runs.items():
        entry = run.get("coefficients", {}).get(name, {})
        if "parameter_interval" not in entry:
            continue
        for group, (lows, highs) in entry["parameter_interval"].items():
            values = np.asarray(entry.get("parameters", {}).get(group, []), dtype=float).reshape(-1)
            true = np.asarray(entry.get("true_parameters", {}).get(group, []), dtype=float).reshape(-1)
            labels = entry.get("parameter_labels", {}).get(group) or [f"{group}[{i}]" for i in range(len(lows))]
            for i, (low, high) in enumerate(zip(lows, highs)):
                number = labels[i]
                if i < values.size:
                    intervals.setdefault(key, {})[number] = (float(values[i]), float(low), float(high))
                    classes.setdefault(key, {})[number] = entry["parameter_class"][group][i]
                if i < true.size:
                    truth[number] = float(true[i])
    if not intervals:
        return []
    words = " ".join(f"{run_label(k)}: {runs[k]['coefficients'][name]['identifiability']}." for k in intervals)
    path = plan.draw(uncertainty_plots.plot_parameter_intervals, intervals, truth,
                     figures_dir / f"intervals_{name}.png", name, classes=classes)
    return [Figure(f"How far the data determine the numbers of {name}", path,
                   f"Each learned number with its 95 % interval ({method_words(runs)}), per run, against the truth "
                   "(dashed); beside each bar its class: determined (the "
                   "interval spans < 5 % of the number's bounds), weakly (5-50 %), not determined (more). " + words,
                   key="parameter_intervals")]


def field_uncertainty_figures(plan, runs: dict[str, Any], uncertainty: dict[str, Any], name: str,
                              truth: np.ndarray | None, figures_dir: Path, extent, observed) -> list[Figure]:
    """A field coefficient whose runs have std and class maps: one row of maps per run."""
    maps = {key: {k: np.asarray(v) for k, v in per_run[name].items()}
            for key, per_run in (uncertainty.get("runs") or {}).items() if name in per_run}
    if not maps or next(iter(maps.values()))["std"].ndim != 2:
        return []
    words = " ".join(f"{run_label(k)}: {runs[k]['coefficients'][name]['identifiability']}." for k in maps
                     if "identifiability" in runs.get(k, {}).get("coefficients", {}).get(name, {}))
    ratios = []
    for key in maps:
        entry = runs.get(key, {}).get("coefficients", {}).get(name, {})
        inside, outside = entry.get("std_mean_observed"), entry.get("std_mean_unobserved")
        if inside and outside:
            ratios.append(f"{run_label(key)}: mean std {outside:.3g} outside the observed region, {inside:.3g} "
                          f"inside ({outside / inside:.1f} x)")
    path = plan.draw(uncertainty_plots.plot_uncertainty_maps, maps, figures_dir / f"uncertainty_{name}.png", name,
                     truth=truth, extent=extent, observed=observed)
    return [Figure(f"How far the data determine {name}", path,
                   f"Per run: the posterior std of each cell ({method_words(runs)}, log scale), its class "
                   "(determined: the 95 % interval spans < 5 % of the bounds; weakly: 5-50 %; not "
                   "determined: more)" + (", and the z-score (learned − true) / std (|z| > 2: the truth lies "
                                          "outside the interval)" if truth is not None else "") + ". "
                   + "; ".join(ratios) + (". " if ratios else "") + words, key="uncertainty_maps")]
