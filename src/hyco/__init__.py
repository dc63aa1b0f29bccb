"""hyco: hybrid-cooperative training of differentiable PDE solvers and neural networks.

The names a notebook needs are importable from here (`hyco.compose`, `hyco.Run`, `hyco.run`, ...); they
are loaded on first use, so `import hyco` stays cheap (no torch, no PhiFlow) for the command line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hyco.version import __version__

# public name -> the module that defines it
_LAZY = {
    "compose": "hyco.api",
    "Run": "hyco.api",
    "run": "hyco.api",
    "compare": "hyco.api",
    "Mode": "hyco.api",
    "HycoConfig": "hyco.config.schema",
    "HycoError": "hyco.errors",
    "ConfigError": "hyco.errors",
    "DataError": "hyco.errors",
}

__all__ = ["ConfigError", "DataError", "HycoConfig", "HycoError", "Mode", "Run", "__version__", "compare", "compose",
           "run"]

if TYPE_CHECKING:
    from hyco.api import Mode, Run, compare, compose, run
    from hyco.config.schema import HycoConfig
    from hyco.errors import ConfigError, DataError, HycoError


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'hyco' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
