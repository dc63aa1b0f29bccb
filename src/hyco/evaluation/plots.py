"""Figures of the comparison, in one place: maps of fields and coefficients, curves, the animation.

Every function takes plain arrays (already reduced to one scalar quantity per grid point where a field is
shown) and writes one file; none of them knows about trainers or run directories. They draw on
`matplotlib.figure.Figure` objects, never pyplot: importing hyco chooses no backend (a notebook keeps its
own) and writing a figure needs no display.
"""

from __future__ import annotations

from hyco.evaluation.animation import animate
from hyco.evaluation.curves import (
    draw_error_curves,
    plot_cycles,
    plot_error_curves,
    plot_parameter_traces,
    plot_scalar_coefficient,
    plot_training_curves,
)
from hyco.evaluation.field_maps import (
    plot_coefficient_maps,
    plot_error_maps,
    plot_observation,
    plot_snapshots,
    snapshot_steps,
)

__all__ = ["animate", "draw_error_curves", "plot_coefficient_maps", "plot_cycles", "plot_error_curves",
           "plot_error_maps", "plot_observation", "plot_parameter_traces", "plot_scalar_coefficient",
           "plot_snapshots", "plot_training_curves", "snapshot_steps"]
