"""`evaluation.uncertainty=ensemble`: train the K members (hyco.training.ensemble) that `hyco evaluate` turns into
each physical run's intervals.

Members are physical-only fits to the real training observations (perturbed, see hyco.training.ensemble), one
after the other or, with `evaluation.ensemble_workers` > 1, in that many joblib processes (the `cluster` extra;
the process's threads shared among them), each written to `<run>/ensemble/member_NNN.pt` (atomically) once
trained. A stopped evaluation (SIGTERM, Ctrl-C) loses only the members it was training: the next one starts
there, each from its seed, and ends with the members an uninterrupted one has. A member file made for other
settings (seed, data, observation, trainer, perturbation) is trained again. HYCO's solver gets the same
members: their spread says what the data determine, centred on HYCO's value (hyco.training.ensemble).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path

import torch

from hyco.data.batch import Batch
from hyco.tasks.experiment import Experiment
from hyco.training.ensemble import ORDER_STREAM, draw_initial_raw, member_seed
from hyco.utils.io import atomic_torch_save
from hyco.utils.seed import derive_seed

log = logging.getLogger(__name__)

ENSEMBLE_DIR = "ensemble"


def posterior_batches(exp: Experiment, trainer) -> tuple[list[Batch], object]:
    """The real windows of the solver's data term (whole trajectories from frame 0 when its windows would need
    completed inputs), in batches of the objective's size on the trainer's device; and the windows."""
    windows = exp.physical_windows(trainer)
    if windows.needs_completion:
        windows = exp.trajectory_windows()
    size = max(1, trainer.max_windows(windows.rollout_steps))
    batches = [Batch.of(windows.batch(torch.arange(start, min(len(windows), start + size))))
               .to(trainer.device, trainer.dtype).expanded() for start in range(0, len(windows), size)]
    return batches, windows


def perturbation_std(exp: Experiment, trainer) -> tuple[torch.Tensor, str, float]:
    """The std per channel of the noise each member adds to the observations, where it came from, and the
    evaluated solver's misfit φ (hyco.training.laplace.misfit_ratio; 1 without known noise).

    With observation noise: that noise, widened by √φ when the solver's residuals are more than
    MISFIT_LIMIT times what it explains (as the Laplace posterior widens σ²). Without: the residuals' RMS at
    the optimum, sqrt(RSS / (n - p)), on every dynamic channel."""
    from hyco.training.laplace import MISFIT_LIMIT, ObservedResiduals, misfit_ratio

    batches, windows = posterior_batches(exp, trainer)
    observation = windows.observation
    if observation is not None and observation.has_noise:
        noise = observation.noise_std.index_select(0, trainer.dynamic.cpu()).to(trainer.device, torch.float64)
        misfit = misfit_ratio(exp.physics, trainer.raw, trainer.learnable, batches, trainer.dynamic, noise,
                              carried=windows.from_start)
        if misfit > MISFIT_LIMIT:
            return observation.noise_std * misfit ** 0.5, "the configured observation noise, widened by the " \
                "square root of the solver's misfit", misfit
        return observation.noise_std.clone(), "the configured observation noise", misfit
    residuals = ObservedResiduals(exp.physics, trainer.raw, trainer.learnable, trainer.dynamic)
    theta = residuals.theta()
    with torch.no_grad():
        parts = [residuals(theta, batch).double() for batch in batches]
    n = sum(part.numel() for part in parts)
    rss = sum(float(part.pow(2).sum()) for part in parts)
    sigma = (rss / max(n - theta.numel(), max(1, n // 2))) ** 0.5
    std = torch.zeros(exp.physics.num_channels)
    std[torch.as_tensor(exp.physics.dynamic_channels)] = sigma
    return std, "the residuals at the optimum, RSS / (n - p)", 1.0


def _made_for(exp: Experiment, std: torch.Tensor, around: dict[str, torch.Tensor] | None) -> str:
    """What a member depends on, hashed: a stored member made for anything else is trained again."""
    cfg = exp.cfg
    identity = {"seed": cfg.seed, "dataset": exp.store.config_hash, "physics": cfg.physics, "dtype": cfg.dtype,
                "observation": dataclasses.asdict(cfg.observation), "data": dataclasses.asdict(cfg.data),
                "physical": dataclasses.asdict(cfg.trainer.physical), "perturbation": std.tolist(),
                "start": {k: v.tolist() for k, v in (around or {}).items()} or "prior"}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_member(exp: Experiment, member: int, std: torch.Tensor, around: dict[str, torch.Tensor] | None = None
                 ) -> dict[str, torch.Tensor]:
    """Member `member`'s learned raw coefficients: a physical-only fit from its drawn guess (near `around`, else
    from the bounds' prior), in its data order, to the observations plus its noise draw of `std` (per channel),
    for `trainer.physical.epochs` epochs (or to the noise floor)."""
    from hyco.data.loader import make_loader

    seed = member_seed(exp.cfg.seed, member)
    trainer = exp.physical_trainer(None, validation=False)
    start = draw_initial_raw(exp.physics, trainer.raw, trainer.learnable, seed, around)
    with torch.no_grad():
        for name in trainer.learnable:
            trainer.raw[name].copy_(start[name])
    windows = exp.physical_windows(trainer)
    if windows.needs_completion:
        windows = exp.trajectory_windows()
    if windows.observation is not None:
        windows.observation.perturbation = (seed, std)
    loader = make_loader(windows, batch_size=min(len(windows), 256), shuffle=True,
                         seed=derive_seed(seed, ORDER_STREAM), device=exp.ctx.device)
    epochs = exp.cfg.trainer.physical.epochs
    while trainer.epoch < epochs and not trainer.converged:
        trainer.train(loader, 1)
    return {name: trainer.raw[name].detach().cpu().clone() for name in trainer.learnable}


def ensemble_members(exp: Experiment, trainer, size: int) -> tuple[list[dict[str, torch.Tensor]], dict]:
    """The `size` members' learned raw coefficients, trained here or read back; and how they were made
    (for metrics.json). `trainer`: the evaluated solver (its residuals set the perturbation without noise)."""
    std, source, misfit = perturbation_std(exp, trainer)
    around = None
    if exp.cfg.evaluation.ensemble_start == "optimum":
        around = {name: trainer.raw[name].detach().cpu().double() for name in trainer.learnable}
    made_for = _made_for(exp, std, around)
    directory = Path(exp.ctx.run_dir) / ENSEMBLE_DIR
    stored: dict[int, dict] = {}
    for member in range(size):
        path = directory / f"member_{member:03d}.pt"
        if path.is_file():
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("made_for") == made_for:
                stored[member] = payload
            else:
                log.info("%s: made for other settings; training it again", path)
    missing = [m for m in range(size) if m not in stored]
    workers = min(exp.cfg.evaluation.ensemble_workers, len(missing))
    start = time.perf_counter()
    for member, raw, took in (_in_processes(exp, missing, std, around, workers) if workers > 1 else
                              ((m, *_timed(exp, m, std, around)) for m in missing)):
        stored[member] = {"raw": raw, "made_for": made_for, "seed": member_seed(exp.cfg.seed, member),
                          "seconds": took}
        atomic_torch_save(stored[member], directory / f"member_{member:03d}.pt")
        log.info("ensemble member %d of %d trained (%.1f s)", member + 1, size, took)
    wall = time.perf_counter() - start
    members = [stored[m]["raw"] for m in range(size)]
    seconds = sum(float(stored[m]["seconds"]) for m in range(size))
    trained = len(missing)
    details = {"member_seeds": [member_seed(exp.cfg.seed, m) for m in range(size)],
               "perturbation": source, "perturbation_std": [float(s) for s in std], "misfit": misfit,
               "noise_std": float(std[torch.as_tensor(exp.physics.dynamic_channels)].mean()),
               "members_trained_now": trained, "member_seconds": seconds, "workers": max(1, workers),
               "wall_seconds_now": wall,
               "start": exp.cfg.evaluation.ensemble_start,
               "members_of": "physical-only fits to the perturbed real observations (HYCO's solver: the same members)"}
    return members, details


def _timed(exp: Experiment, member: int, std: torch.Tensor, around) -> tuple[dict[str, torch.Tensor], float]:
    start = time.perf_counter()
    raw = train_member(exp, member, std, around)
    return raw, time.perf_counter() - start


def _in_processes(exp: Experiment, members: list[int], std: torch.Tensor, around, workers: int):
    """(member, raw, seconds) of `members`, trained in `workers` joblib processes, as each one ends."""
    try:
        from joblib import Parallel, delayed
    except ImportError as error:
        from hyco.errors import ConfigError

        raise ConfigError("evaluation.ensemble_workers", "", message="more than 1 worker needs the joblib package, "
                          "which is not installed; install it with: pip install 'hyco[cluster]'") from error
    threads = max(1, torch.get_num_threads() // workers)
    jobs = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    yield from jobs(delayed(_member_process)(exp.ctx, member, std, around, threads) for member in members)


def _member_process(ctx, member: int, std: torch.Tensor, around, threads: int):
    """A worker process: the experiment opened anew, one member trained with `threads` threads."""
    from hyco.tasks.experiment import open_experiment

    torch.set_num_threads(threads)
    raw, took = _timed(open_experiment(ctx), member, std, around)
    return member, raw, took
