"""`hyco evaluate`: roll every trained model out on held-out simulations and write metrics.json.

Each model starts from frame 0 of every test trajectory as an observer has it (noisy; with
`observation.initial=observed` filled where hidden, hyco.data.inpaint) and runs autoregressively to the end;
errors against the full, noise-free truth of frames 1.. are taken on the dynamic channels only. The rollouts
of one simulation are kept for the figures.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch

from hyco.data.observation import Observation
from hyco.errors import DataError
from hyco.evaluation.metrics import (
    coefficient_errors,
    field_rollout_metrics,
    json_safe,
    parameter_error,
    rollout_metrics,
    select_channels,
)
from hyco.evaluation.missing_physics import missing_physics_entry, region_rel_l2
from hyco.evaluation.uncertainty import coefficient_entries, field_maps
from hyco.tasks.context import RunContext
from hyco.tasks.ensemble import ensemble_members
from hyco.tasks.experiment import PHYSICAL_BEST, PHYSICAL_CHECKPOINT, Experiment, open_experiment, read_summary
from hyco.tasks.floor import read_model_floor
from hyco.training.ensemble import ensemble_posterior
from hyco.training.identifiability import CLASSES
from hyco.utils.io import atomic_torch_save, atomic_write_json
from hyco.utils.log import fmt

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
ROLLOUTS_FILE = "evaluation/rollouts.pt"
UNCERTAINTY_FILE = "evaluation/uncertainty.pt"  # std and class maps of learned fields (hyco.evaluation.uncertainty)
# run key -> (run directory relative to the experiment's run_dir, kind)
RUNS = {
    "physical": ("physical", "physical"),
    "synthetic": ("synthetic", "synthetic"),
    "hyco_physical": ("hyco/physical", "physical"),
    "hyco_synthetic": ("hyco/synthetic", "synthetic"),
    "synthetic_matched": ("synthetic_matched", "synthetic"),  # the network alone, HYCO's samples and steps
}
_SUMMARY_DIRS = {"physical": "physical", "synthetic": "synthetic", "hyco_physical": "hyco", "hyco_synthetic": "hyco",
                 "synthetic_matched": "synthetic_matched"}


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


@torch.no_grad()
def physical_rollout(exp: Experiment, coefficients: dict[str, torch.Tensor], initial: torch.Tensor,
                     steps: int, batch: int = 16) -> torch.Tensor:
    parts = [exp.physics.rollout(initial[rows].to(exp.ctx.device), coefficients, steps).cpu()
             for rows in _chunks(initial.shape[0], batch)]
    return torch.cat(parts)


@torch.no_grad()
def network_rollout(network, initial: torch.Tensor, steps: int, device: torch.device, batch: int = 16) -> torch.Tensor:
    network.eval()
    parts = [network.rollout(initial[rows].to(device), steps).cpu() for rows in _chunks(initial.shape[0], batch)]
    return torch.cat(parts)


def load_network(exp: Experiment, run_dir: Path):
    """The network of a synthetic run: `best.pt` (chosen on validation loss) if present, else `last.pt`."""
    from hyco.training import checkpoint as ckpt

    path = run_dir / "best.pt" if (run_dir / "best.pt").exists() else run_dir / "last.pt"
    payload = ckpt.load_checkpoint(path)
    network = exp.surrogate()
    if payload.get("fingerprint") != network.fingerprint():
        raise DataError(f"{path}: made for a different network config than the current one; evaluate with the "
                        "config the run was trained with")
    network.load_state_dict(payload["model"])
    return network, path


def load_physical(exp: Experiment, run_dir: Path):
    """The trainer state of a physical run: `best.pt` (the epoch or HYCO cycle with the lowest observed
    validation error) if present, else the last state `physical.pt`; and the file it came from."""
    path = run_dir / PHYSICAL_BEST if (run_dir / PHYSICAL_BEST).exists() else run_dir / PHYSICAL_CHECKPOINT
    trainer = exp.physical_trainer(None, validation=False)
    trainer.load(path)
    return trainer, path


def coefficient_posterior(exp: Experiment, trainer):
    """The Laplace posterior (hyco.training.laplace) of the trainer's learned coefficients, as they are, from the
    observed values of the real windows its data term fits (whole trajectories from frame 0 when its windows
    would need completed inputs), in batches of the objective's size. With observation noise the configured
    noise weighs the residuals, and for trajectories its share on frame 0, carried by the rollout, is counted."""
    from hyco.tasks.ensemble import posterior_batches
    from hyco.training.laplace import laplace_posterior

    batches, windows = posterior_batches(exp, trainer)
    prior = exp.cfg.evaluation.uncertainty_prior
    observation = windows.observation
    noise = None
    if observation is not None and observation.has_noise:  # known: the residuals are weighed by it
        noise = observation.noise_std.index_select(0, trainer.dynamic.cpu()).to(trainer.device, torch.float64)
    return laplace_posterior(exp.physics, trainer.raw, trainer.learnable, batches, trainer.dynamic,
                             smoothness=trainer.config.smoothness if prior == "regulariser" else 0.0,
                             rank=exp.cfg.evaluation.uncertainty_rank, noise=noise,
                             input_noise=noise if windows.from_start else None)


def _coefficient_report(exp: Experiment, trainer, observed_region: torch.Tensor) -> dict[str, dict]:
    """Errors of every coefficient against the truth (inside/outside the observed region for fields), the
    learned numbers' error for parametric ones, and which coefficients were known (never learned)."""
    coefficients = trainer.coefficients()
    known_truth = exp.true_coefficients()
    report = coefficient_errors(coefficients, known_truth, observed_region)
    report.update({name: {"rel_error": None, "truth": "unknown"} for name in coefficients if name not in known_truth})
    if hasattr(exp.physics, "parameter_values"):
        truth = exp.physics.true_parameters()
        for name, numbers in exp.physics.parameter_values(trainer.raw).items():
            if name not in known_truth:
                continue
            errors = parameter_error(numbers, truth[name])
            report[name].update({"parameter_rel_error": errors["rel_error"], "parameter_groups": errors["groups"],
                                 "parameters": {g: v.detach().cpu().reshape(-1).tolist() for g, v in numbers.items()},
                                 "true_parameters": {g: v.reshape(-1).tolist() for g, v in truth[name].items()}})
    for name in getattr(exp.physics, "known_coefficients", []):
        if name in report:
            report[name]["known"] = True
    return report


def evaluate(exp: Experiment) -> dict[str, Any]:
    ctx, cfg = exp.ctx, exp.cfg
    split = cfg.evaluation.split
    if exp.store.num_sims(split) == 0:
        raise DataError(f"{exp.dataset_path}: the {split} split is empty; set data.num_{split} >= 1")
    truth = exp.trajectories(split)
    initial = exp.initial_states(split)  # what an observer has of frame 0: no model reads the hidden truth
    steps = truth.shape[1] - 1
    dynamic = exp.physics.dynamic_channels
    target = select_channels(truth[:, 1:], dynamic)
    true_coefficients = exp.true_coefficients()  # data made elsewhere: only those known
    fields = [dataclasses.asdict(f) for f in exp.physics.fields]
    observation = Observation.from_store(cfg.observation, exp.store)
    observed_region = observation.frame_masks[1:].amax(dim=(0, 1)).bool()  # [*space]: observed in some frame
    runs: dict[str, Any] = {}
    kept: dict[str, torch.Tensor] = {}
    learned: dict[str, dict[str, list]] = {}
    maps: dict[str, dict] = {}  # per physical run: std and class maps of its field coefficients
    members = None  # uncertainty=ensemble: (the members' raw coefficients, how they were made), shared by the runs
    sim = min(cfg.evaluation.animation_sim, truth.shape[0] - 1)
    declared, region = _missing_physics(exp)
    region_errors: dict[str, float | None] = {}
    for key, (relative, kind) in RUNS.items():
        run_dir = ctx.run_dir / relative
        if kind == "physical":
            if not (run_dir / PHYSICAL_CHECKPOINT).exists():
                continue
            trainer, path = load_physical(exp, run_dir)
            coefficients = trainer.coefficients()
            prediction = physical_rollout(exp, coefficients, initial, steps)
            entry: dict[str, Any] = {"coefficients": _coefficient_report(exp, trainer, observed_region)}
            if cfg.evaluation.uncertainty != "off" and trainer.learnable:
                if cfg.evaluation.uncertainty == "ensemble":
                    members = members or ensemble_members(exp, trainer, cfg.evaluation.ensemble_size)
                    posterior = ensemble_posterior(exp.physics, trainer.raw, trainer.learnable, members[0],
                                                   members[1]["member_seconds"], members[1])
                else:
                    posterior = coefficient_posterior(exp, trainer)
                for name, extra in coefficient_entries(posterior, observed_region, true_coefficients).items():
                    entry["coefficients"].setdefault(name, {}).update(extra)
                entry["uncertainty"] = posterior.summary()
                maps[key] = {name: {k: torch.from_numpy(v) for k, v in m.items()}
                             for name, m in field_maps(posterior).items()}
                log.info("%s: %s", key, "; ".join(
                    e["identifiability"] + (f" ({float(coefficients[n]):.4g}, 95 % interval {e['interval'][0]:.4g} to "
                                            f"{e['interval'][1]:.4g})" if "interval" in e else "")
                    for n, e in entry["coefficients"].items() if "identifiability" in e))
            learned[key] = {k: v.cpu().tolist() for k, v in coefficients.items()}
            source = str(path)
        else:
            if not (run_dir / "last.pt").exists():
                continue
            network, path = load_network(exp, run_dir)
            prediction = network_rollout(network, initial, steps, ctx.device)
            entry = {}
            source = str(path)
        summary = rollout_metrics(select_channels(prediction, dynamic), target, cfg.evaluation.corr_threshold)
        entry["rollout"] = json_safe(summary)
        if region is not None:  # where the term the solver lacks acts (hyco.evaluation.missing_physics)
            region_errors[key] = region_rel_l2(select_channels(prediction, dynamic), target, region)
        entry["fields"] = field_rollout_metrics(prediction, truth[:, 1:], fields, cfg.evaluation.corr_threshold)
        entry["selected"] = _selection(ctx.run_dir, key, path)
        training = read_summary(ctx.run_dir / _SUMMARY_DIRS[key])
        entry["train_seconds"] = training.get("train_seconds")
        if training.get("phase_seconds") and key == "hyco_physical":
            entry["phase_seconds"] = training["phase_seconds"]  # HYCO's cycles by phase (one entry: one run)
        if training.get("matched"):
            entry["matched"] = training["matched"]  # how the compute-matched run's epochs were counted
        if key in ("physical", "hyco_physical") and training.get("fitted_on"):
            entry["fitted_on"] = training["fitted_on"]  # what of the real data the solver's data term covers
        if key == "hyco_physical" and training.get("physical_trained") is False:
            entry["trained"] = False  # every cycle skipped its phase: the coefficients are the initial guess
        if key == "hyco_physical" and training.get("physical_worse_than_guess") is not None:
            entry["worse_than_initial_guess"] = bool(training["physical_worse_than_guess"])  # see below
            if entry["worse_than_initial_guess"]:
                log.warning("%s: not learned -- its kept solver explains the observed validation data worse than its "
                            "initial guess (MSE %s against %s)", key, fmt(training.get("best_physical_val_loss")),
                            fmt(training.get("initial_physical_val_loss")))
        entry["checkpoint"] = source
        runs[key] = entry
        kept[key] = prediction[sim]
        log.info("%s: rel. L2 %s, corr. time %.1f steps%s", key, fmt(entry["rollout"]["rel_l2"]),
                 summary["corr_time"],
                 "".join(f", {n} error {fmt(e['rel_error']) if e.get('truth') != 'unknown' else 'unknown'}"
                         for n, e in entry.get("coefficients", {}).items()))
    if not runs:
        raise DataError(f"{ctx.run_dir}: no trained model found (expected physical/, synthetic/ or hyco/ from "
                        "`hyco train`); set output_dir to a run directory")
    metrics = {
        "experiment": cfg.experiment_name,
        "split": split,
        "num_sims": int(truth.shape[0]),
        "num_steps": steps,
        "dt": exp.physics.dt,
        "corr_threshold": cfg.evaluation.corr_threshold,
        "domain": _domain(exp.physics),
        "dataset": str(exp.dataset_path),
        "true_coefficients": {k: v.cpu().tolist() for k, v in true_coefficients.items()},
        "unknown_coefficients": [s.name for s in exp.physics.coefficient_specs if s.name not in true_coefficients],
        "initial_coefficients": {k: v.cpu().tolist() for k, v in exp.physics.initial_guess().items()},
        "learned_coefficients": learned,
        "observation": _observation_summary(cfg.observation, observation, observed_region),
        "judge": f"the full, noise-free truth of the held-out {split} split (seen by no model during training)",
        "reference": exp.store.attrs.get("reference", "the learning solver itself"),
        "runs": runs,
    }
    floor = read_model_floor(ctx)
    if floor is not None:
        metrics["model_floor"] = floor
    if declared is not None:
        metrics["missing_physics"] = json_safe(missing_physics_entry(declared, metrics, region, region_errors))
        log.info("missing physics: %s", metrics["missing_physics"]["sentence"])
    atomic_write_json(metrics, ctx.run_dir / METRICS_FILE)
    atomic_torch_save({"sim": sim, "truth": truth[sim].float(), "predictions": {k: v.float() for k, v in kept.items()},
                       "dynamic_channels": dynamic, "fields": fields, "dt": exp.physics.dt,
                       "domain": _domain(exp.physics),
                       "observed_space": observation.frame_masks.amax(dim=0).float(),
                       "observed_frames": observation.temporal,
                       "sensor_tracks": observation.sensor_positions.float() if observation.sensors else None},
                      ctx.run_dir / ROLLOUTS_FILE)
    if any(maps.values()):
        atomic_torch_save({"runs": maps, "classes": list(CLASSES)}, ctx.run_dir / UNCERTAINTY_FILE)
    log.info("metrics written to %s", ctx.run_dir / METRICS_FILE)
    return metrics


def _missing_physics(exp: Experiment) -> tuple[dict | None, torch.Tensor | None]:
    """What the data's simulator has that the learner lacks, and where it acts (None, None: nothing declared)."""
    from hyco.data.reference import missing_term_region, missing_terms, reference_plan

    if exp.cfg.data.external.enabled:
        return None, None
    plan = reference_plan(exp.cfg.data.reference, exp.physics)
    declared = missing_terms(plan, str(exp.cfg.physics.get("name", "?")))
    if declared is None:
        return None, None
    return declared, missing_term_region(dict(exp.cfg.physics), plan, exp.physics)


def _domain(physics) -> dict[str, list[float]]:
    """Where the grid lies, per axis x first: the figures' axes read in the domain's units."""
    return {"origin": list(physics.origin), "bounds": list(physics.bounds)}


def _observation_summary(config, observation: Observation, observed_region: torch.Tensor) -> dict[str, Any]:
    """What the models saw, for metrics.json and the report."""
    return {"spatial": config.spatial, "temporal": config.temporal, "fields": list(config.fields) or "all dynamic",
            "states": config.states, "initial": config.initial, "initial_fill": config.initial_fill,
            "noise_level": config.noise_level, "noise_levels": dict(config.noise_levels),
            "observed_space_fraction": float(observed_region.float().mean()),
            "observed_frame_fraction": observation.temporal_fraction,
            "description": observation.describe()}


def _selection(run_dir: Path, key: str, checkpoint: Path) -> str:
    """Which state of a run is evaluated, and why (always chosen on observed validation data)."""
    if key == "hyco_physical":
        cycle = read_summary(run_dir / "hyco").get("best_physical_cycle")
        if checkpoint.name == PHYSICAL_BEST and cycle is not None:
            return f"cycle {cycle} (lowest observed validation error)"
    if key == "physical" and checkpoint.name == PHYSICAL_BEST:
        epoch = read_summary(run_dir / "physical").get("best_epoch")
        return f"epoch {epoch} (lowest observed validation error)"
    if checkpoint.name == "best.pt":
        from hyco.training import checkpoint as ckpt

        epoch = ckpt.load_checkpoint(checkpoint).get("epoch")
        return f"epoch {epoch} (lowest observed validation error)"
    return "the last state"


def evaluate_task(ctx: RunContext) -> dict[str, Any]:
    return evaluate(open_experiment(ctx))
