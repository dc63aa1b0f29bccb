"""Checkpoint files: atomic writes, `weights_only=True` loading, RNG states in a safe encoding.

`torch.load(weights_only=True)` refuses arbitrary pickled objects, so everything in a checkpoint is
a tensor, a number, a string, or lists/tuples/dicts of them; NumPy's RNG state is converted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hyco.errors import DataError
from hyco.utils.io import atomic_torch_save
from hyco.utils.seed import rng_state, set_rng_state

FORMAT_VERSION = 1


def pack_rng() -> dict[str, Any]:
    """Every global generator's state, encoded for a weights-only checkpoint."""
    state = rng_state()
    kind, keys, pos, has_gauss, cached = state["numpy"]
    state["numpy"] = (kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                      float(cached))
    return state


def unpack_rng(state: dict[str, Any]) -> None:
    kind, keys, pos, has_gauss, cached = state["numpy"]
    state = dict(state)
    state["numpy"] = (kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
    set_rng_state(state)


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    atomic_torch_save({"format_version": FORMAT_VERSION, **payload}, path)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint (tensors on CPU); a missing, corrupt or foreign file is a one-line DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, unsafe pickle: all mean "not usable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable hyco checkpoint ({first[:200]})") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else type(payload).__name__
        raise DataError(f"{path}: expected a hyco checkpoint of format {FORMAT_VERSION}, got {found!r}")
    return payload


def config_difference(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Keys whose values differ between two nested config dicts, as 'key: saved -> current'."""
    out = []
    for key in sorted(set(saved) | set(current)):
        a, b = saved.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_difference(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
