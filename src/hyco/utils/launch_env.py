"""What torchrun tells a process through its environment, read without importing torch (the CLI asks before
it refuses a bad command line, which must stay fast)."""

from __future__ import annotations

import os

from hyco.errors import ConfigError


def env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        raise ConfigError(name, "an integer (set by torchrun)", os.environ.get(name)) from None


def launched() -> bool:
    """Whether this process was started by torchrun as one of several ranks."""
    return env_int("WORLD_SIZE", 1) > 1


def is_main_rank() -> bool:
    """Whether this process is rank 0 (or not under torchrun), by the environment alone."""
    return env_int("RANK", 0) == 0
