"""Turn a composed Hydra config into typed, range-checked objects, or ONE clear error line."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hyco.config.omegaconf_errors import omegaconf_error as _omegaconf_error
from hyco.config.omegaconf_errors import one_line as _one_line
from hyco.config.omegaconf_errors import unknown_key
from hyco.config.registry import import_plugins, section_params
from hyco.config.schema import HycoConfig
from hyco.errors import ConfigError, HycoError

CONFIG_MODULE = "hyco.conf"


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
    from hyco.config.catalogue import names

    return names(group)


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Keys of schema-typed nodes that their dataclass does not declare.

    Hydra's append syntax (`+foo=1`, `+trainer.hybrid.foo=1`) adds keys even to a struct config, and
    `OmegaConf.to_object` drops them silently; a typo would then change nothing without a word.
    The free-form `physics`/`network` sections are checked against their model's schema instead.
    """
    node_type = OmegaConf.get_type(cfg)
    if not (isinstance(node_type, type) and dataclasses.is_dataclass(node_type)):
        return []
    declared = {f.name for f in dataclasses.fields(node_type)}
    out = []
    for key in cfg:
        name = f"{prefix}{key}"
        if key not in declared:
            out.append(name)
            continue
        child = cfg._get_node(key)
        if isinstance(child, DictConfig) and not child._is_none() and not child._is_missing():
            out += unknown_keys(child, prefix=f"{name}.")
    return out


def non_finite_numbers(value: Any, key: str = "") -> list[tuple[str, float]]:
    """Every float in a (resolved) config container that is inf or nan, with its dotted key.

    No hyco setting means anything at infinity (a learning rate, a domain size, a budget, a timeout),
    and an infinite or NaN value slips through range checks such as `lr > 0` only to fail deep inside
    the solver; one walk over the whole tree covers the typed sections and the model sections alike.
    """
    if isinstance(value, float):
        return [] if math.isfinite(value) else [(key, value)]
    if isinstance(value, dict):
        return [bad for k, v in value.items() for bad in non_finite_numbers(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, (list, tuple)):
        return [bad for i, v in enumerate(value) for bad in non_finite_numbers(v, f"{key}[{i}]")]
    return []


def check_values(cfg: DictConfig) -> None:
    """Refuse appended unknown keys and non-finite numbers before any range check runs."""
    extra = unknown_keys(cfg)
    if extra:
        raise unknown_key(extra[0])
    try:
        container = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise _omegaconf_error(exc) from None
    bad = non_finite_numbers(container)
    if bad:
        key, value = bad[0]
        raise ConfigError(key, "a finite number", value)


def to_typed(cfg: DictConfig) -> HycoConfig:
    """Refuse unknown appended keys and non-finite numbers, resolve interpolations, instantiate the
    schema's dataclasses (which range-check themselves) and validate the model sections against
    their registered schemas."""
    check_values(cfg)
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
    try:
        import_plugins(typed.plugins)
    except ImportError as exc:
        raise ConfigError("plugins", "importable module names", str(exc)) from None
    section_params(typed.physics, "physics")  # a shipped model's section is checked without torch
    section_params(typed.network, "network")
    return typed


def compose(task: str, overrides: list[str]) -> DictConfig:
    """Compose the shipped config tree with command-line overrides (no Hydra run directory); user files,
    config folders on `hydra.searchpath` and plug-in models as `hyco.config.overrides.prepare` makes them."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    from hyco.config.overrides import prepare
    from hyco.config.store import register_schema

    register_schema()
    overrides = prepare(list(overrides))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            return hydra_compose(config_name="config", overrides=[*overrides, f"task={task}"])
    except Exception as exc:  # Hydra raises many types; all become one line
        raise translate_error(exc) from None
    finally:
        GlobalHydra.instance().clear()


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """The override lists of the jobs of a `-m` sweep to validate before any runs, for any sweeper's syntax:
    every value of `a,b`, `choice(...)`, `range(...)` and `glob(...)` (over the group's shipped options), and
    both bounds of an `interval(a,b)` (a sampling sweeper such as Optuna draws values between them). Uses only
    Hydra's public override parser; a sweep it cannot read is refused in one line."""
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:
        raise translate_error(exc) from None
    options = []
    for override in parsed:
        key = override.get_key_element()
        try:
            options.append(_sweep_values(override, key))
        except HycoError:
            raise
        except Exception as exc:  # anything the parser accepts but cannot enumerate
            raise ConfigError(key, "", message=f"cannot read the sweep {override.input_line!r} "
                              f"({_one_line(str(exc)) or type(exc).__name__})") from None
    return [list(job) for job in itertools.product(*options)]


def _sweep_values(override, key: str) -> list[str]:
    """The overrides `key=value` standing for one swept override (itself when it sweeps nothing)."""
    from hydra.core.override_parser.types import ValueType

    if not override.is_sweep_override():
        return [override.input_line]
    if override.is_interval_sweep():
        interval = override.value()
        return [f"{key}={_number(interval.start)}", f"{key}={_number(interval.end)}"]
    if override.value_type == ValueType.GLOB_CHOICE_SWEEP:
        group = override.key_or_group
        names = override.value().filter(_group_options(group))
        if not names:
            raise ConfigError(key, f"a glob matching options of the config group {group!r} "
                              f"({', '.join(_group_options(group)) or 'not a config group'})",
                              override.input_line.split("=", 1)[1])
        return [f"{key}={name}" for name in names]
    values = [f"{key}={value}" for value in override.sweep_string_iterator()]
    if not values:
        raise ConfigError(key, "a sweep with at least one value", override.input_line.split("=", 1)[1])
    return values


def _number(value: float) -> int | float:
    """An interval's bound as the config would write it (1.0 -> 1, so that integer keys accept it)."""
    return int(value) if float(value).is_integer() else float(value)


def load(task: str, overrides: list[str]) -> HycoConfig:
    """Compose and validate; raises HycoError with a one-line message on any bad input."""
    return to_typed(compose(task, overrides))
