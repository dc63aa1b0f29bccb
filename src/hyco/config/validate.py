"""Turn a composed Hydra config into typed, range-checked objects, or ONE clear error line."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hyco.config.errors import ConfigError, HycoError
from hyco.config.schema import HycoConfig

CONFIG_MODULE = "hyco.conf"


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def _omegaconf_error(exc: OmegaConfBaseException, prefix: str = "") -> ConfigError:
    key = prefix + (getattr(exc, "full_key", None) or "")
    message = str(getattr(exc, "msg", None) or exc).split("\n")[0]
    if "not in struct" in message or re.search(r"Key '[^']*' not in", message):
        return unknown_key(key)
    match = re.search(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", message)
    if match:
        return ConfigError(key, f"a value of type {match.group(2).lower()}", match.group(1))
    return ConfigError(key, "", message=_one_line(message))


def unknown_key(key: str) -> ConfigError:
    return ConfigError(key, "", message="unknown key (check the spelling; `hyco <task> --cfg job` lists the keys)")


def translate_error(exc: BaseException) -> HycoError:
    """Map Hydra/OmegaConf composition errors to a HycoError with a one-line message."""
    if isinstance(exc, HycoError):
        return exc
    from hydra.errors import MissingConfigException, OverrideParseException

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for err in chain:
        if isinstance(err, HycoError):
            return err
    for err in chain:
        if isinstance(err, MissingConfigException):
            group = None
            match = re.search(r"Could not find '([^/']+)/([^']+)'", str(err))
            if match:
                group, option = match.groups()
                options = _group_options(group)
                return ConfigError(group, f"one of {', '.join(options)}" if options else "an existing option",
                                   option)
            return ConfigError("config", "", message=_one_line(str(err).split("\n")[0]))
    for err in chain:
        if isinstance(err, OverrideParseException):
            first = _one_line(str(err)).split(" See https")[0]
            return ConfigError("command line", "", message=f"expected overrides of the form key=value ({first})")
    for err in chain:
        if isinstance(err, OmegaConfBaseException) and getattr(err, "full_key", None):
            return _omegaconf_error(err)
    text = str(exc)
    match = re.search(r"Could not override '([^']+)'", text)
    if match:
        return unknown_key(match.group(1))
    return ConfigError("config", "", message=_one_line(text.split("\n")[0]) or type(exc).__name__)


def _group_options(group: str) -> list[str]:
    from importlib.resources import files

    folder = files(CONFIG_MODULE) / group
    try:
        return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))
    except (FileNotFoundError, NotADirectoryError):
        return []


def to_typed(cfg: DictConfig) -> HycoConfig:
    """Resolve interpolations, instantiate the schema's dataclasses (which range-check themselves)
    and validate the model sections against their registered schemas."""
    try:
        typed = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        raise _omegaconf_error(exc) from None
    except HycoError:
        raise
    if not isinstance(typed, HycoConfig):  # composed without the schema, e.g. in a unit test
        try:
            typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(HycoConfig), cfg))
        except OmegaConfBaseException as exc:
            raise _omegaconf_error(exc) from None
    from hyco.registry import import_plugins

    try:
        import_plugins(typed.plugins)
    except ImportError as exc:
        raise ConfigError("plugins", "importable module names", str(exc)) from None
    model_params(typed.physics, "physics")
    model_params(typed.network, "network")
    return typed


def model_params(section: dict[str, Any], kind: str) -> Any:
    """Validate a `physics` or `network` section against its registered class's `Params` dataclass
    and return (class, params instance)."""
    registry = _registry(kind)
    name = section.get("name")
    if not isinstance(name, str) or name not in registry:
        raise ConfigError(f"{kind}.name", f"one of {', '.join(registry.names()) or '(none registered)'}", name)
    cls = registry.get(name)
    params_cls = getattr(cls, "Params", None)
    rest = {k: v for k, v in section.items() if k != "name"}
    if params_cls is None:
        return cls, rest
    try:
        merged = OmegaConf.merge(OmegaConf.structured(params_cls), OmegaConf.create(rest))
        params = OmegaConf.to_object(merged)
    except OmegaConfBaseException as exc:
        raise _omegaconf_error(exc, prefix=f"{kind}.") from None
    except ConfigError as exc:
        if not exc.key.startswith(f"{kind}."):
            exc = ConfigError(f"{kind}.{exc.key}", "", message=str(exc).split(": ", 1)[1])
        raise exc from None
    assert dataclasses.is_dataclass(params)
    return cls, params


def _registry(kind: str):
    from hyco.registry import NETWORKS, PHYSICS

    if kind == "physics":
        import hyco.physics  # noqa: F401  (registers the shipped models)

        return PHYSICS
    import hyco.networks  # noqa: F401

    return NETWORKS


def compose(task: str, overrides: list[str]) -> DictConfig:
    """Compose the shipped config tree with command-line overrides (no Hydra run directory)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from hyco.config.store import register_schema

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return hydra_compose(config_name="config", overrides=[*overrides, f"task={task}"])
    except Exception as exc:  # Hydra raises many types; all become one line
        raise translate_error(exc) from None
    finally:
        GlobalHydra.instance().clear()


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """The override lists of every job of a multirun sweep (Hydra's basic sweeper semantics)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise translate_error(exc) from None
    batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return [job for batch in batches for job in batch]


def load(task: str, overrides: list[str]) -> HycoConfig:
    """Compose and validate; raises HycoError with a one-line message on any bad input."""
    return to_typed(compose(task, overrides))
