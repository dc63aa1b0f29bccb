"""The single place where random number generators are seeded and their states captured."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def _sequence(base: int, keys: tuple[int, ...]) -> np.random.SeedSequence:
    if any(int(k) < 0 for k in keys):
        raise ValueError(f"seed keys must be non-negative integers, got {keys}")
    return np.random.SeedSequence(entropy=int(base), spawn_key=tuple(int(k) for k in keys))


def derive_seed(base: int, *keys: int) -> int:
    """An independent seed for every tuple of non-negative `keys` (e.g. split and simulation, or cycle and
    stream), never depending on how the work is batched: numpy's SeedSequence spawn keys. Every seed hyco
    derives from the configured one comes from here or from `seeded_generator`."""
    return int(_sequence(base, keys).generate_state(1)[0] & 0x7FFFFFFF)


def seeded_generator(base: int, *keys: int) -> torch.Generator:
    """A CPU torch generator of its own for (base, *keys), seeded with 64 bits of the same SeedSequence."""
    state = _sequence(base, keys).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Snapshot of every global generator, for checkpoints that must resume bit for bit."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
