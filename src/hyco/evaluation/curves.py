"""Figures of numbers over time or training: rollout errors with their spread, training losses, HYCO's cycles,
learned numbers against their true values.

Every run keeps its colour, dash and marker (`figure_style.run_style`) in every figure, so a HYCO model that
lies on its single-model twin stays visible; time axes are in the PDE's time units, epoch and cycle axes have
integer ticks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from hyco.evaluation.figure_style import (
    finite,
    integer_ticks,
    new_figure,
    run_label,
    run_style,
    save,
    scale_for,
)

SERIES_STYLES = [("#1f77b4", "-", "o"), ("#2ca02c", "--", "s"), ("#ff7f0e", "-.", "^"), ("#d62728", ":", "D"),
                 ("#9467bd", "-", "v"), ("#8c564b", "--", "P")]


def _legend_below(ax) -> None:
    """The legend under its panel: inside, several entries would cover the curves."""
    count = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2 if count > 2 else count,
              frameon=False)


def _width(index: int) -> dict:
    """Earlier series drawn wider: one lying on another still shows its colour at the edges."""
    return {"linewidth": max(1.0, 3.0 - 0.6 * index), "markersize": max(3.5, 7.0 - 1.0 * index)}


def _marks(count: int, index: int, runs: int) -> int | tuple[int, int]:
    """Markers of coincident runs alternate instead of hiding each other."""
    if count <= 2 * runs:
        return 1
    return (index % runs, runs)


def draw_error_curves(ax, curves: Mapping[str, Sequence[float | None]], dt: float = 1.0,
                      bands: Mapping[str, tuple[Sequence, Sequence]] | None = None) -> list:
    """One line per run over time t = step · dt (step 1 is the first prediction), its band (e.g. the 10–90 %
    range over the test simulations) shaded in its colour; returns the lines."""
    lines = []
    order = list(curves)
    for index, (key, values) in enumerate(curves.items()):
        values = finite(values)
        t = np.arange(1, values.size + 1) * dt
        style = run_style(key, order)
        if bands and key in bands:
            low, high = (finite(v) for v in bands[key])
            if np.any(high > low):
                ax.fill_between(t, low, high, color=style["color"], alpha=0.15, linewidth=0)
        (line,) = ax.plot(t, values, label=run_label(key), markevery=_marks(values.size, index, len(curves)),
                          markerfacecolor="none", **style)
        lines.append(line)
    return lines


def plot_error_curves(curves: Mapping[str, Sequence[float | None]], path: Path, dt: float = 1.0,
                      ylabel: str = "relative L2 error", bands: Mapping[str, tuple[Sequence, Sequence]] | None = None,
                      title: str = "") -> Path:
    """Error of every run over the rollout (log scale when all positive), with bands when given."""
    fig = new_figure(6.4, 4.0)
    ax = fig.subplots()
    draw_error_curves(ax, curves, dt, bands)
    ax.set_xlabel("time t")
    ax.set_ylabel(ylabel)
    scale_for(ax.yaxis, *[finite(v) for v in curves.values()])
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save(fig, path)


def plot_training_curves(panels: Mapping[str, Mapping[str, Sequence[float | None]]], path: Path,
                         xlabels: Mapping[str, str] | None = None) -> Path:
    """One panel per run (title: the run; x: epoch or cycle as `xlabels` says), each with its named loss curves."""
    panels = {title: {k: v for k, v in series.items() if len(v)} for title, series in panels.items()}
    panels = {title: series for title, series in panels.items() if series}
    fig = new_figure(4.2 * max(len(panels), 1), 4.0)
    axes = fig.subplots(1, max(len(panels), 1), squeeze=False)[0]
    for ax, (title, series) in zip(axes, panels.items()):
        for index, (label, values) in enumerate(series.items()):
            values = finite(values)
            color, dash, marker = SERIES_STYLES[index % len(SERIES_STYLES)]
            ax.plot(np.arange(1, values.size + 1), values, label=label, color=color, linestyle=dash, marker=marker,
                    markevery=_marks(values.size, index, len(series)), markerfacecolor="none", **_width(index))
        ax.set_title(title, fontsize=10)
        ax.set_xlabel((xlabels or {}).get(title, "epoch"))
        ax.set_ylabel("loss")
        integer_ticks(ax.xaxis)
        scale_for(ax.yaxis, *[finite(v) for v in series.values()])
        ax.grid(True, which="both", alpha=0.25)
        _legend_below(ax)
    return save(fig, path)


def plot_cycles(series: Mapping[str, Sequence[float | None]], path: Path, best_cycle: int | None = None) -> Path:
    """HYCO over its cycles: one panel per group of series keyed `group: label` (errors on a log scale,
    weights on a linear one); the evaluated (best) cycle is marked."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, values in series.items():
        group, _, label = key.partition(": ")
        groups.setdefault(group, {})[label or group] = finite(values)
    fig = new_figure(4.2 * len(groups), 4.1)
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, (group, curves) in zip(axes, groups.items()):
        for index, (label, values) in enumerate(curves.items()):
            color, dash, marker = SERIES_STYLES[index % len(SERIES_STYLES)]
            ax.plot(np.arange(1, values.size + 1), values, label=label, color=color, linestyle=dash, marker=marker,
                    markerfacecolor="none", **_width(index))
        if best_cycle is not None:
            ax.axvline(best_cycle, color="k", linestyle=":", linewidth=1, label="evaluated cycle")
        if "weight" not in group:
            scale_for(ax.yaxis, *curves.values())
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("cycle")
        ax.set_ylabel("weight" if "weight" in group else "loss" if "loss" in group else "error")
        integer_ticks(ax.xaxis)
        ax.grid(True, which="both", alpha=0.25)
        _legend_below(ax)
    return save(fig, path)


def plot_scalar_coefficient(name: str, true_value: float, path: Path, initial: float | None = None,
                            traces: Mapping[str, Sequence[float]] | None = None,
                            final: Mapping[str, float] | None = None,
                            intervals: Mapping[str, tuple[float, float]] | None = None,
                            floor: float | None = None) -> Path:
    """A learned number against its truth: its value over the physical epochs (left, when `traces`) and the
    value each run ended with as a dot, with its interval when known (right); the model floor, a relative
    error, as a band around the truth."""
    traces = {k: v for k, v in (traces or {}).items() if len(v)}
    fig = new_figure(10.0 if traces else 5.6, 3.6)
    axes = fig.subplots(1, 2 if traces else 1, squeeze=False, width_ratios=[1.3, 1] if traces else None)[0]
    order = list(final or {}) + [k for k in traces if k not in (final or {})]
    if traces:
        ax = axes[0]
        for key, values in traces.items():
            values = finite(values)
            ax.plot(np.arange(values.size), values, label=run_label(key), markerfacecolor="none",
                    **run_style(key, order))
        _truth_and_floor(ax, true_value, floor, horizontal=True)
        ax.set_xlabel("physical training epoch (0: initial guess)")
        ax.set_ylabel(name)
        integer_ticks(ax.xaxis)
        ax.grid(True, alpha=0.25)
        ax.legend(fontsize=8)
        ax.set_title(f"{name} over training", fontsize=10)
    ax = axes[-1]
    rows = [(key, value, (intervals or {}).get(key)) for key, value in (final or {}).items()]
    lo, hi = _value_range(true_value, rows, floor)
    # an initial guess far off would squeeze what matters into a point: then the title names it instead
    off_scale = initial is not None and not lo - 2 * (hi - lo) <= initial <= hi + 2 * (hi - lo)
    if initial is not None and not off_scale:
        rows.insert(0, ("initial guess", initial, None))
        lo, hi = min(lo, initial), max(hi, initial)
    for y, (key, value, interval) in enumerate(rows):
        style = {"color": "0.45", "marker": "o"} if key == "initial guess" else \
            {k: v for k, v in run_style(key, order).items() if k in ("color", "marker")}
        if interval is not None:
            ax.errorbar([value], [y], xerr=[[value - interval[0]], [interval[1] - value]], capsize=4, linewidth=1.5,
                        markersize=7, **style)
        else:
            ax.plot([value], [y], linestyle="none", markersize=7, **style)
    _truth_and_floor(ax, true_value, floor, horizontal=False)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * abs(true_value) or 1e-12
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks(range(len(rows)), [key if key == "initial guess" else run_label(key) for key, _, _ in rows])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.invert_yaxis()
    ax.set_xlabel(name)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.grid(True, axis="x", alpha=0.25)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"learned {name}" + (" (bars: 95 % interval)" if intervals else "")
                 + (f"\ninitial guess {initial:.3g}: off this scale" if off_scale else ""),
                 fontsize=10)
    return save(fig, path)


def _value_range(true_value: float, rows, floor: float | None) -> tuple[float, float]:
    """The values that matter on the dot plot: the truth, its floor band, each learned value and interval."""
    values = [true_value] + [v for _, v, _ in rows] + [b for _, _, i in rows if i is not None for b in i]
    if floor:
        values += [true_value * (1 - floor), true_value * (1 + floor)]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return min(values), max(values)


def _truth_and_floor(ax, true_value: float, floor: float | None, horizontal: bool) -> None:
    line, span = (ax.axhline, ax.axhspan) if horizontal else (ax.axvline, ax.axvspan)
    line(true_value, color="black", linestyle="--", linewidth=1.2, label="truth")
    if floor is not None and floor > 0:
        reach = abs(true_value) * floor
        span(true_value - reach, true_value + reach, color="0.8", alpha=0.6, linewidth=0,
             label=f"model floor (±{floor:.2g} relative)")


def plot_parameter_traces(traces: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
                          truth: Mapping[str, Sequence[float]], path: Path, name: str) -> Path:
    """One panel per group of learned numbers (heights, centers, ...): every number's value over training,
    per run (its dash), against its true value (dotted, the number's colour)."""
    fig = new_figure(4.3 * len(traces), 3.6)
    axes = fig.subplots(1, len(traces), squeeze=False)[0]
    for ax, (group, runs) in zip(axes, traces.items()):
        true_values = np.asarray(truth[group], dtype=float).reshape(-1)
        for key, values in runs.items():
            values = np.asarray(values, dtype=float).reshape(len(values), -1)
            dash = run_style(key, list(runs))["linestyle"]  # the run's dash; the number's colour
            for j in range(values.shape[1]):
                ax.plot(np.arange(1, len(values) + 1), values[:, j], linestyle=dash, marker="o", markersize=2,
                        color=SERIES_STYLES[j % len(SERIES_STYLES)][0], label=f"{run_label(key)} [{j}]")
        for j, value in enumerate(true_values):
            ax.axhline(value, color=SERIES_STYLES[j % len(SERIES_STYLES)][0], linestyle=(0, (2, 3)), linewidth=1)
        ax.set_title(f"{name}: {group}", fontsize=10)
        ax.set_xlabel("physical training epoch")
        ax.set_ylabel(group)
        integer_ticks(ax.xaxis)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return save(fig, path)
