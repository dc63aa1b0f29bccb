"""Figures of how far the data determine the learned coefficients (hyco.training.laplace): interval bars for
learned numbers, and for a field per run its std map, its identifiability class map and, where the truth is
known, its z-score map (learned − true) / std, the observed region outlined on each."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, LogNorm, Normalize
from matplotlib.ticker import MaxNLocator

from hyco.evaluation.field_maps import grid_extent, outline_region
from hyco.evaluation.figure_style import DIVERGING, SEQUENTIAL, new_figure, run_label, run_style, save
from hyco.evaluation.uncertainty import z_scores
from hyco.training.identifiability import CLASSES

CLASS_COLOURS = ("#1b7837", "#fdb863", "#b2182b")  # determined, weakly, not determined
Z_LIMIT = 4.0  # the z-score scale: ±4 (beyond: saturated)


def plot_parameter_intervals(intervals: Mapping[str, Mapping[str, tuple[float, float, float]]],
                             truth: Mapping[str, float], path: Path, name: str,
                             classes: Mapping[str, Mapping[str, str]] | None = None) -> Path:
    """One panel per learned number: each run's value with its 95 % interval (bar), the truth dashed.
    `intervals[run][number] = (value, low, high)`; `classes[run][number]` is written under the run's name."""
    numbers = list(dict.fromkeys(n for entries in intervals.values() for n in entries))
    columns = min(3, len(numbers))
    rows = math.ceil(len(numbers) / columns)
    fig = new_figure(3.0 * columns, 0.6 + 0.45 * len(intervals) * rows + 0.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).reshape(-1)
    keys = list(intervals)
    for ax, number in zip(axes, numbers):
        for y, key in enumerate(keys):
            if number not in intervals[key]:
                continue
            value, low, high = intervals[key][number]
            style = run_style(key, keys)
            ax.errorbar([value], [y], xerr=[[value - low], [high - value]], fmt="o", capsize=4,
                        color=style.get("color"), linewidth=1.5)
        if number in truth:
            ax.axvline(truth[number], color="black", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(keys)), [run_label(k) + _class_suffix((classes or {}).get(k, {}).get(number))
                                         for k in keys], fontsize=8)
        ax.set_ylim(-0.6, len(keys) - 0.4)
        ax.set_title(number, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in axes[len(numbers):]:
        ax.set_axis_off()
    fig.suptitle(f"learned numbers of {name}: 95 % intervals (truth dashed)", fontsize=10)
    return save(fig, path)


def _class_suffix(label: str | None) -> str:
    return "" if not label else "\n(" + label.replace(" by the data", "") + ")"


def plot_uncertainty_maps(maps: Mapping[str, Mapping[str, np.ndarray]], path: Path, name: str,
                          truth: np.ndarray | None = None, extent: Sequence[float] | None = None,
                          observed: np.ndarray | None = None) -> Path:
    """Per run (a row): the std map (log scale), the class map and, with the truth, the z-score map."""
    keys = list(maps)
    shape = next(iter(maps.values()))["std"].shape
    extent = grid_extent(extent, shape)
    columns = 3 if truth is not None else 2
    fig = new_figure(3.3 * columns, 0.5 + 2.6 * len(keys))
    axes = np.asarray(fig.subplots(len(keys), columns, squeeze=False))
    stds = np.concatenate([np.ravel(m["std"]) for m in maps.values()])
    positive = stds[stds > 0]
    std_norm = LogNorm(float(positive.min()), float(positive.max())) if positive.size and positive.max() > \
        positive.min() else Normalize()
    class_map = ListedColormap(CLASS_COLOURS)
    class_norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5], class_map.N)
    for row, key in enumerate(keys):
        entry = maps[key]
        panels = [("std", np.asarray(entry["std"], dtype=float), SEQUENTIAL, std_norm),
                  ("class", np.asarray(entry["class"], dtype=float), class_map, class_norm)]
        if truth is not None:
            z = np.clip(z_scores(entry["value"], truth, entry["std"]), -Z_LIMIT, Z_LIMIT)
            panels.append(("z = (learned − true) / std", z, DIVERGING, Normalize(-Z_LIMIT, Z_LIMIT)))
        for column, (title, values, cmap, norm) in enumerate(panels):
            ax = axes[row, column]
            image = ax.imshow(values, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
            outline_region(ax, observed, extent)
            ax.set_title(f"{run_label(key)}: {title}", fontsize=9)
            ax.tick_params(labelsize=7)
            bar = fig.colorbar(image, ax=ax, shrink=0.85)
            if title == "class":
                bar.set_ticks([0, 1, 2], labels=["determined", "weakly", "not\ndetermined"])
            bar.ax.tick_params(labelsize=7)
    fig.suptitle(f"{name}: how far the data determine it (black outline: observed region)", fontsize=10)
    return save(fig, path)


__all__ = ["CLASSES", "plot_parameter_intervals", "plot_uncertainty_maps"]
