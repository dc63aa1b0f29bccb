"""The one timing helper and the one JSON writer of the benchmark suite.

Machines here are shared and noisy, so no absolute speed is a figure on its own: every speed figure is
the RATIO of a measured case to a bare reference measured in the same run. The cases are warmed up, then
run round-robin (reference, case, reference, case, ...) so that a burst of load from another process hits
all of them alike, and each is summarised by min / median / max over the repeats (the median is the
figure). The machine load and the torch thread count are recorded with the figures because they explain
most of the spread.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
BELOW, ABOVE, OK, INFO = "BELOW TARGET", "ABOVE TARGET", "ok", "info"

Clock = Callable[[], float]


# ---------------------------------------------------------------------------- statistics
def summarize(values: Sequence[float]) -> dict[str, Any]:
    """min / median / max of the repeats (the raw values are kept so nothing is hidden)."""
    if not values:
        raise ValueError("summarize: no values")
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "values": list(values)}


def ratios(summary: Mapping[str, Mapping[str, float]], reference: str) -> dict[str, float]:
    """Median of every case divided by the median of `reference`."""
    ref = summary[reference]["median"]
    return {name: s["median"] / ref for name, s in summary.items()}


def machine() -> dict[str, Any]:
    """What was running the numbers: load average (1, 5, 15 min), torch threads, CPUs, versions."""
    import torch

    return {"load_average": list(os.getloadavg()), "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "cuda": torch.cuda.is_available()}


# ---------------------------------------------------------------------------- timing
def seconds(fn: Callable[[], Any], clock: Clock = time.perf_counter,
            sync: Callable[[], None] | None = None) -> Callable[[], float]:
    """A case measuring the seconds of fn() (lower is better)."""

    def case() -> float:
        if sync:
            sync()
        start = clock()
        fn()
        if sync:
            sync()
        return clock() - start

    return case


def rate(count: float, fn: Callable[[], Any], clock: Clock = time.perf_counter,
         sync: Callable[[], None] | None = None) -> Callable[[], float]:
    """A case measuring `count / seconds of fn()` (items per second; higher is better)."""
    timed = seconds(fn, clock, sync)
    return lambda: count / timed()


def interleaved(cases: Mapping[str, Callable[[], float]], repeats: int, warmup: int = 1,
                reference: str | None = None) -> dict[str, Any]:
    """Warm every case up `warmup` times, then run `repeats` rounds of all cases in turn.

    Each case returns its figure for one run (a rate from `rate`, seconds from `seconds`, or anything
    else). Returns `{"cases": {name: {min, median, max, values}}, "ratio": {name: median / reference
    median}, "reference", "repeats", "warmup", "machine"}`; the load average is read before and after.
    """
    if repeats < 1:
        raise ValueError(f"repeats: expected >= 1, got {repeats}")
    if reference is not None and reference not in cases:
        raise ValueError(f"reference {reference!r} is not one of the cases {list(cases)}")
    load_before = list(os.getloadavg())
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    values: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, fn in cases.items():
            values[name].append(fn())
    summary = {name: summarize(v) for name, v in values.items()}
    env = machine()
    env["load_average_before"] = load_before
    return {"cases": summary, "ratio": ratios(summary, reference) if reference else {}, "reference": reference,
            "repeats": repeats, "warmup": warmup, "machine": env}


# ---------------------------------------------------------------------------- figures
def figure(name: str, value: float | None, target: float | None = None, higher_is_better: bool = True,
           unit: str = "", note: str = "") -> dict[str, Any]:
    """One line of the summary table. A figure that misses its target says so (BELOW/ABOVE TARGET)."""
    if value is None or target is None:
        status = INFO
    elif higher_is_better:
        status = OK if value >= target else BELOW
    else:
        status = OK if value <= target else ABOVE
    return {"name": name, "value": value, "target": target, "higher_is_better": higher_is_better, "unit": unit,
            "status": status, "note": note}


def target_text(fig: Mapping[str, Any]) -> str:
    if fig.get("target") is None:
        return ""
    return f"{'>=' if fig.get('higher_is_better', True) else '<='} {fig['target']:g}"


def format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


# ---------------------------------------------------------------------------- output
def timestamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def write_json(name: str | None, result: Mapping[str, Any], directory: str | Path | None = None) -> Path:
    """Write `result` atomically to `<directory or benchmarks/results>/<name>_<UTC timestamp>.json`
    (`<timestamp>.json` without a name: the whole suite)."""
    from hyco.utils.io import atomic_write_json

    stem = f"{name}_{timestamp()}" if name else timestamp()
    path = Path(directory or RESULTS) / f"{stem}.json"
    atomic_write_json(dict(result), path)
    return path
