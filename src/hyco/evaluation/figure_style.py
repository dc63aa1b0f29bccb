"""What every figure of the report shares: run names and styles, tick formats, and the one way a figure is saved.

Figures are `matplotlib.figure.Figure` objects drawn on an Agg canvas, never pyplot: they do not depend on the
interactive backend (a notebook keeps its own) and nothing has to be closed. Saving draws once, checks that
no title runs into another text or panel, and records the result in the PNG (text chunk `TEXT_OVERLAPS_KEY`):
the report shows it and the tests read it back.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullLocator, ScalarFormatter
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hyco.utils.io import atomic_path

log = logging.getLogger(__name__)

RUN_LABELS = {
    "physical": "solver alone",
    "synthetic": "network alone",
    "synthetic_matched": "network alone, compute-matched",
    "hyco_physical": "HYCO solver",
    "hyco_synthetic": "HYCO network",
}
# colour, line style and marker per run: no two runs share any of the three, and `run_style` draws earlier runs
# wider, so a curve that lies on another (a HYCO model on its single-model twin) shows as a coloured edge
_STYLES = {
    "physical": ("#1f77b4", "-", "o"),
    "hyco_physical": ("#ff7f0e", (0, (5, 2)), "s"),
    "synthetic": ("#2ca02c", "-.", "^"),
    "hyco_synthetic": ("#d62728", (0, (2, 1.5)), "D"),
    "synthetic_matched": ("#9467bd", (0, (6, 1.5, 1, 1.5, 1, 1.5)), "v"),
}
_SPARE = [("#8c564b", (0, (3, 3)), "P"), ("#e377c2", (0, (8, 2, 2, 2)), "X"), ("#7f7f7f", (0, (1, 1)), "*"),
          ("#bcbd22", (0, (4, 1, 1, 1)), "h")]
_ORDER = ("physical", "hyco_physical", "synthetic", "hyco_synthetic", "synthetic_matched")
TRUTH_STYLE = {"color": "black", "linewidth": 2.2, "linestyle": "-"}
SEQUENTIAL, DIVERGING = "viridis", "RdBu_r"
TEXT_OVERLAPS_KEY = "hyco-text-overlaps"
DPI = 100


def run_label(key: str) -> str:
    """The reader's name of a run (metrics.json's key); an unknown key is shown as it is."""
    return RUN_LABELS.get(key, key)


def run_style(key: str, order: Sequence[str] = ()) -> dict:
    """Line keywords of a run: its fixed colour, dash and marker (unknown runs take spare ones by their
    position in `order`), and a line width and marker size that shrink with its rank among the runs, so the
    earlier of two coincident curves frames the later one."""
    extra = [k for k in order if k not in _STYLES]
    if key in _STYLES:
        color, dash, marker = _STYLES[key]
        rank = _ORDER.index(key)
    else:
        index = extra.index(key) if key in extra else 0
        color, dash, marker = _SPARE[index % len(_SPARE)]
        rank = len(_ORDER) + index
    return {"color": color, "linestyle": dash, "marker": marker, "linewidth": max(1.0, 3.4 - 0.5 * rank),
            "markersize": max(3.5, 8.0 - 1.0 * rank)}


def new_figure(width: float, height: float, layout: str | None = "constrained", dpi: int = DPI) -> Figure:
    """A figure with constrained layout (titles, labels and colour bars never cut off or overlapping); grids of
    many maps pass `layout=None` and place their panels with `panel_grid`, which costs a fraction of it."""
    fig = Figure(figsize=(width, height), dpi=dpi, layout=layout)
    FigureCanvasAgg(fig)
    return fig


class PanelGrid:
    """Equal panels in rows and columns placed by hand (sizes in inches), with room for a colour bar on the
    right of any run of rows: `rows x cols` maps cost one axes each and no layout solver."""

    def __init__(self, rows: int, cols: int, aspect: float = 1.0, panel: float = 1.5, left: float = 0.85,
                 right: float = 1.0, top: float = 0.55, bottom: float = 0.5, wgap: float = 0.12, hgap: float = 0.32):
        aspect = min(max(aspect, 0.25), 4.0)
        self.rows, self.cols = rows, cols
        self.w, self.h = (panel, panel * aspect) if aspect <= 1 else (panel / aspect, panel)
        self.left, self.bottom, self.wgap, self.hgap = left, bottom, wgap, hgap
        self.width = left + cols * self.w + (cols - 1) * wgap + right
        self.height = top + rows * self.h + (rows - 1) * hgap + bottom
        self.fig = new_figure(self.width, self.height, layout=None)
        self.axes = np.empty((rows, cols), dtype=object)
        for r in range(rows):
            for c in range(cols):
                self.axes[r, c] = self.fig.add_axes(self._rect(self.left + c * (self.w + wgap),
                                                               self._y(r), self.w, self.h))

    def _y(self, row: int) -> float:
        return self.bottom + (self.rows - 1 - row) * (self.h + self.hgap)

    def _rect(self, x: float, y: float, w: float, h: float) -> list[float]:
        return [x / self.width, y / self.height, w / self.width, h / self.height]

    def colorbar_axes(self, first_row: int = 0, last_row: int | None = None, fraction: float = 0.9):
        """An axes for a colour bar right of the panels of rows `first_row..last_row`."""
        last_row = self.rows - 1 if last_row is None else last_row
        y0, y1 = self._y(last_row), self._y(first_row) + self.h
        span = (y1 - y0) * fraction
        x = self.left + self.cols * self.w + (self.cols - 1) * self.wgap + 0.12
        return self.fig.add_axes(self._rect(x, y0 + (y1 - y0 - span) / 2, 0.13, span))


def save(fig: Figure, path: Path) -> Path:
    """Draw once, check the text layout, write the PNG atomically with the check's result inside."""
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    overlaps = text_overlaps(fig, canvas.get_renderer())
    if overlaps:
        log.warning("%s: text runs into other elements: %s", Path(path).name, "; ".join(overlaps))
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    info = PngInfo()
    info.add_text(TEXT_OVERLAPS_KEY, json.dumps(overlaps))
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=info, compress_level=1)  # fast; figures are small
    return path


def recorded_overlaps(path: Path) -> list[str] | None:
    """The text-overlap check a figure was saved with (None: a file not saved by `save`)."""
    with Image.open(path) as image:
        text = getattr(image, "text", {}).get(TEXT_OVERLAPS_KEY)
    return None if text is None else json.loads(text)


def text_overlaps(fig: Figure, renderer) -> list[str]:
    """Titles (of panels and of the figure) and axis labels that run into another text, another panel or
    out of the figure, as "what / what" lines; empty when the layout is clean."""
    boxes = []  # (description, bbox, owner axes or None)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        named = [("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)] if ax.axison else []
        for label, text in named + [("text", text) for text in ax.texts]:
            if text.get_visible() and text.get_text():
                boxes.append((f"{label} '{_short(text.get_text())}'", text.get_window_extent(renderer), ax))
    for text in fig.texts:
        if text is not fig._suptitle and text.get_visible() and text.get_text():
            boxes.append((f"figure text '{_short(text.get_text())}'", text.get_window_extent(renderer), None))
    if fig._suptitle is not None and fig._suptitle.get_text():
        boxes.append((f"figure title '{_short(fig._suptitle.get_text())}'", fig._suptitle.get_window_extent(renderer),
                      None))
    panels = [(ax, ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible() and ax.axison]
    found = []
    figure_box = fig.bbox
    for i, (name, box, owner) in enumerate(boxes):
        if box.x0 < figure_box.x0 - 1 or box.x1 > figure_box.x1 + 1 or box.y0 < figure_box.y0 - 1 \
                or box.y1 > figure_box.y1 + 1:
            found.append(f"{name} / the figure's edge")
        for other_name, other, _ in boxes[i + 1:]:
            if _intersect(box, other):
                found.append(f"{name} / {other_name}")
        for ax, panel in panels:
            if ax is not owner and _intersect(box, panel):
                found.append(f"{name} / panel '{_short(ax.get_title()) or ax.get_label()}'")
    return found


def _intersect(a, b, margin: float = 0.5) -> bool:
    return a.x0 < b.x1 - margin and b.x0 < a.x1 - margin and a.y0 < b.y1 - margin and b.y0 < a.y1 - margin


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------------------------------------- numbers
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, _position=None) -> str:
    """A log-axis tick as plain text (2×10⁻³): mathtext would cost a parse per label."""
    if value <= 0 or not math.isfinite(value):
        return ""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = value / 10**exponent
    power = f"10{str(exponent).translate(_SUPERSCRIPT)}"
    if -2 <= exponent <= 2:
        return f"{value:.3g}"
    return power if abs(mantissa - 1) < 1e-6 else f"{mantissa:.2g}×{power}"


def log_axis(axis) -> None:
    """A log scale with plain-text ticks: decades labelled, and 2 and 5 between them when the range is short
    (no unlabelled minor ticks: each tick is an artist to draw)."""
    ax = axis.axes
    ax.set_yscale("log") if axis.axis_name == "y" else ax.set_xscale("log")
    axis.set_major_locator(LogLocator(base=10, numticks=6))
    axis.set_major_formatter(FuncFormatter(power_of_ten))
    lo, hi = ax.get_ylim() if axis.axis_name == "y" else ax.get_xlim()
    if lo > 0 and hi > 0 and math.log10(hi / lo) < 1.5:
        axis.set_minor_locator(LogLocator(base=10, subs=(2.0, 5.0), numticks=12))
        axis.set_minor_formatter(FuncFormatter(power_of_ten))
    else:
        axis.set_minor_locator(NullLocator())


def integer_ticks(axis) -> None:
    """Epochs and cycles are counted: no 1.5 on their axis."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=6, min_n_ticks=1))


def finite(values) -> np.ndarray:
    """Values as floats, None (a diverged value) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def positive(*arrays: np.ndarray) -> bool:
    """Every finite value positive (and at least one): a log scale can show them."""
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    return values.size > 0 and bool(np.all(values > 0))


def scale_for(axis, *arrays: np.ndarray) -> None:
    """Log scale (plain-text ticks) for positive values spanning a decade or more; otherwise linear with
    scientific notation in one corner, so a flat curve's ticks still differ."""
    values = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.array([])
    values = values[np.isfinite(values)]
    if positive(values) and values.max() >= 10 * values.min():
        log_axis(axis)
        return
    formatter = ScalarFormatter(useOffset=False)
    formatter.set_powerlimits((-3, 4))
    axis.set_major_formatter(formatter)
