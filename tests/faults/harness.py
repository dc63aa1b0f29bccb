"""Running `hyco` as a separate process and hurting it: start, wait for a log line, signal, compare runs."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

QUICK = ["experiment=burgers_2d_quick", "device=cpu"]
# The file a mode continues from, and the metrics logs that must match it (path, step key).
CHECKPOINTS = {"physical": "physical/physical.pt", "synthetic": "synthetic/last.pt", "hybrid": "hyco/hybrid_last.pt"}
METRICS = {"physical": [("physical/metrics.jsonl", "epoch")],
           "synthetic": [("synthetic/metrics.jsonl", "epoch")],
           "hybrid": [("hyco/metrics.jsonl", "cycle"), ("hyco/synthetic/metrics.jsonl", "epoch"),
                      ("hyco/physical/metrics.jsonl", "epoch")]}
TIMING = re.compile(r"seconds|samples_per_s|peak_rss|cuda_peak")


class Hyco:
    """One `python -m hyco ...` process with its stdout and stderr in files."""

    def __init__(self, args: list[str], log_path: Path, env: dict | None = None):
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 (closed in wait(); the child writes to it meanwhile)
        environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.process = subprocess.Popen([sys.executable, "-m", "hyco", *args], stdout=self._log,
                                        stderr=subprocess.STDOUT, env=environment)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 300) -> bool:
        """True once `pattern` (a regex) is in the output; False if the process ended first."""
        regex = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if regex.search(self.text()):
                return True
            if self.process.poll() is not None:
                return bool(regex.search(self.text()))
            time.sleep(0.05)
        raise TimeoutError(f"{pattern!r} not seen in {timeout} s:\n{self.text()[-3000:]}")

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()


def run(args: list[str], log_path: Path, timeout: float = 600) -> tuple[int, str]:
    process = Hyco(args, log_path)
    code = process.wait(timeout)
    return code, process.text()


def kill_at(args: list[str], log_path: Path, start_pattern: str, delay: float,
            signum: int = signal.SIGKILL) -> tuple[int, str, float]:
    """Start, wait for `start_pattern`, sleep `delay` s, send `signum`; returns (exit code, output, seconds
    from the pattern to the end of the process)."""
    process = Hyco(args, log_path)
    seen = process.wait_for(start_pattern)
    started = time.monotonic()
    if seen:
        time.sleep(delay)
        process.signal(signum)
    code = process.wait()
    return code, process.text(), time.monotonic() - started


def _flatten(value, prefix=""):
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "history":  # per-epoch records hold timings
                yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield prefix, torch.tensor(value)


def final_state(run_dir: Path, mode: str) -> dict[str, torch.Tensor]:
    """Every tensor and number of a mode's last checkpoint (weights, optimizer and schedule, counters)."""
    payload = torch.load(run_dir / CHECKPOINTS[mode], map_location="cpu", weights_only=True)
    return dict(_flatten(payload))


def differences(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    """Keys whose values are not bit-identical (or that only one side has)."""
    out = sorted(set(a) ^ set(b))
    out += [k for k in sorted(set(a) & set(b)) if a[k].shape != b[k].shape or not torch.equal(a[k], b[k])]
    return out


def metrics(run_dir: Path, mode: str) -> dict[str, list[dict]]:
    """Each metrics log of a mode with its timing fields removed."""
    out = {}
    for name, _ in METRICS[mode]:
        path = run_dir / name
        records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        out[name] = [{k: v for k, v in r.items() if not TIMING.search(k)} for r in records]
    return out


def metrics_problems(run_dir: Path, mode: str) -> list[str]:
    """Metrics logs that do not hold each step from 1 to the checkpoint's step exactly once."""
    payload = torch.load(run_dir / CHECKPOINTS[mode], map_location="cpu", weights_only=True)
    if mode == "hybrid":
        last = {"hyco/metrics.jsonl": payload["cycle"], "hyco/synthetic/metrics.jsonl": payload["synthetic"]["epoch"],
                "hyco/physical/metrics.jsonl": payload["physical"]["epoch"]}
    else:
        last = {METRICS[mode][0][0]: payload["epoch"]}
    problems = []
    for name, key in METRICS[mode]:
        steps = [r[key] for r in metrics(run_dir, mode)[name]]
        if steps != list(range(1, last[name] + 1)):
            problems.append(f"{name}: steps {steps}, checkpoint at {last[name]}")
    return problems


def leftovers(*directories: Path) -> list[Path]:
    """Temporary files of atomic writes and HYCO cycle-cache files under `directories`."""
    out = []
    for directory in directories:
        if directory.exists():
            out += [p for p in directory.rglob("*") if p.is_file() and (".tmp" in p.name or "generated" in p.parts)]
    return sorted(out)
