"""Figures of the comparison: snapshots, error curves, coefficients, training curves, an animation.

Every function takes plain arrays (already reduced to one scalar quantity per grid point where a field
is shown) and writes one file; none of them knows about trainers or run directories.

The figures are `matplotlib.figure.Figure` objects, not pyplot's: writing a file needs no GUI backend, so
this module chooses none and leaves pyplot's state alone (a notebook's `plt.show()` keeps its inline
backend, a script on a desktop keeps its window, a headless job writes the files all the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.ticker
import numpy as np
from matplotlib import animation
from matplotlib.figure import Figure

from hyco.utils.io import atomic_path


def _subplots(*grid: int, figsize: tuple[float, float], **kwargs):
    """A figure outside pyplot (nothing global is touched, no window opens) and its axes."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*grid, **kwargs)


def _save(fig, path: Path, **kwargs) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=kwargs.pop("dpi", 100), bbox_inches="tight", **kwargs)
    return path


def _color_range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return -1.0, 1.0
    lo = min(float(a.min()) for a in finite)
    hi = max(float(a.max()) for a in finite)
    return (lo, hi) if hi > lo else (lo - 1.0, hi + 1.0)


def _cmap(arrays: Sequence[np.ndarray]) -> str:
    """A sequential map for non-negative quantities (magnitudes), a diverging one for signed ones."""
    lo, _ = _color_range(arrays)
    return "viridis" if lo >= 0 else "RdBu_r"


def plot_snapshots(truth: np.ndarray, predictions: Mapping[str, np.ndarray], times: Sequence[int], path: Path,
                   title: str = "", dt: float = 1.0, extent: Sequence[float] | None = None) -> Path:
    """Truth and every model side by side on ONE colour scale.

    2D data `[T, y, x]`: one row per model, one column per chosen time. 1D data `[T, x]`: one
    space-time map per model.
    """
    rows = {"truth": truth, **predictions}
    vmin, vmax = _color_range(list(rows.values()))
    cmap = _cmap(list(rows.values()))
    if truth.ndim == 2:
        fig, axes = _subplots(1, len(rows), figsize=(3.2 * len(rows), 3.0), squeeze=False)
        for ax, (label, data) in zip(axes[0], rows.items()):
            image = ax.imshow(data.T, origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap=cmap,
                              extent=[0, data.shape[0] * dt, 0, extent[0] if extent else data.shape[1]])
            ax.set_title(label)
            ax.set_xlabel("t")
        axes[0][0].set_ylabel("x")
    else:
        fig, axes = _subplots(len(rows), len(times), figsize=(2.4 * len(times), 2.3 * len(rows)),
                                 squeeze=False)
        for r, (label, data) in enumerate(rows.items()):
            for c, t in enumerate(times):
                ax = axes[r][c]
                image = ax.imshow(data[min(t, data.shape[0] - 1)], origin="lower", vmin=vmin, vmax=vmax,
                                  cmap=cmap)
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(f"t = {t * dt:.3g}")
                if c == 0:
                    ax.set_ylabel(label)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_error_curves(curves: Mapping[str, Sequence[float]], path: Path, ylabel: str = "relative L2 error",
                      dt: float = 1.0, log: bool = True) -> Path:
    """Per-step error of every model on one plot."""
    fig, ax = _subplots(figsize=(6, 4))
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1) * dt, values, label=label, marker="o", markersize=2)
    ax.set_xlabel("rollout time")
    ax.set_ylabel(ylabel)
    if log and all(np.all(np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] > 0)
                   for v in curves.values()):
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_field_coefficients(true: np.ndarray, learned: Mapping[str, np.ndarray], path: Path, name: str) -> Path:
    """A field coefficient: truth and each learned version, 2D images or 1D curves."""
    if true.ndim == 1:
        fig, ax = _subplots(figsize=(6, 3.5))
        ax.plot(true, "k-", label="true", linewidth=2)
        for label, values in learned.items():
            ax.plot(values, "--", label=label)
        ax.set_xlabel("x")
        ax.set_ylabel(name)
        ax.legend()
        return _save(fig, path)
    panels = {"true": true, **learned}
    vmin, vmax = _color_range(list(panels.values()))
    fig, axes = _subplots(1, len(panels), figsize=(3.2 * len(panels), 3.0), squeeze=False)
    for ax, (label, values) in zip(axes[0], panels.items()):
        image = ax.imshow(values, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(f"{name}: {label}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(fig, path)


def plot_scalar_traces(traces: Mapping[str, Sequence[float]], true_value: float, path: Path, name: str) -> Path:
    """A scalar coefficient's value over training, per run, against the truth."""
    fig, ax = _subplots(figsize=(6, 3.5))
    for label, values in traces.items():
        ax.plot(np.arange(len(values)), values, marker="o", markersize=3, label=label)
    ax.axhline(true_value, color="k", linestyle="--", label="true")
    ax.set_xlabel("physical training epoch")
    ax.set_ylabel(name)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_training_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """One panel per run; each panel shows that run's loss curves (log scale)."""
    runs = [(label, c) for label, c in curves.items() if any(len(v) for v in c.values())]
    fig, axes = _subplots(1, max(len(runs), 1), figsize=(4.5 * max(len(runs), 1), 3.5), squeeze=False)
    for ax, (label, run_curves) in zip(axes[0], runs):
        for metric, values in run_curves.items():
            values = np.asarray(values, dtype=float)
            if values.size:
                ax.plot(np.arange(1, values.size + 1), values, label=metric)
        ax.set_title(label)
        ax.set_xlabel("epoch")
        if all(np.all(np.asarray(v, dtype=float) > 0) for v in run_curves.values() if len(v)):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path)


def animate(truth: np.ndarray, predictions: Mapping[str, np.ndarray], path: Path, fps: int = 6,
            dt: float = 1.0) -> Path:
    """Animated GIF of truth vs models (2D: images per frame; 1D: curves per frame)."""
    rows = {"truth": truth, **predictions}
    vmin, vmax = _color_range(list(rows.values()))
    frames = truth.shape[0]
    fig, axes = _subplots(1, len(rows), figsize=(2.8 * len(rows), 2.8), squeeze=False)
    artists = []
    for ax, (label, data) in zip(axes[0], rows.items()):
        ax.set_title(label)
        if truth.ndim == 3:
            artists.append(ax.imshow(data[0], origin="lower", vmin=vmin, vmax=vmax, cmap=_cmap(list(rows.values()))))
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            (line,) = ax.plot(data[0])
            ax.set_ylim(vmin, vmax)
            artists.append(line)
    time_text = fig.suptitle("t = 0")

    def update(frame: int):
        for artist, data in zip(artists, rows.values()):
            current = data[min(frame, data.shape[0] - 1)]
            if truth.ndim == 3:
                artist.set_data(current)
            else:
                artist.set_ydata(current)
        time_text.set_text(f"t = {frame * dt:.3g}")
        return [*artists, time_text]

    movie = animation.FuncAnimation(fig, update, frames=frames, blit=False)
    path = Path(path)
    with atomic_path(path) as tmp:
        movie.save(tmp, writer=animation.PillowWriter(fps=fps), dpi=70)
    return path


def plot_observation(space: np.ndarray, frames: np.ndarray, path: Path, field_names: Sequence[str] = ()) -> Path:
    """What the models saw: the observed grid points (one panel per observed channel group) and frames.

    `space` `[1|C, *space]` (1 = observed in some frame), `frames` `[T]` (1 = observed frame)."""
    panels = space.shape[0]
    fig, axes = _subplots(1, panels + 1, figsize=(2.8 * panels + 4.0, 2.6), squeeze=False,
                             gridspec_kw={"width_ratios": [1] * panels + [1.6]})
    for c in range(panels):
        ax = axes[0][c]
        values = space[c]
        if values.ndim == 1:
            ax.imshow(values[None], origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1)
            ax.set_yticks([])
        else:
            ax.imshow(values, origin="lower", cmap="Greys", vmin=0, vmax=1)
            ax.set_yticks([])
        ax.set_xticks([])
        name = field_names[c] if c < len(field_names) else "all fields"
        ax.set_title(f"{name}: {values.mean():.0%} of the grid", fontsize=9)
    ax = axes[0][panels]
    t = np.arange(len(frames))
    ax.bar(t, frames.astype(float), width=0.8, color=["#444" if f else "#ddd" for f in frames])
    ax.set_yticks([])
    ax.set_xlabel("frame")
    ax.set_title(f"observed frames: {int(frames.sum())} of {len(frames)}", fontsize=9)
    fig.suptitle("observed (dark) and hidden (light) values", fontsize=10, y=1.06)
    return _save(fig, path)


def plot_cycles(series: Mapping[str, Sequence[float | None]], path: Path, best_cycle: int | None = None) -> Path:
    """HYCO over its cycles: one panel per group of series keyed `group: label` (errors on a log scale,
    trust weights on a linear one); the evaluated (best) cycle is marked."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    for key, values in series.items():
        group, _, label = key.partition(": ")
        groups.setdefault(group, {})[label or group] = np.asarray([np.nan if v is None else v for v in values],
                                                                  dtype=float)
    fig, axes = _subplots(1, len(groups), figsize=(4.3 * len(groups), 3.4), squeeze=False)
    for ax, (group, curves) in zip(axes[0], groups.items()):
        for label, values in curves.items():
            ax.plot(np.arange(1, values.size + 1), values, marker="o", markersize=3, label=label)
        positive = all(np.all(v[np.isfinite(v)] > 0) for v in curves.values())
        if positive and "weight" not in group:
            ax.set_yscale("log")
        if best_cycle is not None:
            ax.axvline(best_cycle, color="k", linestyle=":", linewidth=1, label="evaluated cycle")
        ax.set_title(group, fontsize=10)
        ax.set_xlabel("cycle")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def plot_parameter_traces(traces: Mapping[str, Mapping[str, Sequence[Sequence[float]]]],
                          truth: Mapping[str, Sequence[float]], path: Path, name: str) -> Path:
    """One panel per group of learned numbers (heights, centers, ...): every number's value over training,
    per run (line style), against its true value (dashed, same colour)."""
    fig, axes = _subplots(1, len(traces), figsize=(4.3 * len(traces), 3.4), squeeze=False)
    styles = ["-", "--", ":", "-."]
    for ax, (group, runs) in zip(axes[0], traces.items()):
        true_values = np.asarray(truth[group], dtype=float).reshape(-1)
        colours = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
        for r, (label, values) in enumerate(runs.items()):
            values = np.asarray(values, dtype=float).reshape(len(values), -1)
            for j in range(values.shape[1]):
                ax.plot(np.arange(1, len(values) + 1), values[:, j], styles[r % len(styles)], marker="o",
                        markersize=2, color=colours[j % len(colours)], label=f"{label} [{j}]")
        for j, value in enumerate(true_values):
            ax.axhline(value, color=colours[j % len(colours)], linestyle=(0, (2, 3)), linewidth=1)
        ax.set_title(f"{name}: {group}", fontsize=10)
        ax.set_xlabel("physical epoch / HYCO cycle")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    return _save(fig, path)
