"""Per-epoch metrics of one trainer: a JSONL file and TensorBoard scalars in its run directory.

Without a run directory (tests, the hybrid trainer's inner loops) nothing is written.

The log must match the checkpoint a run continues from, whatever moment a kill chose. Trainers write an
epoch's record BEFORE its checkpoint, so after a kill the log is at most ahead of the checkpoint, never
behind; what is ahead is dropped:
- on resume (`truncate_after(checkpoint step)`), with a torn last line (a kill inside the append);
- on the first record a process writes, records of that step and later are dropped (a run killed before
  its first checkpoint, started again from scratch, would otherwise log its first epochs twice).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from hyco.utils.distributed import process_info
from hyco.utils.io import atomic_write_text

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class RunLog:
    def __init__(self, run_dir: str | Path | None, tag: str, step_key: str = "epoch"):
        # under torchrun only rank 0 writes the log (hyco.utils.distributed)
        self.run_dir = Path(run_dir) if run_dir is not None and process_info().is_main else None
        self.tag = tag
        self.step_key = step_key  # the record field that numbers the lines: "epoch", or "cycle" for HYCO
        self._writer = None
        self._purge_step: int | None = None
        self._reconciled = False  # the file was matched to this process's state (truncate or first write)

    @property
    def metrics_path(self) -> Path | None:
        return self.run_dir / METRICS_FILE if self.run_dir is not None else None

    def truncate_after(self, epoch: int) -> None:
        """Forget records of epochs > `epoch` (written after the checkpoint a run resumes from)."""
        path = self.metrics_path
        if path is None:
            return
        self._purge_step = epoch + 1
        self._reconciled = True
        if not path.is_file():
            return
        text = path.read_text(errors="replace")
        kept = [line for line in text.splitlines() if (step := self._step(line)) is not None and step <= epoch]
        if len(kept) != len(text.splitlines()) or (text and not text.endswith("\n")):
            atomic_write_text("".join(line + "\n" for line in kept), path)

    def _step(self, line: str) -> int | None:
        """The step of one JSONL line; None for a blank, torn or foreign line."""
        try:
            record = json.loads(line)
        except ValueError:
            return None
        if not isinstance(record, dict) or not isinstance(record.get(self.step_key), int):
            return None
        return record[self.step_key]

    def write(self, record: dict[str, Any]) -> None:
        if self.run_dir is None:
            return
        if not self._reconciled:
            self.truncate_after(int(record[self.step_key]) - 1)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        writer = self._tensorboard()
        if writer is None:
            return
        step = int(record[self.step_key])
        for key, value in record.items():
            if key != self.step_key and isinstance(value, (int, float)) and math.isfinite(value):
                writer.add_scalar(f"{self.tag}/{key}", value, step)
        writer.flush()

    def _tensorboard(self):
        if self._writer is None and self.run_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is a dependency, but never fail training for a plot
                log.warning("tensorboard is not installed; only %s is written", METRICS_FILE)
                self._writer = False
                return None
            self._writer = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=self._purge_step)
        return self._writer or None

    def close(self) -> None:
        if self._writer:
            self._writer.close()
        self._writer = None
