"""The model floor: the coefficient error the solver reaches on full, noise-free data.

With reference data (`data.reference`) the solver cannot match the data exactly even where it sees all of
them without noise: the data come from a finer discretisation than its own. The error it reaches there is a
property of the model and the data, not of the observation, and it bounds from below what any observation
of the same data allows; every coefficient error of a run is to be read next to it. With data made by the
learning solver itself (`data.reference.refine=1`, substeps 0) nothing but the optimiser's budget keeps it
above round-off, and the summary says so.

`hyco run` fits it when `evaluation.model_floor` is true: the same physical trainer and budget
(`trainer.physical`) on the clean, full windows of the training split, into `<run_dir>/model_floor/`. The
evaluation copies its summary into `metrics.json` as `model_floor`.
"""

from __future__ import annotations

import logging
import time

from hyco.data.reference import is_learning_solver, reference_plan
from hyco.physics.accuracy import coefficient_errors, parameter_error
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import Experiment, read_summary, write_summary
from hyco.utils.distributed import process_info

log = logging.getLogger(__name__)

FLOOR_DIR = "model_floor"
FLOOR_LOADER = 13  # the floor's shuffling stream under the configured seed (hyco.utils.seed)


def fit_model_floor(ctx: RunContext, exp: Experiment) -> dict:
    """Fit the solver to every value of the training split, without noise, and write the floor's summary:
    `{"coefficients": {name: relative error}, "how": "..."}` (parametric coefficients also `parameters`)."""
    from hyco.data.windows import WindowDataset

    config = ctx.cfg.trainer.physical
    run_dir = ctx.run_dir / FLOOR_DIR
    truth = exp.true_coefficients()
    if not truth:
        log.info("model floor: no true coefficient is known for these data; not fitted")
        return {}
    trainer = exp.physical_trainer(None, validation=False)  # the floor is the fit itself: nothing to choose
    frames = exp.store.num_frames - 1
    if config.windows == "trajectory":
        windows = WindowDataset(exp.store, "train", config.horizon or frames, from_start=True, dtype=ctx.dtype)
    else:
        windows = WindowDataset(exp.store, "train", ctx.cfg.data.rollout_steps, dtype=ctx.dtype)
    loader = exp.loader(windows, batch_size=min(len(windows), 256), stream=FLOOR_LOADER)
    start = time.perf_counter()
    epochs = 0
    while epochs < config.epochs:
        metrics = trainer.train(loader, 1)
        epochs += 1
        if metrics.get("converged"):
            break
    learned = {k: v for k, v in trainer.coefficients().items() if not exp.physics.is_known(k)}
    errors = coefficient_errors(learned, truth)
    floor = {"coefficients": {name: entry["rel_error"] for name, entry in errors.items()},
             "how": _how(ctx, exp, epochs)}
    if exp.physics.parametric_coefficients:
        true_numbers = exp.physics.true_parameters()
        floor["parameters"] = {name: parameter_error(numbers, true_numbers[name])["rel_error"]
                               for name, numbers in exp.physics.parameter_values(trainer.raw).items()
                               if name in truth}
    if process_info().is_main:
        write_summary(run_dir, mode="model_floor", epochs=epochs, train_seconds=time.perf_counter() - start, **floor)
    log.info("model floor (%s): %s", floor["how"], ", ".join(f"{k} {v:.3g}" for k, v in floor["coefficients"].items()))
    return floor


def _how(ctx: RunContext, exp: Experiment, epochs: int) -> str:
    plan = reference_plan(ctx.cfg.data.reference, exp.physics)
    if exp.store.attrs.get("reference", "").startswith("imported"):
        source = "imported data"
    elif is_learning_solver(plan, exp.physics):
        source = ("data made by the learning solver itself (data.reference.refine=1: no discretisation error, "
                  "what remains is the optimiser's)")
    else:
        source = f"reference data ({plan.describe()})"
    optimizer = {"lbfgsb": "L-BFGS-B", "adam": "Adam"}.get(ctx.cfg.trainer.physical.optimizer, "")
    return (f"full, noise-free {source}; the training split, {epochs} epoch{'s' if epochs != 1 else ''} of "
            f"{optimizer}")


def read_model_floor(ctx: RunContext) -> dict | None:
    """The floor fitted in this run directory (`coefficients`, `how`[, `parameters`]), or None."""
    summary = read_summary(ctx.run_dir / FLOOR_DIR)
    if not summary.get("coefficients"):
        return None
    return {k: summary[k] for k in ("coefficients", "how", "parameters") if k in summary}

