"""`hyco report`: figures and report.html / report.md from an evaluated run directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyco.config.errors import DataError
from hyco.evaluation import plots
from hyco.evaluation.report import RUN_LABELS, Figure, write_report
from hyco.tasks.context import RunContext
from hyco.tasks.evaluate import METRICS_FILE, ROLLOUTS_FILE
from hyco.tasks.experiment import read_summary
from hyco.training.run_log import METRICS_FILE as JSONL

log = logging.getLogger(__name__)

# where each run's per-epoch records live, relative to the run directory
TRAINING_LOGS = {
    "physical only": "physical",
    "synthetic only": "synthetic",
    "HYCO (cycles)": "hyco",
}
PHYSICAL_TRACES = {"physical": "physical", "hyco_physical": "hyco/physical"}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def field_quantity(frames: np.ndarray, fields: list[dict[str, Any]], name: str) -> np.ndarray:
    """One scalar per grid point of field `name` for the figures (its magnitude if a vector)."""
    start = 0
    for field in fields:
        part = frames[:, start:start + field["channels"]]
        if field["name"] == name:
            return part[:, 0] if field["channels"] == 1 else np.sqrt((part**2).sum(axis=1))
        start += field["channels"]
    raise KeyError(name)


def _label(field: dict[str, Any]) -> str:
    return field["name"] if field["channels"] == 1 else f"|{field['name']}|"


def make_figures(run_dir: Path, metrics: dict[str, Any], rollouts: dict[str, Any], cfg) -> list[Figure]:
    figures_dir = run_dir / "figures"
    dt = float(metrics.get("dt", 1.0))
    truth = rollouts["truth"].numpy()
    fields = rollouts["fields"]
    dynamic = [f for f in fields if f["dynamic"]]
    figures: list[Figure] = []
    if "observed_space" in rollouts:
        figures.append(_observation_figure(rollouts, fields, figures_dir, metrics))
    steps = truth.shape[0] - 1
    times = sorted({int(round(x)) for x in np.linspace(0, steps, cfg.evaluation.plot_times + 1)[1:]} | {0})
    for field in dynamic:
        name = field["name"]
        shown_truth = field_quantity(truth, fields, name)
        shown = {}
        for key, prediction in rollouts["predictions"].items():
            frames = np.concatenate([truth[:1], prediction.numpy()], axis=0)  # align: frame 0 is the shared start
            shown[RUN_LABELS.get(key, key)] = field_quantity(frames, fields, name)
        suffix = "" if len(dynamic) == 1 else f"_{name}"
        figures.append(Figure(
            "Truth and models on a held-out simulation" + ("" if len(dynamic) == 1 else f": {name}"),
            plots.plot_snapshots(shown_truth, shown, times, figures_dir / f"snapshots{suffix}.png", dt=dt,
                                 title=f"{_label(field)}, test simulation {rollouts['sim']}"),
            f"{_label(field)}; every model starts from the same initial state as observed (noisy; filled where "
            "hidden) and rolls out on its own; one colour scale."))
        if field is dynamic[0] and cfg.evaluation.animation:
            animation_args = (shown_truth, shown, figures_dir / "rollout.gif")
    curves = {RUN_LABELS.get(k, k): [np.nan if x is None else x for x in run["rollout"]["per_step"]["rel_l2"]]
              for k, run in metrics["runs"].items()}
    figures.append(Figure("Error over the rollout",
                          plots.plot_error_curves(curves, figures_dir / "rollout_error.png", dt=dt),
                          "Relative L2 error per step (all dynamic fields), mean over the held-out simulations, "
                          "against the full truth."))
    if len(dynamic) > 1:
        for field in dynamic:
            name = field["name"]
            curves = {RUN_LABELS.get(k, k): [np.nan if x is None else x
                                            for x in run.get("fields", {}).get(name, {}).get("per_step_rel_l2", [])]
                      for k, run in metrics["runs"].items()}
            figures.append(Figure(f"Error over the rollout: {name}",
                                  plots.plot_error_curves(curves, figures_dir / f"rollout_error_{name}.png", dt=dt),
                                  f"Relative L2 error per step of {name} alone."))
    figures += _coefficient_figures(run_dir, metrics, figures_dir)
    cycles = _cycle_figure(run_dir, metrics, figures_dir)
    if cycles is not None:
        figures.append(cycles)
    curves_by_run: dict[str, dict[str, list[float]]] = {}
    for label, relative in TRAINING_LOGS.items():
        records = _read_jsonl(run_dir / relative / JSONL)
        keys = ("train_loss", "val_loss", "loss", "synthetic_loss", "physical_loss")
        run_curves = {k: [r[k] for r in records if isinstance(r.get(k), (int, float))] for k in keys}
        run_curves = {k: v for k, v in run_curves.items() if v}
        if run_curves:
            curves_by_run[label] = run_curves
    if curves_by_run:
        figures.append(Figure("Training curves", plots.plot_training_curves(curves_by_run,
                                                                             figures_dir / "training.png"),
                              "Per epoch (per cycle for HYCO): training loss, observed validation loss, "
                              "physical loss."))
    if cfg.evaluation.animation and dynamic:
        figures.append(Figure("Animation", plots.animate(*animation_args, dt=dt),
                              f"{_label(dynamic[0])} over the whole held-out trajectory."))
    return figures


def _observation_figure(rollouts: dict[str, Any], fields: list[dict[str, Any]], figures_dir: Path,
                        metrics: dict[str, Any]) -> Figure:
    space = rollouts["observed_space"].numpy()  # [1|C, *space]
    names: list[str] = []
    if space.shape[0] > 1:  # one mask per channel: one panel per dynamic field
        panels, start = [], 0
        for field in fields:
            if field["dynamic"]:
                panels.append(space[start:start + field["channels"]].max(axis=0))
                names.append(field["name"])
            start += field["channels"]
        space = np.stack(panels)
    observation = metrics.get("observation", {})
    if observation.get("states") != "initial":
        states = "every input state is known in full (oracle states); only the targets are masked"
    elif observation.get("initial") == "observed":
        states = "every frame, frame 0 included, is known only where observed"
    else:
        states = "frame 0 of every trajectory is known in full; later frames only where observed"
    return Figure("What the models saw",
                  plots.plot_observation(space, rollouts["observed_frames"].numpy(), figures_dir / "observation.png",
                                         names),
                  f"Observed grid points and frames of the training and validation data ({states}). "
                  f"{metrics.get('judge', '').capitalize()} is the judge of the comparison.")


def _cycle_figure(run_dir: Path, metrics: dict[str, Any], figures_dir: Path) -> Figure | None:
    records = _read_jsonl(run_dir / "hyco" / JSONL)
    if not records:
        return None
    series: dict[str, list] = {}
    known = known_coefficients(metrics)
    for name in metrics.get("true_coefficients", {}):
        if name not in known and any(f"{name}_rel_error" in r for r in records):
            series[f"coefficient error: {name}"] = [r.get(f"{name}_rel_error") for r in records]
    series["observed validation error: physical"] = [r.get("physical_val_loss") for r in records]
    series["observed validation error: network"] = [r.get("synthetic_val_loss") for r in records]
    for model, label in (("physical", "solver listens to network"), ("synthetic", "network listens to solver")):
        if any(f"{model}_interaction_weight" in r for r in records):
            series[f"interaction weights: {label}"] = [r.get(f"{model}_interaction_weight") for r in records]
    best = read_summary(run_dir / "hyco").get("best_physical_cycle")
    return Figure("HYCO over its cycles", plots.plot_cycles(series, figures_dir / "cycles.png", best),
                  "Per cycle: the coefficient error against the truth (shown, never used), the observed "
                  "validation errors both models are judged on, and the interaction weights they got. The dotted "
                  "line marks the cycle whose physical model is evaluated (lowest observed validation error).")


def known_coefficients(metrics: dict[str, Any]) -> list[str]:
    """Coefficients given, not learned (`physics.<name>.learn: false`)."""
    return sorted({name for run in metrics["runs"].values() for name, e in run.get("coefficients", {}).items()
                   if e.get("known")})


def _coefficient_figures(run_dir: Path, metrics: dict[str, Any], figures_dir: Path) -> list[Figure]:
    figures = []
    known = known_coefficients(metrics)
    for name, true in metrics.get("true_coefficients", {}).items():
        if name in known:
            continue
        true = np.asarray(true, dtype=float)
        if true.ndim == 0:
            traces = {}
            start = metrics.get("initial_coefficients", {}).get(name)
            for key, relative in PHYSICAL_TRACES.items():
                values = [r[name] for r in _read_jsonl(run_dir / relative / JSONL) if name in r]
                if values:
                    traces[RUN_LABELS[key]] = ([start] if start is not None else []) + values
            if traces:
                figures.append(Figure(f"Learned {name}", plots.plot_scalar_traces(
                    traces, float(true), figures_dir / f"coefficient_{name}.png", name),
                    f"{name}: the initial guess (epoch 0) and the value after each physical training epoch, "
                    "against the true value."))
        else:
            figures += _parameter_figures(run_dir, metrics, name, figures_dir)
            learned = {RUN_LABELS.get(k, k): np.broadcast_to(np.asarray(v[name], dtype=float), true.shape)
                       for k, v in metrics.get("learned_coefficients", {}).items() if name in v}
            if learned:
                figures.append(Figure(f"Learned {name}", plots.plot_field_coefficients(
                    true, learned, figures_dir / f"coefficient_{name}.png", name),
                    f"The true field {name} and the learned ones."))
    return figures


def _parameter_figures(run_dir: Path, metrics: dict[str, Any], name: str, figures_dir: Path) -> list[Figure]:
    """A parametric coefficient: each learned number over the physical epochs (HYCO: cycles), per run,
    against its true value."""
    truth = next((r["coefficients"][name].get("true_parameters") for r in metrics["runs"].values()
                  if name in r.get("coefficients", {}) and r["coefficients"][name].get("true_parameters")), None)
    if not truth:
        return []
    traces: dict[str, dict[str, list[list[float]]]] = {}
    for key, relative in PHYSICAL_TRACES.items():
        records = _read_jsonl(run_dir / relative / JSONL)
        for group in truth:
            values = [r[f"{name}.{group}"] for r in records if f"{name}.{group}" in r]
            if values:
                traces.setdefault(group, {})[RUN_LABELS[key]] = values
    if not traces:
        return []
    return [Figure(f"Learned numbers of {name}", plots.plot_parameter_traces(
        traces, truth, figures_dir / f"parameters_{name}.png", name),
        f"The learned numbers of the parametric {name} after each physical epoch (HYCO: each cycle), against "
        "their true values (dashed).")]


def _summary_lines(metrics: dict[str, Any], cfg) -> list[str]:
    lines = [f"Experiment `{metrics['experiment']}`: {metrics['num_sims']} held-out {metrics['split']} "
             f"simulations of {metrics['num_steps']} steps (dt = {metrics['dt']:.4g})."]
    observation = metrics.get("observation")
    if observation:
        lines.append(f"What the models saw: {observation['description']}.")
    else:
        lines.append(f"Observations: {cfg.observation.spatial} in space, {cfg.observation.temporal} in time, "
                     f"noise level {cfg.observation.noise_level:g}.")
    if metrics.get("judge"):
        lines.append(f"Judge: {metrics['judge']}.")
    runs = metrics["runs"]
    rel = {k: r["rollout"]["rel_l2"] for k, r in runs.items() if r["rollout"]["rel_l2"] is not None}
    if rel:
        best = min(rel, key=rel.get)
        lines.append(f"Lowest rollout error: {RUN_LABELS.get(best, best)} (relative L2 {rel[best]:.3g}).")
    known = known_coefficients(metrics)
    if known:
        lines.append(f"Known coefficients (given, never learned): {', '.join(known)}.")
    unknown = [n for n in metrics.get("unknown_coefficients", []) if n not in known]
    if unknown:
        lines.append(f"True value unknown (data made elsewhere; data.external.known_truth names those known): "
                     f"{', '.join(unknown)}.")
    for name in metrics.get("true_coefficients", {}):
        if name in known:
            continue
        errors = {k: r["coefficients"][name]["rel_error"] for k, r in runs.items() if name in r.get("coefficients", {})}
        if errors:
            text = ", ".join(f"{RUN_LABELS.get(k, k)} {v:.3g}" for k, v in errors.items())
            lines.append(f"Relative error of the learned {name}: {text}.")
    if "hyco_synthetic" in runs and "synthetic" in runs and "synthetic_matched" not in runs:
        lines.append("HYCO's network trained on (1 + alpha) x the samples of the network alone; "
                     "trainer.hybrid.matched_baseline=true adds a network alone with as many (docs/results.md).")
    floor = metrics.get("model_floor")
    if floor and floor.get("coefficients"):
        text = ", ".join(f"{name} {error:.3g}" for name, error in floor["coefficients"].items() if error is not None)
        lines.append(f"Model floor (the solver's error on {floor.get('how', 'full, noise-free data')}): {text}.")
    if metrics.get("reference"):
        lines.append(f"Data simulated on: {metrics['reference']}.")
    fitted = [f"{RUN_LABELS.get(k, k)}: {r['fitted_on']}" for k, r in runs.items() if r.get("fitted_on")]
    if fitted:
        lines.append("The solver's data term: " + "; ".join(fitted) + ".")
    selected = [f"{RUN_LABELS.get(k, k)}: {r['selected']}" for k, r in runs.items() if r.get("selected")]
    if selected:
        lines.append("Evaluated states: " + "; ".join(selected) + ".")
    return lines


def report(ctx: RunContext) -> Path:
    run_dir = ctx.run_dir
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.exists():
        raise DataError(f"{metrics_path}: not found; run `hyco evaluate output_dir={run_dir}` first")
    metrics = json.loads(metrics_path.read_text())
    rollouts_path = run_dir / ROLLOUTS_FILE
    if not rollouts_path.exists():
        raise DataError(f"{rollouts_path}: not found; run `hyco evaluate output_dir={run_dir}` first")
    rollouts = torch.load(rollouts_path, map_location="cpu", weights_only=True)
    figures = make_figures(run_dir, metrics, rollouts, ctx.cfg)
    config_file = run_dir / ".hydra" / "config.yaml"
    if config_file.exists():
        config_yaml = config_file.read_text()
    else:
        from omegaconf import OmegaConf

        config_yaml = OmegaConf.to_yaml(OmegaConf.structured(ctx.cfg))
    timings = {f"train {RUN_LABELS.get(k, k)}": r["train_seconds"] for k, r in metrics["runs"].items()
               if r.get("train_seconds") is not None and not k.startswith("hyco_synthetic")}
    _, html_path = write_report(run_dir, metrics, figures, config_yaml, _summary_lines(metrics, ctx.cfg), timings)
    log.info("report written to %s", html_path)
    return html_path


def report_task(ctx: RunContext) -> Path:
    path = report(ctx)
    print(path)
    return path
