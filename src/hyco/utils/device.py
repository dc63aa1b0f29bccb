"""The single place where the compute device is chosen (`device: auto|cpu|cuda|cuda:N`).

Under torchrun, `auto` and `cuda` mean this rank's GPU, `cuda:LOCAL_RANK` (hyco.utils.distributed)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_device(name: str = "auto") -> torch.device:
    """Map the config value to a torch device; `auto` picks CUDA when present, else CPU."""
    if not DEVICE_PATTERN.match(name):
        raise ValueError(f"device: expected auto, cpu, cuda or cuda:N, got {name!r}")
    import torch  # here, not at import: the config's check of the name must not load torch

    from hyco.utils.distributed import rank_device

    if name == "auto":
        return rank_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device: {name!r} requested but CUDA is not available on this machine")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device: {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        if ":" not in name:
            return rank_device(torch.device("cuda"))
    return torch.device(name)
