"""User-facing errors, every one of them: each names the cause in one line (key or file, and what was expected)."""

from __future__ import annotations

from typing import Any


class HycoError(Exception):
    """An error caused by the user's input (config, files); printed as one line, exit code 2."""

    exit_code = 2


class ConfigError(HycoError):
    def __init__(self, key: str, expected: str, got: Any = None, *, has_got: bool = True,
                 message: str | None = None):
        self.key = key
        self.expected = expected
        self.got = got
        if message is None:
            message = f"expected {expected}" + (f", got {got!r}" if has_got else "")
        super().__init__(f"{key}: {message}")


class DataError(HycoError):
    """A dataset or checkpoint file that is missing, corrupt or made for another configuration."""


def require(condition: bool, key: str, expected: str, got: Any) -> None:
    """Raise a ConfigError unless `condition` holds; used by the schema's range checks."""
    if not condition:
        raise ConfigError(key, expected, got)
