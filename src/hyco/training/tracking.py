"""Per-epoch / per-cycle metrics to a JSONL file and TensorBoard scalars in a run directory."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(float(value)) else None
    return None


class MetricsLog:
    """Appends one JSON object per call to `<dir>/metrics.jsonl` and mirrors numeric values to TensorBoard.

    Without a directory it records in memory only (tests, embedded use). JSONL lines are appended and
    flushed one at a time, so an interrupted run keeps every finished epoch.
    """

    def __init__(self, directory: str | Path | None, prefix: str = ""):
        self.directory = Path(directory) if directory is not None else None
        self.prefix = prefix
        self.records: list[dict[str, Any]] = []
        self._writer = None
        self._purge_step: int | None = None  # set on resume: TensorBoard drops events from this step on
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path | None:
        return self.directory / "metrics.jsonl" if self.directory is not None else None

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        record = {"step": step, **metrics}
        self.records.append(record)
        if self.directory is None:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record, default=_json_default) + "\n")
        writer = self._tensorboard()
        for key, value in metrics.items():
            number = _scalar(value)
            if number is not None:
                writer.add_scalar(f"{self.prefix}{key}", number, step)
        writer.flush()

    def _tensorboard(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.directory / "tensorboard"), purge_step=self._purge_step)
        return self._writer

    def truncate_after(self, step: int) -> None:
        """On resume: drop records of steps after the checkpoint so the JSONL has no duplicates."""
        self._purge_step = step + 1
        if self.path is None or not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line)["step"] <= step]
        from hyco.utils.io import atomic_write_text

        atomic_write_text("".join(line + "\n" for line in kept), self.path)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _json_default(value: Any) -> Any:
    try:
        import torch

        if isinstance(value, torch.Tensor):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
