"""`hyco run`: the whole comparison in one run directory.

Generate (or reuse) the data, train physical-only, synthetic-only and HYCO with comparable budgets (and, by
default, the model floor: the solver on the full, noise-free data, `evaluation.model_floor`; on request the
network alone with HYCO's network's samples and steps, `trainer.hybrid.matched_baseline`), evaluate all of them on
the held-out simulations, write the report and print its path last.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hyco.tasks.context import RunContext

log = logging.getLogger(__name__)


def run(ctx: RunContext) -> Path:
    from hyco.tasks.baselines import BASELINES, train_or_reuse
    from hyco.tasks.evaluate import evaluate
    from hyco.tasks.experiment import open_experiment
    from hyco.tasks.floor import fit_model_floor
    from hyco.tasks.report import report, write_timings
    from hyco.tasks.train import TRAINERS, train_synthetic_matched
    from hyco.utils.distributed import main_rank_alone, process_info

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    exp = open_experiment(ctx)
    seconds["data"] = time.perf_counter() - start
    shared = ctx.baselines_dir is not None and ctx.cfg.reuse_baselines and not ctx.cfg.resume
    phases = list(TRAINERS.items())
    if ctx.cfg.evaluation.model_floor:  # every rank: the physical trainer reduces over them
        phases.insert(1, ("model floor", fit_model_floor))
    if ctx.cfg.trainer.hybrid.matched_baseline:
        phases.append(("synthetic_matched", train_synthetic_matched))
    for name, train in phases:
        log.info("=== training %s ===", name)
        start = time.perf_counter()
        if shared and name in BASELINES:
            train_or_reuse(ctx, exp, name, train)
        else:
            train(ctx, exp)
        seconds[name] = time.perf_counter() - start
    if not process_info().is_main:  # under torchrun rank 0 evaluates and reports alone
        return ctx.run_dir
    with main_rank_alone():
        log.info("=== evaluation ===")
        start = time.perf_counter()
        evaluate(exp)
        seconds["evaluate"] = time.perf_counter() - start
        write_timings(ctx.run_dir, seconds)  # the report shows every phase before it
        start = time.perf_counter()
        path = report(ctx)
        seconds["report"] = time.perf_counter() - start
    log.info("phases (s): %s", ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()))
    print(path)
    return path
