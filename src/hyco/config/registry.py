"""Name -> class registries for PDE models and networks, open to user code.

A user adds a model in their own module with the registry's decorator and makes it importable:
either list the module under `plugins:` in the config, or declare an entry point in the group
``hyco.physics`` / ``hyco.networks`` of their own package.

It belongs to the config layer: the config validates a `physics` or `network` section against the
model's `Params` (`section_params`) without importing the packages that define the models. The shipped
models' `Params` live in `hyco.config.models` (torch-free), so validating their sections imports neither
torch nor PhiFlow; a registry imports its shipped models' package by name only when a class is asked for.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from hyco.config.models import networks as network_schemas
from hyco.config.models import physics as physics_schemas
from hyco.config.omegaconf_errors import omegaconf_error
from hyco.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, entry_point_group: str, shipped: str, schemas: dict[str, type] | None = None,
                 strip_runtime: Callable[[dict[str, Any]], dict[str, Any]] = dict):
        self.kind = kind
        self.entry_point_group = entry_point_group
        self.shipped = shipped  # the package whose import registers hyco's own models
        # the Params of the models `shipped` registers, by name, importable without it
        self.schemas: dict[str, type] = dict(schemas or {})
        self._entries: dict[str, T] = {}
        self._entry_points_loaded = False
        # (section without `name`) -> the keys of the model's Params, after checking and removing the keys
        # that say how it runs (they are not part of what it is)
        self.strip_runtime = strip_runtime

    def load_shipped(self) -> None:
        importlib.import_module(self.shipped)

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
            self.load_shipped()
        if name not in self._entries:
            self._load_entry_points()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "none"
            raise KeyError(f"unknown {self.kind} {name!r}; registered: {known}")
        return self._entries[name]

    def params_class(self, name: str) -> type | None:
        """The `Params` dataclass of the model `name` (None for a class without one); a shipped model's
        comes from `schemas`, without importing the model's package."""
        if name not in self._entries and name in self.schemas:
            return self.schemas[name]
        return getattr(self.get(name), "Params", None)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted({*self._entries, *self.schemas})

    def __contains__(self, name: str) -> bool:
        if name in self._entries or name in self.schemas:
            return True
        self._load_entry_points()
        return name in self._entries

    def items(self) -> Iterable[tuple[str, T]]:
        self.load_shipped()
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
PHYSICS: Registry[Any] = Registry("PDE model", "hyco.physics", shipped="hyco.physics", schemas=physics_schemas.PARAMS,
                                  strip_runtime=physics_schemas.strip_runtime)
NETWORKS: Registry[Any] = Registry("network", "hyco.networks", shipped="hyco.networks", schemas=network_schemas.PARAMS,
                                   strip_runtime=network_schemas.strip_runtime)
SECTIONS = {"physics": PHYSICS, "network": NETWORKS}


def section_params(section: dict[str, Any], kind: str) -> Any:
    """Validate a `physics` or `network` section against its model's `Params` dataclass and return the
    params instance (the section without `name` and its runtime keys for a model without `Params`).
    For a shipped model this imports neither the model's package nor torch."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    registry = SECTIONS[kind]
    name = section.get("name")
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{kind}.name", f"one of {', '.join(registry.names()) or '(none registered)'}", name)
    params_cls = registry.params_class(name)
    rest = registry.strip_runtime({k: v for k, v in section.items() if k != "name"})
    if params_cls is None:
        return rest
    try:
        merged = OmegaConf.merge(OmegaConf.structured(params_cls), OmegaConf.create(rest))
        params = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise omegaconf_error(exc, prefix=f"{kind}.") from None
    except ConfigError as exc:
        if not exc.key.startswith(f"{kind}."):
            exc = ConfigError(f"{kind}.{exc.key}", "", message=str(exc).split(": ", 1)[1])
        raise exc from None
    assert dataclasses.is_dataclass(params)
    return params


def model_params(section: dict[str, Any], kind: str) -> Any:
    """(the registered class, its validated params) of a `physics` or `network` section (`section_params`);
    imports the model's class, hence its package."""
    params = section_params(section, kind)
    return SECTIONS[kind].get(section["name"]), params
