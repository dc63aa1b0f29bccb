"""Name -> class registries for PDE models and networks, open to user code.

A user adds a model in their own module with the registry's decorator and makes it importable:
either list the module under `plugins:` in the config, or declare an entry point in the group
``hyco.physics`` / ``hyco.networks`` of their own package.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T] = {}
        self._entry_points_loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@PHYSICS.register("burgers")``."""

        def decorator(obj: T) -> T:
            existing = self._entries.get(name)
            if existing is not None and existing is not obj:
                qual = f"{getattr(existing, '__module__', '?')}.{getattr(existing, '__qualname__', existing)}"
                raise ValueError(f"{self.kind} {name!r} is already registered by {qual}")
            self._entries[name] = obj
            return obj

        return decorator

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for entry in entry_points(group=self.entry_point_group):
            if entry.name not in self._entries:
                self._entries[entry.name] = entry.load()

    def get(self, name: str) -> T:
        if name not in self._entries:
            self._load_entry_points()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except KeyError:
            return False
        return True

    def items(self) -> Iterable[tuple[str, T]]:
        self._load_entry_points()
        return sorted(self._entries.items())


def import_plugins(modules: Iterable[str]) -> None:
    """Import user modules named in config so that their decorators register models."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(f"plugins: cannot import module {module!r}: {exc}") from exc


def describe(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


# The two registries every config name is looked up in.
PHYSICS: Registry[Any] = Registry("PDE model", "hyco.physics")
NETWORKS: Registry[Any] = Registry("network", "hyco.networks")
