"""`hyco report`: figures and report.html / report.md from an evaluated run directory.

This task reads the files (metrics.json, the kept rollouts, the training records, the timings of `hyco run`)
and hands plain data to `hyco.evaluation`, which decides what to show.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from hyco.errors import DataError
from hyco.evaluation.comparison import coefficient_table, rollout_table
from hyco.evaluation.figure_style import run_label
from hyco.evaluation.report import Section, write_report
from hyco.evaluation.report_figures import PHYSICAL_RECORDS, Rollouts, Training, make_figures
from hyco.evaluation.verdict import setting_lines, verdict
from hyco.tasks.context import RunContext
from hyco.tasks.evaluate import METRICS_FILE, ROLLOUTS_FILE, UNCERTAINTY_FILE
from hyco.tasks.experiment import read_summary
from hyco.training.run_log import METRICS_FILE as JSONL
from hyco.utils.io import atomic_write_json

log = logging.getLogger(__name__)

TIMINGS_FILE = "timings.json"  # seconds per phase of `hyco run`, written before the report
RECORD_DIRS = ("physical", "synthetic", "hyco", *PHYSICAL_RECORDS.values())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_training(run_dir: Path) -> Training:
    records = {d: _read_jsonl(run_dir / d / JSONL) for d in dict.fromkeys(RECORD_DIRS)}
    summaries = {d: read_summary(run_dir / d) for d in ("physical", "synthetic", "hyco")}
    return Training({d: r for d, r in records.items() if r}, {d: s for d, s in summaries.items() if s})


def read_rollouts(path: Path) -> Rollouts:
    kept = torch.load(path, map_location="cpu", weights_only=True)
    observed = kept.get("observed_space")
    frames = kept.get("observed_frames")
    return Rollouts(sim=int(kept["sim"]), truth=kept["truth"].numpy(),
                    predictions={k: v.numpy() for k, v in kept["predictions"].items()}, fields=kept["fields"],
                    observed_space=None if observed is None else observed.numpy(),
                    observed_frames=None if frames is None else torch.as_tensor(frames).numpy(),
                    domain=kept.get("domain"),
                    sensor_tracks=None if kept.get("sensor_tracks") is None else kept["sensor_tracks"].numpy())


def figure_workers() -> int:
    """Processes that draw the figures side by side: the job's thread budget (`threads`, OMP_NUM_THREADS),
    at most 4 (a report has about eight figures of unequal cost)."""
    return max(1, min(4, torch.get_num_threads()))


def write_timings(run_dir: Path, seconds: dict[str, float]) -> None:
    atomic_write_json(seconds, run_dir / TIMINGS_FILE)


def _timings(run_dir: Path, metrics: dict[str, Any]) -> dict[str, float]:
    """Every phase `hyco run` timed (for a run made of separate commands, each model's training time), with HYCO's
    training split into the phases of its cycles right after it."""
    path = run_dir / TIMINGS_FILE
    if path.exists():
        timings = json.loads(path.read_text())
    else:
        timings = {f"train {run_label(k) if not k.startswith('hyco') else 'HYCO'}": r["train_seconds"]
                   for k, r in metrics["runs"].items() if r.get("train_seconds") is not None and k != "hyco_synthetic"}
    phases = (metrics["runs"].get("hyco_physical") or {}).get("phase_seconds") or {}
    rows = [(f"HYCO: {name.replace('_', ' ')}", seconds) for name, seconds in phases.items() if seconds]
    if not rows:
        return timings
    keys = list(timings)
    after = next((i for i, k in enumerate(keys) if k in ("hybrid", "train HYCO")), len(keys) - 1)
    ordered = [(k, timings[k]) for k in keys[:after + 1]] + rows + [(k, timings[k]) for k in keys[after + 1:]]
    return dict(ordered)


def report(ctx: RunContext) -> Path:
    start = time.perf_counter()
    run_dir = ctx.run_dir
    metrics_path = run_dir / METRICS_FILE
    if not metrics_path.exists():
        raise DataError(f"{metrics_path}: not found; run `hyco evaluate output_dir={run_dir}` first")
    metrics = json.loads(metrics_path.read_text())
    rollouts_path = run_dir / ROLLOUTS_FILE
    if not rollouts_path.exists():
        raise DataError(f"{rollouts_path}: not found; run `hyco evaluate output_dir={run_dir}` first")
    uncertainty_path = run_dir / UNCERTAINTY_FILE
    uncertainty = torch.load(uncertainty_path, weights_only=True) if uncertainty_path.exists() else None
    figures = make_figures(metrics, read_rollouts(rollouts_path), read_training(run_dir), run_dir / "figures",
                           ctx.cfg.evaluation.plot_times, ctx.cfg.evaluation.animation, figure_workers(),
                           uncertainty=uncertainty)
    config_file = run_dir / ".hydra" / "config.yaml"
    if config_file.exists():
        config_yaml = config_file.read_text()
    else:
        from omegaconf import OmegaConf

        config_yaml = OmegaConf.to_yaml(OmegaConf.structured(ctx.cfg))
    tables = [Section("Rollout errors on the held-out simulations", rollout_table(metrics))]
    coefficients = coefficient_table(metrics)
    if coefficients is not None:
        tables.append(Section("Learned coefficients against the truth", coefficients))
    timings = _timings(run_dir, metrics)
    timings["report (figures and tables)"] = time.perf_counter() - start
    _, html_path = write_report(run_dir, metrics, figures, config_yaml, setting_lines(metrics), timings,
                                verdict=verdict(metrics), tables=tables)
    log.info("report written to %s in %.2f s", html_path, time.perf_counter() - start)
    return html_path


def report_task(ctx: RunContext) -> Path:
    path = report(ctx)
    print(path)
    return path
