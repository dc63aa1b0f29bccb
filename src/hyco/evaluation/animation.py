"""An animated GIF of the truth and every model over one held-out trajectory.

The figure is laid out and drawn once; each frame then redraws only what moves (the images or lines and the
time) over the saved background, which makes a frame cost a few milliseconds instead of a full draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.ticker import MaxNLocator
from PIL import Image

from hyco.evaluation.field_maps import grid_extent, outline_region, shade_region, truth_scale
from hyco.evaluation.figure_style import TRUTH_STYLE, new_figure, run_label, run_style
from hyco.utils.io import atomic_path

GIF_DPI = 80


def animate(truth: np.ndarray, predictions: Mapping[str, np.ndarray], path: Path, fps: int = 6, dt: float = 1.0,
            extent: Sequence[float] | None = None, observed: np.ndarray | None = None,
            quantity: str = "value") -> Path:
    """Truth and models side by side (2D `[T, y, x]`: images on the truth's colour scale, the observed region
    outlined; 1D `[T, x]`: curves in one panel), one GIF frame per trajectory frame."""
    rows = {"truth": truth, **predictions}
    extent = grid_extent(extent, truth.shape[1:])
    if truth.ndim == 3:
        fig = new_figure(2.0 * len(rows) + 0.9, 2.4, dpi=GIF_DPI)
        axes = fig.subplots(1, len(rows), squeeze=False, sharey=True)[0]
        cmap, norm = truth_scale(truth)
        artists = []
        for ax, (key, data) in zip(axes, rows.items()):
            image = ax.imshow(data[0], origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest",
                              animated=True)
            outline_region(ax, observed, extent)
            ax.set_title("truth" if key == "truth" else run_label(key), fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])  # the static figures have the axes; a frame's ticks would cost more than its images
            artists.append(image)
        fig.colorbar(artists[0], ax=axes, shrink=0.85, extend="both", label=quantity)
    else:
        fig = new_figure(6.4, 3.4, dpi=GIF_DPI)
        ax = fig.subplots()
        x = extent[0] + (np.arange(truth.shape[1]) + 0.5) * (extent[1] - extent[0]) / truth.shape[1]
        shade_region(ax, observed, extent)
        finite = truth[np.isfinite(truth)]
        pad = 0.1 * (float(finite.max() - finite.min()) or 1.0)
        artists = []
        for key, data in rows.items():
            style = TRUTH_STYLE if key == "truth" else {**run_style(key, list(predictions)), "markevery":
                                                        max(1, x.size // 8), "markerfacecolor": "none"}
            (line,) = ax.plot(x, data[0], label="truth" if key == "truth" else run_label(key), animated=True,
                              **style)
            artists.append(line)
        ax.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel("x")
        ax.set_ylabel(quantity)
        ax.legend(fontsize=8, loc="upper right")
    clock = fig.suptitle(f"t = {0:.3g}", fontsize=10, animated=True)
    canvas = fig.canvas
    canvas.draw()  # lays the figure out once; the animated artists are left out of the background
    fig.set_layout_engine("none")
    background = canvas.copy_from_bbox(fig.bbox)
    frames = []
    for frame in range(truth.shape[0]):
        canvas.restore_region(background)
        for artist, data in zip(artists, rows.values()):
            current = data[min(frame, data.shape[0] - 1)]
            if truth.ndim == 3:
                artist.set_data(current)
            else:
                artist.set_ydata(current)
            artist.axes.draw_artist(artist)
        clock.set_text(f"t = {frame * dt:.3g}")
        fig.draw_artist(clock)
        width, height = canvas.get_width_height()
        frames.append(Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
                      .convert("RGB"))
    palette = _palette(frames[0], cmap if truth.ndim == 3 else None)
    frames = [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=round(1000 / fps),
                       loop=0)
    return path


def _palette(first: Image.Image, cmap: str | None) -> Image.Image:
    """One 256-colour palette for every frame, from the first frame and the whole colour map (later frames
    reach colours the first does not): one shared palette maps a frame in milliseconds where an adaptive one
    per frame costs tens."""
    source = first
    if cmap is not None:
        strip = (colormaps[cmap](np.linspace(0, 1, 256))[None, :, :3] * 255).astype(np.uint8)
        strip = Image.fromarray(np.repeat(strip, 8, axis=0)).resize((first.width, 8))
        source = Image.new("RGB", (first.width, first.height + 8))
        source.paste(first)
        source.paste(strip, (0, first.height))
    return source.quantize(256, method=Image.Quantize.FASTOCTREE)
