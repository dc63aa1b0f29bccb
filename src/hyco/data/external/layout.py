"""What every file layout gives the importer: fields with a reader of one trajectory's frames, and HDF5
attribute values as plain Python."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

AXES = ("x", "y", "z")


@dataclass
class SourceField:
    """A field of an external file: its components and a reader of one trajectory's frames."""

    name: str
    components: int
    time_varying: bool
    read: Callable[[int, slice], np.ndarray]  # (trajectory, frames) -> float32 [T' or 1, *space x first, comps]


def string(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.size == 1:
        return string(value.reshape(-1)[0])
    return str(value)


def strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        return [string(value)]
    return [string(v) for v in np.asarray(value).reshape(-1)]


def plain(value: Any) -> Any:
    """An attribute as JSON-able data (recorded with the import)."""
    if isinstance(value, (bytes, str)):
        return string(value)
    array = np.asarray(value)
    if array.dtype.kind in "OSU":
        return strings(value)
    return array.tolist()


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().split("\n")[0]) or type(exc).__name__
