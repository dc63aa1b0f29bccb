"""`hyco evaluate checkpoint=PATH [data=PATH]`: one trained model on any compatible dataset.

The checkpoint may hold a network (`synthetic/best.pt`, `hyco/synthetic/best.pt`, `last.pt`) or the
coefficients of a physical model (`physical/best.pt`, `physical.pt`, `hyco/physical/best.pt`); the dataset is
a hyco dataset file (simulated, or imported with `data.external`), by default the configured experiment's. A
physical checkpoint runs in the configured PDE model (`physics=`), set to the data's grid, domain and dt.
Every simulation of `evaluation.split` (test, else val) is rolled out from its frame 0 as the configured
`observation` sees it (noisy; with `initial=observed` filled where hidden) and compared with the stored
trajectory: the rollout errors of the dynamic fields (and, for a physical checkpoint, the coefficient errors
where the file knows the truth) go to `<output_dir>/checkpoint_metrics.json`. A checkpoint that does not fit
the data (channels, fields, dimensions, grid, coefficient shapes) ends in one line naming both files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from hyco.data.store import TrajectoryStore
from hyco.errors import DataError
from hyco.evaluation.metrics import coefficient_errors, rollout_metrics, select_channels
from hyco.tasks.context import RunContext
from hyco.training import checkpoint as ckpt
from hyco.utils.io import atomic_write_json
from hyco.utils.log import fmt

log = logging.getLogger(__name__)

METRICS = "checkpoint_metrics.json"
BATCH = 16


def _split(store: TrajectoryStore, wanted: str) -> str:
    for split in (wanted, "val" if wanted == "test" else "test"):
        if store.num_sims(split) > 0:
            return split
    raise DataError(f"{store.path}: no simulations in the test or val split to evaluate on")


def _mismatch(checkpoint: Path, data: Path, what: str, model: Any, dataset: Any, there: str = "the data") -> DataError:
    return DataError(f"{checkpoint} does not fit {data}: {what} {model} in the checkpoint, {dataset} in {there}")


def _network_rollout(ctx: RunContext, checkpoint: Path, payload: dict, store: TrajectoryStore,
                     initial: torch.Tensor, steps: int) -> torch.Tensor:
    from hyco.training.synthetic import load_surrogate

    config = payload["network_config"]
    for what, mine, theirs in (("channels", config["num_channels"], store.num_channels),
                               ("dynamic channels", list(config["dynamic_channels"]), store.dynamic_channels),
                               ("spatial dimensions", config["ndim"], len(store.spatial_shape))):
        if mine != theirs:
            raise _mismatch(checkpoint, store.path, what, mine, theirs)
    network = load_surrogate(checkpoint, ctx.device).eval()
    dtype = next(network.parameters()).dtype
    try:
        with torch.no_grad():
            parts = [network.rollout(initial[i:i + BATCH].to(ctx.device, dtype), steps).cpu()
                     for i in range(0, initial.shape[0], BATCH)]
    except RuntimeError as exc:  # e.g. a grid that the architecture cannot take (UNet levels, FNO modes)
        raise DataError(f"{checkpoint} cannot run on the {list(store.spatial_shape)} grid of {store.path}: "
                        f"{str(exc).splitlines()[0][:200]}") from None
    return torch.cat(parts)


def _physical_rollout(ctx: RunContext, checkpoint: Path, payload: dict, store: TrajectoryStore,
                      initial: torch.Tensor, steps: int) -> tuple[torch.Tensor, dict[str, dict]]:
    """The configured PDE model on the data's grid, domain and time step, with the checkpoint's coefficients."""
    from hyco.physics import build_physics
    from hyco.training.physical import PhysicalTrainer

    section = dict(ctx.cfg.physics)
    on_data = {"resolution": list(reversed(store.spatial_shape)), "bounds": list(store.bounds), "dt": store.dt}
    section.update({k: v for k, v in on_data.items() if k in section})
    physics = build_physics(section, ctx.device, ctx.dtype)
    fields = [f["name"] for f in store.field_specs]
    if [f.name for f in physics.fields] != fields:
        raise DataError(f"{store.path}: fields {fields}, but the configured PDE model (physics={section['name']}) "
                        f"has {[f.name for f in physics.fields]}; choose the experiment the checkpoint was trained in")
    truth_all = physics.true_coefficients()
    shapes = {k: list(v.shape) for k, v in truth_all.items()}
    if "coefficients" in payload:  # the values themselves: valid on any grid of the same PDE
        saved = {k: list(torch.as_tensor(v).shape) for k, v in payload["coefficients"].items()}
        if saved != shapes:
            raise _mismatch(checkpoint, store.path, "coefficients", saved, shapes, f"physics={section['name']} there")
        coefficients = {k: torch.as_tensor(v).to(ctx.device, ctx.dtype) for k, v in payload["coefficients"].items()}
    else:  # an older checkpoint: only its raw parameters, decoded by this model
        trainer = PhysicalTrainer(ctx.cfg.trainer.physical, physics, device=ctx.device, run_dir=None)
        raw_shapes = {k: list(v.shape) for k, v in trainer.raw.items()}
        if payload.get("coefficient_shapes") != raw_shapes:
            raise _mismatch(checkpoint, store.path, "coefficients", payload.get("coefficient_shapes"), raw_shapes,
                            f"physics={section['name']} there")
        trainer.load_state_dict(payload, source=str(checkpoint))
        coefficients = trainer.coefficients()
    with torch.no_grad():
        parts = [physics.rollout(initial[i:i + BATCH].to(ctx.device, ctx.dtype), coefficients, steps).cpu()
                 for i in range(0, initial.shape[0], BATCH)]
    truth = {k: v for k, v in store.true_coefficients.items() if k in coefficients}
    errors = coefficient_errors({k: v.cpu() for k, v in coefficients.items()}, truth)
    errors.update({name: {"rel_error": None, "truth": "unknown"} for name in coefficients if name not in truth})
    for name, value in coefficients.items():
        errors[name]["learned"] = value.detach().cpu().reshape(-1).tolist() if value.numel() <= 8 else None
    return torch.cat(parts), errors


def _observed_initial(store: TrajectoryStore, split: str, observation) -> torch.Tensor:
    """Frame 0 of every simulation of `split` as `observation` sees it: no model reads a hidden value."""
    from hyco.data.windows import WindowDataset

    windows = WindowDataset(store, split, 1, observation=observation, from_start=True)
    return windows.batch(torch.arange(len(windows))).inputs


def evaluate_checkpoint(ctx: RunContext) -> dict[str, Any]:
    cfg = ctx.cfg.evaluation
    checkpoint = Path(cfg.checkpoint)
    payload = ckpt.load_checkpoint(checkpoint)
    kind = payload.get("kind")
    if kind not in ("synthetic", "physical"):
        hint = " (a HYCO checkpoint holds both models: evaluate its synthetic/ or physical/ best.pt)" \
            if kind == "hybrid" else ""
        raise DataError(f"{checkpoint}: expected a network or physical checkpoint, got kind {kind!r}{hint}")
    if cfg.data:
        data = Path(cfg.data)
        if not data.is_file():
            raise DataError(f"{data}: dataset file not found (data=)")
    else:
        from hyco.tasks.experiment import open_experiment

        data = open_experiment(ctx).dataset_path
    with TrajectoryStore(data) as store:
        split = _split(store, cfg.split)
        truth = store.trajectories(split).to(ctx.dtype)
        initial, steps = _observed_initial(store, split, ctx.cfg.observation).to(ctx.dtype), truth.shape[1] - 1
        if kind == "synthetic":
            prediction, coefficients = _network_rollout(ctx, checkpoint, payload, store, initial, steps), None
        else:
            prediction, coefficients = _physical_rollout(ctx, checkpoint, payload, store, initial, steps)
        dynamic = store.dynamic_channels
    metrics = rollout_metrics(select_channels(prediction, dynamic), select_channels(truth[:, 1:], dynamic),
                              cfg.corr_threshold)
    result = {"checkpoint": str(checkpoint), "kind": "network" if kind == "synthetic" else "physical",
              "data": str(data), "split": split, "rollout": metrics}
    if coefficients is not None:
        result["coefficients"] = coefficients
    path = ctx.run_dir / METRICS
    atomic_write_json(result, path)
    errors = "".join(f", {name} error {fmt(e['rel_error'], missing='unknown')}"
                     for name, e in (coefficients or {}).items())
    log.info("%s on %s (%s, %d simulations): rel. L2 %s, corr. time %.1f steps%s", checkpoint, data, split,
             metrics["num_sims"], fmt(metrics["rel_l2"]), metrics["corr_time"], errors)
    print(path)
    return result
