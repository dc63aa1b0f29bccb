"""The `hyco` tasks, the top layer: each wires the layers below into one command and takes a RunContext
(the CLI has already validated the config). Importing this package is cheap (no torch): `hyco --help`
reads the descriptions; each task imports what it runs when it runs.

    generate  hyco.tasks.generate.generate
    train     hyco.tasks.train.train_<mode>
    evaluate  hyco.tasks.evaluate.evaluate_task; with checkpoint=: hyco.tasks.evaluate_checkpoint
    report    hyco.tasks.report.report_task
    run       hyco.tasks.run.run
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyco.config.schema import TASKS, TRAIN_MODES

if TYPE_CHECKING:
    from hyco.tasks.context import RunContext

__all__ = ["MAIN_RANK_TASKS", "TASKS", "TASK_DESCRIPTIONS", "TRAIN_MODES", "run_task"]

TASK_DESCRIPTIONS = {  # one line per task of hyco.config.schema.TASKS, in its order
    "generate": "simulate train/val/test trajectories with the true coefficients into one HDF5 file",
    "train": "train one model: mode=physical | synthetic | hybrid (HYCO)",
    "evaluate": "roll out the run's models on held-out simulations (metrics.json); checkpoint=PATH [data=PATH]: "
                "one model on any compatible dataset",
    "report": "write report.html and report.md with tables, figures and animations",
    "run": "all of it: generate, train physical, synthetic and HYCO, evaluate, report",
}


def _generate(ctx: RunContext) -> object:
    from hyco.tasks.generate import generate

    return generate(ctx)


def _train(ctx: RunContext) -> object:
    from hyco.tasks.train import TRAINERS

    return TRAINERS[ctx.cfg.mode](ctx)


def _evaluate(ctx: RunContext) -> object:
    if ctx.cfg.evaluation.checkpoint:
        from hyco.tasks.evaluate_checkpoint import evaluate_checkpoint

        return evaluate_checkpoint(ctx)
    from hyco.tasks.evaluate import evaluate_task

    return evaluate_task(ctx)


def _report(ctx: RunContext) -> object:
    from hyco.tasks.report import report_task

    return report_task(ctx)


def _run(ctx: RunContext) -> object:
    from hyco.tasks.run import run

    return run(ctx)


_IMPLEMENTATIONS = {"generate": _generate, "train": _train, "evaluate": _evaluate, "report": _report, "run": _run}


# Tasks that rank 0 runs alone under torchrun (generate and train share their work across ranks).
MAIN_RANK_TASKS = ("evaluate", "report")


def run_task(name: str, ctx: RunContext) -> object:
    from hyco.utils.distributed import main_rank_alone, process_info

    if name in MAIN_RANK_TASKS:  # under torchrun rank 0 evaluates and reports alone
        if not process_info().is_main:
            return None
        with main_rank_alone():
            return _IMPLEMENTATIONS[name](ctx)
    return _IMPLEMENTATIONS[name](ctx)
