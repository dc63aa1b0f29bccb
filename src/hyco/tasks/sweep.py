"""What a sweep (`hyco <task> -m ...`) leaves besides its jobs' run directories: one record per job
(`<job dir>/job.json`: its overrides, status, error and headline figures) and, once every job has ended, the
sweep's summary (`<sweep dir>/sweep.json` and `sweep.md`, one row per job).

Headline figures come from the job's `metrics.json` (a `run` or `evaluate` job): per model the rollout's
relative L2 error over the test simulations and each learned coefficient's relative error.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from hyco.utils.io import atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

JOB_RECORD = "job.json"
SUMMARY_JSON, SUMMARY_MD = "sweep.json", "sweep.md"
RUNNING, COMPLETED, FAILED, STOPPED = "running", "completed", "failed", "stopped"


def headline(run_dir: Path) -> dict[str, dict[str, float | None]]:
    """Per model of the run's metrics.json: `rollout_rel_l2` and `<coefficient>_rel_error`; {} without one."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        runs = json.loads(path.read_text()).get("runs", {})
    except (OSError, ValueError):
        return {}
    out: dict[str, dict[str, float | None]] = {}
    for model, run in runs.items():
        figures: dict[str, float | None] = {"rollout_rel_l2": (run.get("rollout") or {}).get("rel_l2")}
        for name, entry in (run.get("coefficients") or {}).items():
            if not entry.get("known"):
                figures[f"{name}_rel_error"] = entry.get("rel_error")
        out[model] = figures
    return out


def write_job_record(run_dir: Path, *, num: int, overrides: list[str], status: str, started: float,
                     error: str | None = None) -> None:
    """Write (or rewrite) the job's record; `started` is its `time.time()` at the start."""
    record: dict[str, Any] = {"name": Path(run_dir).name, "num": num, "overrides": overrides, "status": status,
                              "started": started, "seconds": round(time.time() - started, 3)}
    if error:
        record["error"] = error
    if status != RUNNING:
        record["headline"] = headline(run_dir)
    atomic_write_json(record, Path(run_dir) / JOB_RECORD)


def read_job_records(sweep_dir: Path) -> list[dict]:
    """The records of the jobs under `sweep_dir`, in job order."""
    records = []
    for path in sorted(Path(sweep_dir).glob(f"*/{JOB_RECORD}")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            records.append({"name": path.parent.name, "status": "unreadable record", "num": 10**9})
    return sorted(records, key=lambda r: (r.get("num", 10**9), r.get("name", "")))


def write_sweep_summary(sweep_dir: Path, launched: int | None) -> tuple[Path, list[dict]]:
    """Write sweep.json and sweep.md under `sweep_dir` from the job records; returns (sweep.md, the records).
    `launched`: the number of jobs started (None: as many as there are records)."""
    sweep_dir = Path(sweep_dir)
    records = read_job_records(sweep_dir)
    launched = len(records) if launched is None else launched
    atomic_write_json({"sweep_dir": str(sweep_dir), "launched": launched, "jobs": records}, sweep_dir / SUMMARY_JSON)
    atomic_write_text(_markdown(records, launched), sweep_dir / SUMMARY_MD)
    return sweep_dir / SUMMARY_MD, records


def _markdown(records: list[dict], launched: int) -> str:
    figures = sorted({f"{model}: {key}" for r in records for model, fig in (r.get("headline") or {}).items()
                      for key in fig})
    header = ["job", "status", "seconds", *figures]
    lines = [f"# Sweep: {len(records)} of {launched} jobs recorded", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in records:
        values = []
        for column in figures:
            model, key = column.split(": ", 1)
            value = (r.get("headline") or {}).get(model, {}).get(key)
            values.append(f"{value:.4g}" if isinstance(value, (int, float)) else "–")
        status = r.get("status", "?") + (f" ({r['error']})" if r.get("error") else "")
        lines.append("| " + " | ".join([r.get("name", "?"), status.replace("|", "/"),
                                         f"{r.get('seconds', 0):.1f}", *values]) + " |")
    if len(records) < launched:
        lines += ["", f"{launched - len(records)} job(s) left no record (refused before they started: another "
                      "process held their directory)."]
    return "\n".join(lines) + "\n"


def sweep_overrides(overrides: list[str], jobs: list[list[str]], pinned_dir: Path | None) -> list[str]:
    """The command line's overrides plus what hyco adds to a sweep: the jobs are named by the keys whose
    values differ (the others go to Hydra's `exclude_keys`), and a sweep directory that names the start time
    is fixed once (`pinned_dir`), so every job lands in the same one."""
    from hyco.config.sweep_names import constant_keys

    same = sorted({*constant_keys(jobs), "output_dir", "task"})
    extra = [f"output_dir={pinned_dir}"] if pinned_dir is not None else []
    return [*overrides, *extra, f"hydra.job.config.override_dirname.exclude_keys=[{','.join(same)}]"]


def check_sweep(sweep_dir: Path, launched: int | None) -> Path:
    """Write the summary after the last job; returns sweep.md's path, or raises HycoError (one line) naming how
    many jobs did not complete and the first of them."""
    from hyco.errors import HycoError

    path, records = write_sweep_summary(sweep_dir, launched)
    launched = len(records) if launched is None else launched
    failed = [r for r in records if r.get("status") != COMPLETED]
    if failed or len(records) < launched:
        print(path)
        first = failed[0] if failed else {"name": "?", "error": "no record"}
        raise HycoError(f"{len(failed) + launched - len(records)} of {launched} jobs did not complete (first: "
                        f"{first.get('name')}: {first.get('error', first.get('status'))}); see {path}")
    return path
