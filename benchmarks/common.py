"""Shared benchmark helpers: summarise repeated timings and write a result file with the machine state."""

from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from hyco.utils.io import atomic_write_json

RESULTS = Path(__file__).parent / "results"


def summary(values: list[float]) -> dict[str, float]:
    """min / median / max of repeated measurements (the median is the figure to quote)."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "repeats": len(values)}


def write_result(name: str, result: dict[str, Any]) -> Path:
    """`results/<name>_<UTC timestamp>.json`, with the machine load and thread settings the figures were
    taken under (shared machines make timings noisy: the load says how much to trust them)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    machine = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
               "load_average_1_5_15": list(os.getloadavg()), "torch": torch.__version__}
    path = RESULTS / f"{name}_{stamp}.json"
    atomic_write_json({"name": name, "timestamp": stamp, "machine": machine, **result}, path)
    return path
