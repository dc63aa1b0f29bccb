"""The `hyco` tasks. Each takes a RunContext; the CLI has already validated the config.

Each entry names the function that implements it; a task or training mode that is not built yet
says so and exits non-zero.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from hyco.config.errors import NotBuiltError
from hyco.context import RunContext

TASK_DESCRIPTIONS = {
    "generate": "simulate train/val/test trajectories with the true coefficients into one HDF5 file",
    "train": "train one model: mode=physical | synthetic | hybrid (HYCO)",
    "evaluate": "roll out trained models on held-out simulations, write metrics.json",
    "report": "write report.html and report.md with tables, figures and animations",
    "run": "all of it: generate, train physical, synthetic and HYCO, evaluate, report",
}

# "module:function" implementing each task, or None while it is not built.
TASK_IMPLEMENTATIONS: dict[str, str | None] = {
    "generate": "hyco.data.generate:generate_task",
    "evaluate": "hyco.evaluation.evaluate:evaluate_task",
    "report": "hyco.evaluation.report_task:report_task",
    "run": "hyco.pipeline:run",
}
# Tasks that rank 0 runs alone under torchrun (generate and train share their work across ranks).
MAIN_RANK_TASKS = ("evaluate", "report")
# `hyco train mode=<mode>`
TRAIN_IMPLEMENTATIONS: dict[str, str | None] = {
    "synthetic": "hyco.training.runs:train_synthetic",
    "physical": "hyco.training.runs:train_physical",
    "hybrid": "hyco.training.runs:train_hybrid",
}


def _load(target: str | None, what: str) -> Callable[[RunContext], object]:
    if target is None:
        raise NotBuiltError(f"{what} is not built yet in this version of hyco; nothing was run")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)


def train(ctx: RunContext) -> object:
    mode = ctx.cfg.mode
    return _load(TRAIN_IMPLEMENTATIONS[mode], f"`hyco train mode={mode}`")(ctx)


def run_task(name: str, ctx: RunContext) -> object:
    from hyco.utils.distributed import main_rank_alone, process_info

    if name in MAIN_RANK_TASKS:  # under torchrun rank 0 evaluates and reports alone
        if not process_info().is_main:
            return None
        with main_rank_alone():
            return _load(TASK_IMPLEMENTATIONS[name], f"task '{name}'")(ctx)
    if name == "train":
        return train(ctx)
    return _load(TASK_IMPLEMENTATIONS[name], f"task '{name}'")(ctx)


TASKS = tuple(TASK_DESCRIPTIONS)
