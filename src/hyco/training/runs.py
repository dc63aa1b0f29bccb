"""`hyco train mode=physical|synthetic|hybrid`: one training run written to its run directory.

All three resume with `resume=true` from their last checkpoint and refuse to overwrite a directory that
already holds one without it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from hyco.config.errors import DataError
from hyco.context import RunContext
from hyco.experiment import PHYSICAL_CHECKPOINT, Experiment, open_experiment, read_summary, write_summary

log = logging.getLogger(__name__)


def _guard(run_dir: Path, checkpoint: Path, resume: bool, mode: str) -> bool:
    """True when the run continues from `checkpoint`; refuses to silently start over on top of one."""
    if checkpoint.exists():
        if resume:
            return True
        raise DataError(f"{checkpoint}: a {mode} run already exists in this output_dir; pass resume=true to "
                        "continue it or choose another output_dir")
    if resume:
        log.warning("resume=true but %s does not exist: starting %s training from scratch", checkpoint, mode)
    return False


def train_physical(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    exp = experiment or open_experiment(ctx)
    run_dir = exp.run_dir("physical")
    checkpoint = run_dir / PHYSICAL_CHECKPOINT
    resuming = _guard(run_dir, checkpoint, ctx.cfg.resume, "physical")
    trainer = exp.physical_trainer(run_dir)
    previous_seconds = 0.0
    if resuming:
        trainer.load(checkpoint)
        previous_seconds = read_summary(run_dir).get("train_seconds", 0.0)
        log.info("resumed physical training at epoch %d", trainer.epoch)
    windows = exp.train_windows()
    loader = exp.loader(windows, batch_size=min(len(windows), 256), seed_offset=11)
    loader.epoch = trainer.epoch
    start = time.perf_counter()
    metrics: dict = {}
    while trainer.epoch < ctx.cfg.trainer.physical.epochs:
        metrics = trainer.train(loader, 1)
        trainer.save(checkpoint)
        write_summary(run_dir, mode="physical", epochs=trainer.epoch,
                      train_seconds=previous_seconds + time.perf_counter() - start,
                      coefficients={k: v.tolist() for k, v in trainer.coefficients().items()})
    if not checkpoint.exists():  # zero epochs asked for: still leave a usable run
        trainer.save(checkpoint)
        write_summary(run_dir, mode="physical", epochs=0, train_seconds=0.0,
                      coefficients={k: v.tolist() for k, v in trainer.coefficients().items()})
    return metrics


def train_synthetic(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    exp = experiment or open_experiment(ctx)
    run_dir = exp.run_dir("synthetic")
    resuming = _guard(run_dir, run_dir / "last.pt", ctx.cfg.resume, "synthetic")
    epochs = ctx.cfg.trainer.synthetic.epochs
    trainer = exp.synthetic_trainer(run_dir, total_epochs=epochs)
    previous_seconds = 0.0
    if resuming:
        trainer.resume()
        previous_seconds = read_summary(run_dir).get("train_seconds", 0.0)
    loader = exp.loader(exp.train_windows(), ctx.cfg.trainer.synthetic.batch_size, seed_offset=0)
    loader.epoch = trainer.epoch
    start = time.perf_counter()
    metrics = trainer.train(loader, max(0, epochs - trainer.epoch))
    if not (run_dir / "last.pt").exists():
        trainer.save_checkpoint(run_dir / "last.pt")
    write_summary(run_dir, mode="synthetic", epochs=trainer.epoch,
                  train_seconds=previous_seconds + time.perf_counter() - start)
    trainer.close()
    return metrics


def train_hybrid(ctx: RunContext, experiment: Experiment | None = None) -> dict:
    from hyco.training.hybrid import CHECKPOINT_NAME, HybridTrainer

    exp = experiment or open_experiment(ctx)
    cfg = ctx.cfg.trainer.hybrid
    run_dir = exp.run_dir("hybrid")
    resuming = _guard(run_dir, run_dir / CHECKPOINT_NAME, ctx.cfg.resume, "hybrid")
    warm = cfg.warm_start_epochs if cfg.variant == "warm_start" else 0
    total_epochs = warm + cfg.cycles * cfg.synthetic_epochs_per_cycle
    synthetic = exp.synthetic_trainer(run_dir / "synthetic", total_epochs=total_epochs)
    physical = exp.physical_trainer(run_dir / "physical")
    hybrid = HybridTrainer(cfg, synthetic, physical, cache_dir=ctx.cache_dir, run_dir=run_dir, seed=ctx.cfg.seed,
                           batch_size=ctx.cfg.trainer.synthetic.batch_size, device=ctx.device)
    previous_seconds = 0.0
    if resuming:
        hybrid.resume()
        previous_seconds = read_summary(run_dir).get("train_seconds", 0.0)
    start = time.perf_counter()
    metrics = hybrid.train(exp.train_windows())
    if not (run_dir / CHECKPOINT_NAME).exists():
        hybrid.save(run_dir / CHECKPOINT_NAME)
    physical.save(run_dir / "physical" / PHYSICAL_CHECKPOINT)
    write_summary(run_dir, mode="hybrid", cycles=hybrid.cycle,
                  train_seconds=previous_seconds + time.perf_counter() - start,
                  coefficients={k: v.tolist() for k, v in physical.coefficients().items()})
    synthetic.close()
    return metrics
