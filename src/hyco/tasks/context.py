"""What every task receives besides its config: where to write, which device, which dtype."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hyco.config.schema import HycoConfig


@dataclass
class RunContext:
    cfg: HycoConfig
    run_dir: Path
    device: torch.device
    baselines_dir: Path | None = None  # in a sweep: where the jobs share their physical-only and synthetic-only runs

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64 if self.cfg.dtype == "float64" else torch.float32

    @property
    def data_dir(self) -> Path:
        return Path(self.cfg.data_dir)

    @property
    def cache_dir(self) -> Path:
        """This run's HYCO cache: `cache_dir`, or a subdirectory of it per run when it is shared (outside the
        run directory)."""
        from hyco.config.paths import run_cache_dir

        return run_cache_dir(self.cfg.cache_dir, self.run_dir)
