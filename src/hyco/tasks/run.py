"""`hyco run`: the whole comparison in one run directory.

Generate (or reuse) the data, train physical-only, synthetic-only and HYCO with comparable budgets,
evaluate all of them on the held-out simulations, write the report and print its path last.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hyco.tasks.context import RunContext

log = logging.getLogger(__name__)


def run(ctx: RunContext) -> Path:
    from hyco.tasks.evaluate import evaluate
    from hyco.tasks.experiment import open_experiment
    from hyco.tasks.report import report, write_timings
    from hyco.tasks.train import TRAINERS
    from hyco.utils.distributed import main_rank_alone, process_info

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    exp = open_experiment(ctx)
    seconds["data"] = time.perf_counter() - start
    from hyco.tasks.baselines import BASELINES, train_or_reuse

    shared = ctx.baselines_dir is not None and ctx.cfg.reuse_baselines and not ctx.cfg.resume
    for name, train in TRAINERS.items():
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
