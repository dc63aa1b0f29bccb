"""The one place that knows whether this process is one of several (torchrun / DDP).

Trainers ask here for rank and world size instead of reading globals, so the same trainer runs in
one process or under `torchrun` with DistributedDataParallel.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class ProcessInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        """Only the main process writes files, logs metrics and shows progress bars."""
        return self.rank == 0

    @property
    def initialised(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def process_info() -> ProcessInfo:
    """Rank and world size: from the initialised process group, else torchrun's environment."""
    if dist.is_available() and dist.is_initialized():
        return ProcessInfo(dist.get_rank(), dist.get_world_size())
    return ProcessInfo(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")))


def wrap_model(model: nn.Module, device: torch.device, info: ProcessInfo) -> nn.Module:
    """DistributedDataParallel when a process group is up (gradients are averaged across ranks)."""
    if not info.initialised:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [device.index if device.index is not None else 0] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(values: torch.Tensor, info: ProcessInfo) -> torch.Tensor:
    """Sum a metrics tensor over ranks (a no-op in a single process)."""
    if info.initialised and info.world_size > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
