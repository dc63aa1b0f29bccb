"""`hyco train mode=synthetic`: train the network alone on the experiment's (observed) data.

Writes `<run_dir>/synthetic/`: `best.pt` (lowest validation loss), `last.pt`, `metrics.jsonl`,
`tensorboard/` and `summary.json`. `resume=true` with the same `output_dir` continues from `last.pt`
exactly; without it an existing `last.pt` is never overwritten.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from hyco.config.errors import DataError
from hyco.context import RunContext
from hyco.networks import Surrogate, build_network
from hyco.networks.stats import StatsAccumulator
from hyco.training.synthetic import LAST, SyntheticTrainer
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

SUBDIR = "synthetic"


def training_stats(store, observation) -> dict[str, torch.Tensor]:
    """Normalisation statistics of the train split as the trainer sees it: the noisy states that are
    the windows' inputs (the observation mask covers targets only), one simulation at a time."""
    acc = StatsAccumulator(store.num_channels, store.dynamic_channels)
    for index in range(store.num_sims("train")):
        trajectory = torch.from_numpy(store.read_simulation("train", index))
        if observation is not None:
            observation.add_noise_(trajectory, "train", index)
        acc.add(trajectory)
    return acc.result()


def build_surrogate(ctx: RunContext, store, observation) -> Surrogate:
    ndim = len(store.spatial_shape)
    stats = training_stats(store, observation)
    model = build_network(dict(ctx.cfg.network), store.num_channels, store.dynamic_channels, ndim, stats)
    return model.to(device=ctx.device, dtype=ctx.dtype)


def train_synthetic(ctx: RunContext) -> dict[str, Any]:
    from hyco.data.generate import ensure_dataset
    from hyco.data.loader import make_loader
    from hyco.data.observation import Observation
    from hyco.data.store import TrajectoryStore
    from hyco.data.windows import WindowDataset
    from hyco.physics import build_physics

    cfg, tcfg = ctx.cfg, ctx.cfg.trainer.synthetic
    out = ctx.run_dir / SUBDIR
    if (out / LAST).is_file() and not cfg.resume:
        raise DataError(f"{out / LAST}: a synthetic run exists in this output_dir; pass resume=true to continue it "
                        "or choose another output_dir")
    physics = build_physics(dict(cfg.physics), ctx.device, ctx.dtype)
    store = TrajectoryStore(ensure_dataset(cfg, physics, ctx.data_dir))
    observation = Observation.from_store(cfg.observation, store)
    train = WindowDataset(store, "train", cfg.data.rollout_steps, observation=observation,
                          max_cached_sims=cfg.data.max_cached_sims, dtype=ctx.dtype)
    loader = make_loader(train, tcfg.batch_size, shuffle=True, seed=cfg.seed, device=ctx.device,
                         num_workers=tcfg.num_workers)
    model = build_surrogate(ctx, store, observation)
    log.info("network %s: %d parameters, %d train windows (%s), batch %d, %d epochs", cfg.network["name"],
             sum(p.numel() for p in model.parameters()), len(train), train.store.path.name, tcfg.batch_size,
             tcfg.epochs)
    trainer = SyntheticTrainer(tcfg, model, ctx.device, run_dir=out)
    if store.num_sims("val") > 0:
        trainer.set_validation(store.trajectories("val"))  # clean full trajectories, as for evaluation
    else:
        log.warning("no validation simulations (data.num_val=0): best.pt is not written")
    if cfg.resume and not trainer.resume():
        log.warning("resume=true but %s does not exist: starting a new run", out / LAST)
    loader.epoch = trainer.epoch  # the shuffling order is a function of (seed, epoch): continue the sequence
    try:
        metrics = trainer.train(loader, max(0, tcfg.epochs - trainer.epoch))
    finally:
        trainer.close()
    summary = {key: value for key, value in metrics.items() if key != "history"} | {
        "dataset": str(store.path), "network": dict(cfg.network), "fingerprint": model.fingerprint(),
        "checkpoints": {name: str(out / f"{name}.pt") if (out / f"{name}.pt").is_file() else None
                        for name in ("best", "last")}}
    atomic_write_json(summary, out / "summary.json")
    log.info("synthetic training done: epoch %d, train loss %.3e, best validation loss %s", trainer.epoch,
             metrics.get("train_loss", float("nan")), metrics.get("best_val_loss"))
    return summary
