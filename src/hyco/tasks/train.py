"""`hyco train mode=physical|synthetic|hybrid`: one training run written to its run directory.

All three resume with `resume=true` from their last checkpoint and refuse to overwrite a directory that
already holds one without it.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from hyco.errors import DataError
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import (
    PHYSICAL_BEST,
    RUN_DIRS,
    Experiment,
    open_experiment,
    read_summary,
    write_summary,
)

log = logging.getLogger(__name__)

# the loaders' random streams under the configured seed (hyco.utils.seed)
SYNTHETIC_LOADER, PHYSICAL_LOADER = 0, 11


def _guard(checkpoint: Path, resume: bool, mode: str) -> bool:
    """True when the run continues from `checkpoint`; refuses to silently start over on top of one."""
    if checkpoint.exists():
        if resume:
            return True
        raise DataError(f"{checkpoint}: a {mode} run already exists in this output_dir; pass resume=true to "
                        "continue it or choose another output_dir")
    if resume:
        log.warning("resume=true but %s does not exist: starting %s training from scratch", checkpoint, mode)
    return False


def _refresh(completion, predictor, epoch: int, every: int) -> float:
    """Complete the hidden parts of the input states with `predictor` (a model snapshot), every `every`
    epochs; returns the seconds it took."""
    if completion is None or (completion.ready and epoch % every != 0):
        return 0.0
    from hyco.training.predictors import one_step

    return completion.refresh(one_step(predictor))


def train_physical(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    """Physical-only: the coefficients fitted to the observations. With `trajectory` windows (the default
    when states are hidden) every simulation is rolled out from frame 0 whole; with `sliding` windows and
    hidden states, the inputs after frame 0 are completed from the model's own rollout (refreshed every
    `data.completion_every` epochs).
    The epoch with the lowest observed validation error is kept as `best.pt`. Everything a run decides (the
    epochs done, the stop at the noise floor, the kept epoch, the validation errors) is in the checkpoint, so a
    resumed run ends as an uninterrupted one would, and one that had already ended trains nothing."""
    from hyco.training.checkpoint import load_checkpoint
    from hyco.training.physical import PhysicalTrainer
    from hyco.training.predictors import physical_predictor

    run_dir = ctx.run_dir / RUN_DIRS["physical"]
    resuming = _guard(run_dir / PhysicalTrainer.last_checkpoint, ctx.cfg.resume, "physical")  # before any work
    exp = experiment or open_experiment(ctx)
    trainer = exp.physical_trainer(run_dir)
    previous: dict = {}
    if resuming:
        trainer.resume()
        previous = read_summary(run_dir)
        if "best" not in load_checkpoint(run_dir / trainer.last_checkpoint):  # written before the keeper was in it
            trainer.adopt_best(previous.get("best_val_loss"), previous.get("best_epoch"), previous.get("val_losses"))
    config = ctx.cfg.trainer.physical
    windows = exp.physical_windows(trainer)
    completion = exp.completion(windows)
    loader = exp.loader(windows, batch_size=min(len(windows), 256), stream=PHYSICAL_LOADER)
    loader.epoch = trainer.epoch
    start = time.perf_counter()
    completion_seconds = previous.get("completion_seconds", 0.0)
    metrics: dict = {}

    def stopped() -> bool:  # the last epoch ended at the noise floor: the same objective again would not move
        return trainer.converged and completion is None

    def summary() -> None:
        write_summary(run_dir, mode="physical", epochs=trainer.epoch, fitted_on=windows.describe_fit(),
                      train_seconds=previous.get("train_seconds", 0.0) + time.perf_counter() - start,
                      completion_seconds=completion_seconds, best_val_loss=trainer.best.finite_loss,
                      best_epoch=trainer.best.step, val_losses=trainer.val_losses,
                      coefficients={k: v.tolist() for k, v in trainer.coefficients().items()})

    if resuming and (trainer.epoch >= config.epochs or stopped()):
        why = "at the noise floor" if stopped() else "its budget"
        log.info("the physical run in %s had already ended (epoch %d of %d, %s): nothing to train", run_dir,
                 trainer.epoch, config.epochs, why)
    try:
        while trainer.epoch < config.epochs and not stopped():
            predictor = physical_predictor(exp.physics, trainer.coefficients())
            completion_seconds += _refresh(completion, predictor, trainer.epoch, ctx.cfg.data.completion_every)
            metrics = trainer.train(loader, 1)
            trainer.keep_best()
            trainer.save()
            summary()
            if stopped():
                log.info("physical training stopped after epoch %d of %d at the noise floor", trainer.epoch,
                         config.epochs)
    finally:
        if completion is not None:
            completion.close()
    if not (run_dir / trainer.last_checkpoint).exists():  # zero epochs asked for: still leave a usable run
        trainer.save()
    summary()  # also after a resume that found nothing to train: the summary matches the checkpoint
    return metrics


def train_synthetic(ctx: RunContext, experiment: Experiment | None = None, run: str = "synthetic",
                    epochs: int | None = None, matched: str | None = None) -> dict:
    """Synthetic-only: the network trained on the observations. With hidden states, the inputs after frame
    0 are completed from the network's own rollout, refreshed every `data.completion_every` epochs.
    `run` names the run directory (RUN_DIRS), `epochs` overrides `trainer.synthetic.epochs` (`matched`: why)."""
    from hyco.training.predictors import network_predictor
    from hyco.training.synthetic import SyntheticTrainer

    run_dir = ctx.run_dir / RUN_DIRS[run]
    resuming = _guard(run_dir / SyntheticTrainer.last_checkpoint, ctx.cfg.resume, run)  # before any work
    exp = experiment or open_experiment(ctx)
    epochs = ctx.cfg.trainer.synthetic.epochs if epochs is None else int(epochs)
    trainer = exp.synthetic_trainer(run_dir, total_epochs=epochs)
    previous: dict = {}
    if resuming:
        trainer.resume()
        previous = read_summary(run_dir)
        if trainer.epoch >= epochs:
            log.info("the synthetic run in %s had already ended (epoch %d of %d): nothing to train", run_dir,
                     trainer.epoch, epochs)
    windows = exp.train_windows()
    completion = exp.completion(windows)
    loader = exp.loader(windows, ctx.cfg.trainer.synthetic.batch_size, stream=SYNTHETIC_LOADER)
    loader.epoch = trainer.epoch
    start = time.perf_counter()
    completion_seconds = previous.get("completion_seconds", 0.0)
    metrics: dict = {"epoch": trainer.epoch}
    history: list = []
    try:
        while trainer.epoch < epochs:
            completion_seconds += _refresh(completion, network_predictor(trainer.model, ctx.device), trainer.epoch,
                                           ctx.cfg.data.completion_every)
            # one epoch per call when inputs are refreshed between epochs, else all at once
            metrics = trainer.train(loader, 1 if completion is not None else epochs - trainer.epoch)
            history += metrics["history"]
    finally:
        if completion is not None:
            completion.close()
    metrics["history"] = history
    if not (run_dir / trainer.last_checkpoint).exists():
        trainer.save()
    extra = {"matched": matched} if matched else {}
    write_summary(run_dir, mode="synthetic", epochs=trainer.epoch, completion_seconds=completion_seconds,
                  best_val_loss=trainer.best.finite_loss,
                  train_seconds=previous.get("train_seconds", 0.0) + time.perf_counter() - start, **extra)
    trainer.close()
    return metrics


def matched_epochs(ctx: RunContext, num_real: int) -> tuple[int, str]:
    """Epochs over the `num_real` real windows that give the network alone as many samples (and, up to each
    epoch's last batch, optimizer steps) as HYCO's network had: counted from HYCO's record when it has run
    (`hyco/metrics.jsonl`: the real and generated windows of every cycle whose network phase ran), else planned
    (`warm_start_epochs` + `cycles` x `synthetic_epochs_per_cycle` x (1 + alpha))."""
    from hyco.training.augmentation import num_generated

    cfg = ctx.cfg.trainer.hybrid
    warm = cfg.warm_start_epochs if cfg.variant == "warm_start" else 0
    path = ctx.run_dir / RUN_DIRS["hybrid"] / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    if records:
        samples = warm * num_real
        for record in records:
            data_weight = record.get("synthetic_data_weight", 1.0)
            interaction = record.get("synthetic_interaction_weight", 0.0)
            if data_weight == 0 and not interaction:
                continue  # the network's phase was skipped
            per_epoch = (record["num_real"] if data_weight > 0 else 0) + record.get("num_generated_physical", 0)
            samples += cfg.synthetic_epochs_per_cycle * per_epoch
        how = f"{samples} samples, as HYCO's network had ({len(records)} cycles)"
    else:
        samples = (warm + cfg.cycles * cfg.synthetic_epochs_per_cycle) * num_real \
            + cfg.cycles * cfg.synthetic_epochs_per_cycle * num_generated(num_real, cfg.alpha)
        how = f"{samples} samples, as planned for HYCO's network (no HYCO record)"
    epochs = max(1, round(samples / max(1, num_real)))
    return epochs, f"{epochs} epochs over {num_real} real windows: {how}"


def train_synthetic_matched(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    """The network alone, compute-matched to HYCO's network: the same number of samples and optimizer steps,
    all of them real windows (`matched_epochs`), in `<run_dir>/synthetic_matched/`. HYCO's network sees its
    real windows plus alpha x as many of the solver's predictions per epoch; the default network alone sees the
    real windows only, i.e. 1 / (1 + alpha) of the samples."""
    exp = experiment or open_experiment(ctx)
    epochs, how = matched_epochs(ctx, len(exp.train_windows()))
    log.info("compute-matched network alone: %s", how)
    return train_synthetic(ctx, exp, run="synthetic_matched", epochs=epochs, matched=how)


def train_hybrid(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    from hyco.training.hybrid import HybridTrainer

    cfg = ctx.cfg.trainer.hybrid
    run_dir = ctx.run_dir / RUN_DIRS["hybrid"]
    resuming = _guard(run_dir / HybridTrainer.last_checkpoint, ctx.cfg.resume, "hybrid")  # before any work
    exp = experiment or open_experiment(ctx)
    warm = cfg.warm_start_epochs if cfg.variant == "warm_start" else 0
    total_epochs = warm + cfg.cycles * cfg.synthetic_epochs_per_cycle
    synthetic = exp.synthetic_trainer(run_dir / "synthetic", total_epochs=total_epochs, per_cycle=True)
    physical = exp.physical_trainer(run_dir / "physical")
    windows = exp.train_windows()
    completion = exp.completion(windows)
    physical_windows = exp.physical_windows(physical)
    hybrid = HybridTrainer(cfg, synthetic, physical, cache_dir=ctx.cache_dir, run_dir=run_dir, seed=ctx.cfg.seed,
                           batch_size=ctx.cfg.trainer.synthetic.batch_size, device=ctx.device,
                           validation=exp.validation_data(), completion=completion,
                           physical_best_path=run_dir / "physical" / PHYSICAL_BEST)
    previous_seconds = 0.0
    if resuming:
        hybrid.resume()
        previous_seconds = read_summary(run_dir).get("train_seconds", 0.0)
        if hybrid.cycle >= cfg.cycles:
            log.info("the HYCO run in %s had already ended (cycle %d of %d): nothing to train", run_dir, hybrid.cycle,
                     cfg.cycles)
    start = time.perf_counter()
    try:
        metrics = hybrid.train(windows, real_physical=physical_windows if physical_windows.from_start else None)
    finally:
        if completion is not None:
            completion.close()
    if not (run_dir / hybrid.last_checkpoint).exists():
        hybrid.save()
    physical.save()
    against_guess = hybrid.physical_against_guess()
    if not against_guess["trained"]:
        log.warning("HYCO's solver never trained (nothing to learn from in any cycle): its coefficients are its "
                    "initial guess, not learned")
    elif against_guess["worse_than_guess"]:
        log.warning("HYCO's solver ends worse than its initial guess on the observed validation data (MSE %.4g, "
                    "guess %.4g): its coefficients are not learned%s", against_guess["best_val_loss"],
                    against_guess["initial_val_loss"],
                    " (trained through the network alone: trainer.hybrid.physical.data_weight 0)"
                    if cfg.physical.data_weight == 0 else "")
    write_summary(run_dir, mode="hybrid", cycles=hybrid.cycle, fitted_on=physical_windows.describe_fit(),
                  train_seconds=previous_seconds + time.perf_counter() - start,
                  completion_seconds=completion.seconds if completion is not None else 0.0,
                  phase_seconds=hybrid.phase_seconds(),
                  best_physical_cycle=hybrid.best_physical.step,
                  best_physical_val_loss=hybrid.best_physical.finite_loss,
                  initial_physical_val_loss=against_guess["initial_val_loss"],
                  physical_worse_than_guess=against_guess["worse_than_guess"],
                  physical_trained=against_guess["trained"],
                  best_synthetic_val_loss=synthetic.best.finite_loss,
                  coefficients={k: v.tolist() for k, v in physical.coefficients().items()})
    synthetic.close()
    return metrics


# what `hyco train mode=<mode>` runs, for every mode of hyco.config.schema.TRAIN_MODES, in its order
TRAINERS = {"physical": train_physical, "synthetic": train_synthetic, "hybrid": train_hybrid}
