"""`hyco report`: figures and report.html / report.md from an evaluated run directory."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyco.config.errors import DataError
from hyco.context import RunContext
from hyco.evaluation import plots
from hyco.evaluation.evaluate import METRICS_FILE, ROLLOUTS_FILE
from hyco.evaluation.report import RUN_LABELS, Figure, write_report
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


def display_quantity(frames: np.ndarray, fields: list[dict[str, Any]]) -> tuple[np.ndarray, str]:
    """One scalar per grid point for the figures: the first dynamic field (its magnitude if a vector)."""
    start = 0
    for field in fields:
        if field["dynamic"]:
            part = frames[:, start:start + field["channels"]]
            if field["channels"] == 1:
                return part[:, 0], field["name"]
            return np.sqrt((part**2).sum(axis=1)), f"|{field['name']}|"
        start += field["channels"]
    return frames[:, 0], "channel 0"


def make_figures(run_dir: Path, metrics: dict[str, Any], rollouts: dict[str, Any], cfg) -> list[Figure]:
    figures_dir = run_dir / "figures"
    dt = float(metrics.get("dt", 1.0))
    truth = rollouts["truth"].numpy()
    fields = rollouts["fields"]
    shown_truth, quantity = display_quantity(truth, fields)
    shown = {}
    for key, prediction in rollouts["predictions"].items():
        frames = np.concatenate([truth[:1], prediction.numpy()], axis=0)  # align: frame 0 is the shared start
        shown[RUN_LABELS.get(key, key)] = display_quantity(frames, fields)[0]
    figures: list[Figure] = []
    steps = shown_truth.shape[0] - 1
    times = sorted({int(round(x)) for x in np.linspace(0, steps, cfg.evaluation.plot_times + 1)[1:]} | {0})
    figures.append(Figure(
        "Truth and models on a held-out simulation",
        plots.plot_snapshots(shown_truth, shown, times, figures_dir / "snapshots.png", dt=dt,
                             title=f"{quantity}, test simulation {rollouts['sim']}"),
        f"{quantity}; every model starts from the same initial state and rolls out on its own; one colour scale."))
    curves = {RUN_LABELS.get(k, k): [np.nan if x is None else x for x in run["rollout"]["per_step"]["rel_l2"]]
              for k, run in metrics["runs"].items()}
    figures.append(Figure("Error over the rollout",
                          plots.plot_error_curves(curves, figures_dir / "rollout_error.png", dt=dt),
                          "Relative L2 error per step, mean over the held-out simulations."))
    figures += _coefficient_figures(run_dir, metrics, figures_dir)
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
                              "Per epoch (per cycle for HYCO): training loss, validation loss, physical loss."))
    if cfg.evaluation.animation:
        figures.append(Figure("Animation", plots.animate(shown_truth, shown, figures_dir / "rollout.gif", dt=dt),
                              f"{quantity} over the whole held-out trajectory."))
    return figures


def _coefficient_figures(run_dir: Path, metrics: dict[str, Any], figures_dir: Path) -> list[Figure]:
    figures = []
    for name, true in metrics.get("true_coefficients", {}).items():
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
            learned = {RUN_LABELS.get(k, k): np.broadcast_to(np.asarray(v[name], dtype=float), true.shape)
                       for k, v in metrics.get("learned_coefficients", {}).items() if name in v}
            if learned:
                figures.append(Figure(f"Learned {name}", plots.plot_field_coefficients(
                    true, learned, figures_dir / f"coefficient_{name}.png", name),
                    f"The true field {name} and the learned ones."))
    return figures


def _summary_lines(metrics: dict[str, Any], cfg) -> list[str]:
    lines = [f"Experiment `{metrics['experiment']}`: {metrics['num_sims']} held-out {metrics['split']} "
             f"simulations of {metrics['num_steps']} steps (dt = {metrics['dt']:.4g}).",
             f"Observations: {cfg.observation.spatial} in space, {cfg.observation.temporal} in time, "
             f"noise level {cfg.observation.noise_level:g}."]
    runs = metrics["runs"]
    rel = {k: r["rollout"]["rel_l2"] for k, r in runs.items() if r["rollout"]["rel_l2"] is not None}
    if rel:
        best = min(rel, key=rel.get)
        lines.append(f"Lowest rollout error: {RUN_LABELS.get(best, best)} (relative L2 {rel[best]:.3g}).")
    for name in metrics.get("true_coefficients", {}):
        errors = {k: r["coefficients"][name]["rel_error"] for k, r in runs.items() if name in r.get("coefficients", {})}
        if errors:
            text = ", ".join(f"{RUN_LABELS.get(k, k)} {v:.3g}" for k, v in errors.items())
            lines.append(f"Relative error of the learned {name}: {text}.")
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
