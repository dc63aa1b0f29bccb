"""`hyco generate`: make sure the experiment's dataset exists (simulated, imported or reused)."""

from __future__ import annotations

import logging
from pathlib import Path

from hyco.data.external import physics_config
from hyco.data.generate import ensure_dataset
from hyco.tasks.context import RunContext
from hyco.utils.distributed import process_info

log = logging.getLogger(__name__)


def generate(ctx: RunContext) -> Path:
    """Log and print the dataset's path."""
    from hyco.physics import build_physics

    model = build_physics(physics_config(ctx.cfg), ctx.device, ctx.dtype)
    path = ensure_dataset(ctx.cfg, model, ctx.data_dir)
    log.info("dataset: %s", path)
    if process_info().is_main:  # one line however many ranks
        print(path)
    return path
