"""Figures of fields in space: truth against the models, the models' errors, learned coefficient fields, and
what the models saw. The observed region is outlined on every map, because inside it the models were fitted
and outside it they had to infer.

Arrays are plain numpy, one scalar per grid point, in tensor order (`[y, x]` in 2D, `[x]` in 1D); `extent`
gives the domain in its own units (`[x0, x1]` or `[x0, x1, y0, y1]`) so the axes read in those units. Runs are
keyed as in metrics.json and drawn with `figure_style`'s names and styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import Normalize
from matplotlib.patches import PathPatch
from matplotlib.path import Path as MplPath
from matplotlib.ticker import MaxNLocator

from hyco.evaluation.figure_style import (
    DIVERGING,
    SEQUENTIAL,
    TRUTH_STYLE,
    PanelGrid,
    integer_ticks,
    new_figure,
    run_label,
    run_style,
    save,
)

OBSERVED_SHADE = {"color": "0.85", "zorder": 0}
_ERROR_FORMAT = "%.2g"


def snapshot_steps(steps: int, count: int) -> list[int]:
    """`count` evenly spaced steps of a rollout of `steps` steps, ending at the last one (frame 0 is added
    when the spacing reaches it)."""
    count = max(1, min(count, steps))
    stride = -(-steps // count)  # ceil
    return list(range(steps % stride, steps + 1, stride))


def grid_extent(extent: Sequence[float] | None, shape: Sequence[int]) -> list[float]:
    if extent is not None:
        return [float(e) for e in extent]
    return [0.0, float(shape[-1]), 0.0, float(shape[0])] if len(shape) == 2 else [0.0, float(shape[0])]


def truth_scale(truth: np.ndarray) -> tuple[str, Normalize]:
    """The truth's range: sequential for a field that never goes below 0, symmetric about 0 otherwise (a
    diverged model's values are clipped, never allowed to stretch the scale)."""
    values = truth[np.isfinite(truth)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    if lo >= 0:
        return SEQUENTIAL, Normalize(lo, hi if hi > lo else lo + 1.0)
    top = max(abs(lo), abs(hi))
    return DIVERGING, Normalize(-top, top)


def _symmetric(arrays: Sequence[np.ndarray]) -> Normalize:
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = np.abs(values[np.isfinite(values)])
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    return Normalize(-top, top)


def outline_region(ax, observed: np.ndarray | None, extent: Sequence[float], vertical: bool = False) -> bool:
    """Draw the edge of the observed region; False (nothing drawn) when all or nothing is observed.

    2D `[y, x]`: the cell edges between observed and hidden cells. 1D `[x]`: lines at the region's ends,
    horizontal on a space-time map (`vertical=True`: x runs up the panel), vertical on a profile."""
    if observed is None:
        return False
    mask = np.asarray(observed, dtype=bool)
    if mask.all() or not mask.any():
        return False
    if mask.ndim == 1:
        x0, x1 = extent[2:4] if vertical else extent[:2]
        edges = np.flatnonzero(np.diff(np.pad(mask, 1).astype(np.int8))) * (x1 - x0) / mask.size + x0
        for edge in edges:
            line = ax.axhline if vertical else ax.axvline
            line(edge, color="black", linewidth=1.3, linestyle="--",
                 path_effects=[patheffects.withStroke(linewidth=3.0, foreground="white")])
        return True
    ny, nx = mask.shape
    x0, x1, y0, y1 = extent
    dx, dy = (x1 - x0) / nx, (y1 - y0) / ny
    padded = np.pad(mask, 1)
    rows, cols = np.nonzero(padded[1:-1, 1:] != padded[1:-1, :-1])  # a vertical edge left of cell (row, col)
    starts = [np.stack([cols * dx, rows * dy], -1)]
    ends = [np.stack([cols * dx, (rows + 1) * dy], -1)]
    rows, cols = np.nonzero(padded[1:, 1:-1] != padded[:-1, 1:-1])  # a horizontal edge below cell (row, col)
    starts.append(np.stack([cols * dx, rows * dy], -1))
    ends.append(np.stack([(cols + 1) * dx, rows * dy], -1))
    vertices = np.stack([np.concatenate(starts), np.concatenate(ends)], 1).reshape(-1, 2) + [x0, y0]
    codes = np.tile([MplPath.MOVETO, MplPath.LINETO], len(vertices) // 2)
    # scattered points (a perimeter far longer than one box's around as many cells) get a thin line, so the
    # field stays readable under them
    scattered = len(vertices) // 2 > 12 * np.sqrt(mask.sum())
    width = 0.6 if scattered else 1.3
    # one path of many pieces: drawn (with its white halo) in one call, not one call per cell edge
    ax.add_patch(PathPatch(MplPath(vertices, codes), fill=False, edgecolor="black", linewidth=width,
                           path_effects=[patheffects.withStroke(linewidth=2.3 * width, foreground="white")]))
    return True


def shade_region(ax, observed: np.ndarray | None, extent: Sequence[float]) -> bool:
    """Shade the observed intervals of a 1D profile (x along the horizontal axis)."""
    if observed is None:
        return False
    mask = np.asarray(observed, dtype=bool)
    if mask.all() or not mask.any():
        return False
    x0, x1 = extent[:2]
    dx = (x1 - x0) / mask.size
    changes = np.flatnonzero(np.diff(np.pad(mask, 1).astype(np.int8)))
    for start, stop in zip(changes[::2], changes[1::2]):
        ax.axvspan(x0 + start * dx, x0 + stop * dx, **OBSERVED_SHADE)
    return True


def _image(ax, values, extent, cmap, norm):
    return ax.imshow(values, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest",
                     aspect="equal")


def _outer_labels(axes: np.ndarray, corner: tuple[int, int] | None = None) -> None:
    """Ticks and the x / y labels on one panel only, the bottom-left one (or `corner`): every panel shows the
    same domain, and ticks are the dearest part of a map to draw."""
    rows, cols = axes.shape
    corner = corner or (rows - 1, 0)
    for ax in axes.flat:
        if ax.axison:
            ax.set_xticks([])
            ax.set_yticks([])
    ax = axes[corner]
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.set_xlabel("x")
    ax.set_ylabel(((ax.get_ylabel() + "\n") if ax.get_ylabel() else "") + "y", fontsize=9)


# ------------------------------------------------------------------------------------------------ rollouts
def plot_snapshots(truth: np.ndarray, predictions: Mapping[str, np.ndarray], times: Sequence[int], path: Path,
                   dt: float = 1.0, extent: Sequence[float] | None = None, observed: np.ndarray | None = None,
                   quantity: str = "value", title: str = "") -> Path:
    """Truth and every model at the frames `times` (t = frame · dt) on the truth's colour scale (2D
    `[T, y, x]`: one row per model; 1D `[T, x]`: one panel per time with the models as lines)."""
    steps = list(times)
    extent = grid_extent(extent, truth.shape[1:])
    rows = {"truth": truth, **predictions}
    if truth.ndim == 2:
        return _profiles_at(truth, predictions, steps, path, dt, extent, observed, quantity, title)
    cmap, norm = truth_scale(truth)
    grid = PanelGrid(len(rows), len(steps), _aspect(extent), top=0.75 if title else 0.4)
    for r, (key, data) in enumerate(rows.items()):
        for c, step in enumerate(steps):
            ax = grid.axes[r, c]
            image = _image(ax, data[min(step, data.shape[0] - 1)], extent, cmap, norm)
            outline_region(ax, observed, extent)
            if r == 0:
                ax.set_title(f"t = {step * dt:.3g}", fontsize=10)
            if c == 0:
                ax.set_ylabel("truth" if key == "truth" else run_label(key), fontsize=9)
    _outer_labels(grid.axes)
    grid.fig.colorbar(image, cax=grid.colorbar_axes(), extend="both", label=quantity)
    if title:
        grid.fig.suptitle(title, fontsize=11)
    return save(grid.fig, path)


def _aspect(extent: Sequence[float]) -> float:
    return (extent[3] - extent[2]) / (extent[1] - extent[0])


def _profiles_at(truth, predictions, steps, path, dt, extent, observed, quantity, title) -> Path:
    fig = new_figure(2.6 * len(steps) + 0.6, 3.1)
    axes = np.asarray(fig.subplots(1, len(steps), squeeze=False, sharey=True))[0]
    x = extent[0] + (np.arange(truth.shape[1]) + 0.5) * (extent[1] - extent[0]) / truth.shape[1]
    finite = truth[np.isfinite(truth)]
    pad = 0.1 * (float(finite.max() - finite.min()) or 1.0)
    for c, (ax, step) in enumerate(zip(axes, steps)):
        shade_region(ax, observed, extent)
        ax.plot(x, truth[step], label="truth", **TRUTH_STYLE)
        for key, data in predictions.items():
            ax.plot(x, data[min(step, data.shape[0] - 1)], label=run_label(key), markevery=max(1, x.size // 8),
                    markerfacecolor="none", **run_style(key, list(predictions)))
        ax.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
        ax.set_title(f"t = {step * dt:.3g}", fontsize=10)
        ax.set_xlabel("x")
        if c == 0:
            ax.set_ylabel(quantity)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title + (" (grey: observed region)" if observed is not None and not np.all(observed) else ""),
                     fontsize=11)
    return save(fig, path)


def plot_error_maps(truth: np.ndarray, predictions: Mapping[str, np.ndarray], times: Sequence[int], path: Path,
                    dt: float = 1.0, extent: Sequence[float] | None = None, observed: np.ndarray | None = None,
                    quantity: str = "value", title: str = "") -> Path:
    """Prediction − truth of every model, one row per model on its own symmetric colour scale (a model
    with small errors still shows where they are). 2D `[T, y, x]`: at the frames `times`; 1D `[T, x]`: over
    the whole rollout as a space-time map."""
    steps = list(times)
    extent = grid_extent(extent, truth.shape[1:])
    errors = {key: data[: truth.shape[0]] - truth[: data.shape[0]] for key, data in predictions.items()}
    if truth.ndim == 2:
        return _space_time_errors(errors, path, dt, extent, observed, quantity, title)
    grid = PanelGrid(len(errors), len(steps), _aspect(extent), top=0.75 if title else 0.4, right=1.1)
    for r, (key, error) in enumerate(errors.items()):
        shown = [error[min(step, error.shape[0] - 1)] for step in steps]
        norm = _symmetric(shown)
        for c, (step, values) in enumerate(zip(steps, shown)):
            ax = grid.axes[r, c]
            image = _image(ax, values, extent, DIVERGING, norm)
            outline_region(ax, observed, extent)
            if r == 0:
                ax.set_title(f"t = {step * dt:.3g}", fontsize=10)
            if c == 0:
                ax.set_ylabel(run_label(key), fontsize=9)
        bar = grid.fig.colorbar(image, cax=grid.colorbar_axes(r, r), format=_ERROR_FORMAT)
        bar.ax.tick_params(labelsize=8)
    _outer_labels(grid.axes)
    if title:
        grid.fig.suptitle(title, fontsize=11)
    return save(grid.fig, path)


def _space_time_errors(errors, path, dt, extent, observed, quantity, title) -> Path:
    fig = new_figure(6.4, 1.9 * len(errors) + 0.7)
    axes = np.asarray(fig.subplots(len(errors), 1, squeeze=False, sharex=True))[:, 0]
    for ax, (key, error) in zip(axes, errors.items()):
        frames = error.shape[0]
        box = [-0.5 * dt, (frames - 0.5) * dt, extent[0], extent[1]]  # frame k's column centred on t = k dt
        image = ax.imshow(error.T, origin="lower", aspect="auto", extent=box, cmap=DIVERGING, norm=_symmetric([error]),
                          interpolation="nearest")
        outline_region(ax, observed, box, vertical=True)
        ax.set_ylabel(f"{run_label(key)}\nx", fontsize=9)
        fig.colorbar(image, ax=ax, label="error", format="%.2g", pad=0.01)
    axes[-1].set_xlabel("time t")
    if title:
        fig.suptitle(title, fontsize=11)
    return save(fig, path)


# ------------------------------------------------------------------------------------------------ coefficients
def plot_coefficient_maps(true: np.ndarray, initial: np.ndarray | None, learned: Mapping[str, np.ndarray],
                          path: Path, name: str, extent: Sequence[float] | None = None,
                          observed: np.ndarray | None = None, errors: Mapping[str, float | None] | None = None,
                          floor: float | None = None) -> Path:
    """A coefficient field against the truth: truth | initial guess | each learned field on one colour
    scale, and below them each one's difference to the truth on one symmetric scale. 1D: profiles."""
    extent = grid_extent(extent, true.shape)
    panels = ({"initial guess": initial} if initial is not None else {}) | dict(learned)
    if true.ndim == 1:
        return _coefficient_profiles(true, panels, path, name, extent, observed, errors or {}, floor)
    columns = 1 + len(panels)
    grid = PanelGrid(2, columns, _aspect(extent), panel=1.6, top=0.95, hgap=0.55, wgap=0.15, right=1.25)
    axes = grid.axes
    norm = Normalize(*_range([true, *panels.values()]))
    differences = {key: values - true for key, values in panels.items()}
    difference_norm = _symmetric(list(differences.values()))
    image = _image(axes[0, 0], true, extent, SEQUENTIAL, norm)
    axes[0, 0].set_title("truth", fontsize=10)
    drawn = outline_region(axes[0, 0], observed, extent)
    axes[1, 0].set_axis_off()
    note = "black outline:\nobserved region" if drawn else "observed\neverywhere" if observed is not None else ""
    axes[1, 0].text(0.5, 0.5, note, ha="center", va="center", fontsize=9, transform=axes[1, 0].transAxes)
    for c, (key, values) in enumerate(panels.items(), start=1):
        label = key if key == "initial guess" else run_label(key)
        error = (errors or {}).get(key)
        _image(axes[0, c], values, extent, SEQUENTIAL, norm)
        axes[0, c].set_title(label + (f"\nrel. error {error:.3g}" if error is not None else ""), fontsize=9)
        difference = _image(axes[1, c], differences[key], extent, DIVERGING, difference_norm)
        axes[1, c].set_title(f"{label} − truth", fontsize=9)
        for row in (0, 1):
            outline_region(axes[row, c], observed, extent)
    _outer_labels(axes, corner=(0, 0))  # the panel below the truth holds the note, not a map
    grid.fig.colorbar(image, cax=grid.colorbar_axes(0, 0), label=name, format=_ERROR_FORMAT)
    grid.fig.colorbar(difference, cax=grid.colorbar_axes(1, 1), label="difference", format=_ERROR_FORMAT)
    grid.fig.suptitle(name + (f" (model floor: rel. error {floor:.3g})" if floor is not None else ""), fontsize=11)
    return save(grid.fig, path)


def _range(arrays: Sequence[np.ndarray]) -> tuple[float, float]:
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    return (lo, hi) if hi > lo else (lo - 0.5 * abs(lo or 1.0), hi + 0.5 * abs(hi or 1.0))


def _coefficient_profiles(true, panels, path, name, extent, observed, errors, floor) -> Path:
    fig = new_figure(6.6, 5.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    x = extent[0] + (np.arange(true.size) + 0.5) * (extent[1] - extent[0]) / true.size
    for ax in (top, bottom):
        shade_region(ax, observed, extent)
    top.plot(x, true, label="truth", **TRUTH_STYLE)
    order = list(panels)
    for key, values in panels.items():
        label = key if key == "initial guess" else run_label(key)
        error = errors.get(key)
        style = {"color": "0.45", "linestyle": ":", "marker": None} if key == "initial guess" else run_style(key, order)
        legend = label + (f" (rel. error {error:.3g})" if error is not None else "")
        top.plot(x, values, label=legend, markevery=max(1, x.size // 8), markerfacecolor="none", **style)
        bottom.plot(x, values - true, markevery=max(1, x.size // 8), markerfacecolor="none", **style)
    bottom.axhline(0.0, color="black", linewidth=0.8)
    top.set_ylabel(name)
    bottom.set_ylabel(f"{name} − truth")
    bottom.set_xlabel("x")
    shaded = observed is not None and not np.all(observed) and np.any(observed)
    top.set_title(name + (f" (model floor: rel. error {floor:.3g})" if floor is not None else "")
                  + (" — grey: observed region" if shaded else ""), fontsize=10)
    top.legend(fontsize=8)
    return save(fig, path)


# ------------------------------------------------------------------------------------------------ observation
def plot_observation(space: np.ndarray, frames: np.ndarray, path: Path, field_names: Sequence[str] = (),
                     extent: Sequence[float] | None = None, dt: float | None = None,
                     tracks: np.ndarray | None = None) -> Path:
    """What the models saw: the observed grid points (one panel per observed channel group) and frames.

    `space` `[1|C, *space]` (1 = observed in some frame), `frames` `[T]` (1 = observed frame); `tracks`
    `[T, K, d]` the positions of point sensors (fractions of the domain, x first), drawn over a 2D panel."""
    panels = space.shape[0]
    fig = new_figure(2.6 * panels + 3.6, 2.9)
    axes = fig.subplots(1, panels + 1, squeeze=False, width_ratios=[1] * panels + [1.5])[0]
    for c in range(panels):
        ax, values = axes[c], space[c]
        box = grid_extent(extent, values.shape)
        if values.ndim == 1:
            ax.imshow(values[None], origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
                      extent=[box[0], box[1], 0, 1], interpolation="nearest")
            ax.set_yticks([])
        else:
            ax.imshow(values, origin="lower", cmap="Greys", vmin=0, vmax=2.5 if tracks is not None else 1,
                      extent=box, interpolation="nearest")
            ax.set_ylabel("y")
        ax.set_xlabel("x")
        name = field_names[c] if c < len(field_names) else "all fields"
        ax.set_title(f"{name}: {values.mean():.0%} of the grid", fontsize=9)
        if tracks is not None and values.ndim == 2:
            points = np.asarray(tracks, dtype=float)
            xs = box[0] + points[..., 0] * (box[1] - box[0])
            ys = box[2] + points[..., 1] * (box[3] - box[2])
            ax.plot(xs, ys, color="tab:orange", linewidth=0.8)
            ax.plot(xs[0], ys[0], "o", color="tab:red", markersize=2.5)
            ax.set_title(f"{points.shape[1]} sensors" + (" and their tracks" if len(points) > 1 and
                                                         not np.allclose(points[0], points[-1]) else ""), fontsize=9)
    ax = axes[panels]
    ax.imshow(np.where(np.asarray(frames)[None] > 0, 0.8, 0.15), aspect="auto", cmap="Greys", vmin=0, vmax=1,
              extent=[-0.5, len(frames) - 0.5, 0, 1], interpolation="nearest")  # one image however many frames
    if len(frames) <= 200:
        ax.vlines(np.arange(len(frames) - 1) + 0.5, 0, 1, colors="white", linewidth=1)  # one collection
    ax.set_yticks([])
    ax.set_xlabel("frame" + (f" (t = frame × {dt:.3g})" if dt else ""))
    integer_ticks(ax.xaxis)
    ax.set_title(f"observed frames: {int(np.sum(frames))} of {len(frames)}", fontsize=9)
    fig.suptitle("observed (dark) and hidden (light) values", fontsize=10)
    return save(fig, path)
