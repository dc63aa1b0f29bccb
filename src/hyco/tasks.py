"""The `hyco` tasks. Each takes a RunContext; the CLI has already validated the config."""

from __future__ import annotations

from collections.abc import Callable

from hyco.config.errors import NotBuiltError
from hyco.context import RunContext


def _not_built(task: str, issue: str) -> Callable[[RunContext], None]:
    def run(ctx: RunContext) -> None:
        raise NotBuiltError(f"task '{task}' is not built yet ({issue}); nothing was run")

    return run


TASK_DESCRIPTIONS = {
    "generate": "simulate train/val/test trajectories with the true coefficients into one HDF5 file",
    "train": "train one model: mode=physical | synthetic | hybrid (HYCO)",
    "evaluate": "roll out trained models on held-out simulations, write metrics.json",
    "report": "write report.html and report.md with tables, figures and animations",
    "run": "all of it: generate, train physical, synthetic and HYCO, evaluate, report",
}

TASKS: dict[str, Callable[[RunContext], None]] = {
    "generate": _not_built("generate", "data pipeline"),
    "train": _not_built("train", "trainers"),
    "evaluate": _not_built("evaluate", "evaluation"),
    "report": _not_built("report", "report"),
    "run": _not_built("run", "the main job needs every other task"),
}
