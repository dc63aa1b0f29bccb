"""Where each channel of the physics model comes from in an external file (`data.external.fields`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hyco.data.external.source import Source
from hyco.errors import ConfigError

log = logging.getLogger(__name__)

_SELECTOR = re.compile(r"^\s*(.+?)\s*(?:\[\s*(\d+)\s*\])?\s*$")


@dataclass(frozen=True)
class ChannelSource:
    """Physics channel `channel` is component `component` of file field `field`."""

    field: str
    component: int
    channel: int


def _parse(selector: str) -> tuple[str, int | None]:
    """'name' or 'name[i]' -> (name, i or None)."""
    match = _SELECTOR.match(str(selector))
    if not match:
        return str(selector), None
    return match.group(1), None if match.group(2) is None else int(match.group(2))


def _parse_source(source: Source, selector: str) -> tuple[str, int | None]:
    """A file field, or one component: 'name[i]', 'name_i', or The Well's flattened names 'velocity_y',
    'stress_xy' (component names from the axes, x first; the forms without brackets fit in a command-line key)."""
    name, component = _parse(selector)
    if name in source.fields or component is not None:
        return name, component
    match = re.match(r"^(.+)_(\d+)$", name)
    if match and match.group(1) in source.fields:
        return match.group(1), int(match.group(2))
    match = re.match(r"^(.+)_([xyz]+)$", name)
    if match and match.group(1) in source.fields:
        axes = "xyz"[:source.ndim]
        letters = match.group(2)
        if all(a in axes for a in letters) and source.fields[match.group(1)].components == source.ndim ** len(letters):
            index = 0
            for letter in letters:
                index = index * source.ndim + axes.index(letter)
            return match.group(1), index
    return name, None


def _model_fields(model: Any) -> dict[str, tuple[int, int, bool, str]]:
    """Physics field name -> (first channel, channels, dynamic, grid)."""
    out, start = {}, 0
    for spec in model.fields:
        out[spec.name] = (start, int(spec.channels), bool(spec.dynamic), getattr(spec, "grid", "centered"))
        start += int(spec.channels)
    return out


def _coefficient_names(model: Any) -> list[str]:
    return [spec.name for spec in getattr(model, "coefficient_specs", ())]


def truth_sources(source: Source, coefficients: list[str], fields: list[str], mapping: Mapping[str, str]
                  ) -> dict[str, ChannelSource]:
    """The coefficients whose true value a file field holds (`data.external.fields.<file field>=<coefficient>`,
    `coefficients` the model's, `fields` its physics fields): coefficient -> the field and component."""
    out: dict[str, ChannelSource] = {}
    for key, value in mapping.items():
        target, _ = _parse(value)
        if target not in coefficients or target in fields:
            continue
        name, component = _parse_source(source, key)
        source_field = source.field(name)
        if component is None and source_field.components != 1:
            raise source.error(f"data.external.fields: field '{name}' has {source_field.components} components; "
                               f"coefficient '{target}' takes one ([i] picks it)")
        if component is not None and component >= source_field.components:
            raise source.error(f"data.external.fields: field '{name}' has {source_field.components} "
                               f"component(s), no component {component}")
        if target in out:
            raise ConfigError("data.external.fields", "one file field per coefficient", f"{target} twice")
        out[target] = ChannelSource(source_field.name, component or 0, -1)
    return out


def model_truth_sources(source: Source, model: Any, mapping: Mapping[str, str]) -> dict[str, ChannelSource]:
    """`truth_sources` for a built model."""
    return truth_sources(source, _coefficient_names(model), list(_model_fields(model)), mapping)


def channel_map(source: Source, model: Any, mapping: Mapping[str, str]) -> list[ChannelSource]:
    """Where each of the model's channels comes from in `source`; one line naming the file and the field if
    a mapping is wrong or a channel has no source. Pairs that name a coefficient are its truth (`truth_sources`)."""
    fields = _model_fields(model)
    pairs: list[tuple[str, int | None, str, int | None]] = []
    truths = set(_coefficient_names(model)) - set(fields)
    mapping = {key: value for key, value in mapping.items() if _parse(value)[0] not in truths}
    if mapping:
        for key, value in mapping.items():
            pairs.append((*_parse_source(source, key), *_parse(value)))
    else:
        for name in fields:
            if name in source.fields:
                pairs.append((name, None, name, None))
        if not pairs and len(source.fields) == 1:
            only = next(iter(source.fields.values()))
            if only.components == model.num_channels:
                return [ChannelSource(only.name, c, c) for c in range(only.components)]
    out: dict[int, ChannelSource] = {}
    for file_name, component, target, channel in pairs:
        source_field = source.field(file_name)
        if target not in fields:
            raise ConfigError("data.external.fields", f"physics fields among {', '.join(fields)} (or, for a true "
                              f"value, coefficients among {', '.join(sorted(truths)) or '(none)'})", target)
        first, count, dynamic, grid = fields[target]
        if component is not None and component >= source_field.components:
            raise source.error(f"data.external.fields: field '{file_name}' has {source_field.components} "
                               f"component(s), no component {component}")
        if channel is not None and channel >= count:
            raise ConfigError("data.external.fields", f"a channel of physics field '{target}' below {count}",
                              f"{target}[{channel}]")
        components = [component] if component is not None else list(range(source_field.components))
        channels = [first + channel] if channel is not None else list(range(first, first + count))
        if len(components) != len(channels):
            raise source.error(f"field '{file_name}' has {len(components)} component(s), physics field "
                               f"'{target}'{f'[{channel}]' if channel is not None else ''} takes {len(channels)}; "
                               "map single components with [i] in data.external.fields")
        if dynamic and not source_field.time_varying:
            raise source.error(f"field '{file_name}' is constant in time, physics field '{target}' evolves "
                               "(map it to a static field)")
        if grid == "staggered":
            log.warning("%s: field '%s' fills the staggered field '%s': its values are taken as the lower-face "
                        "values of each cell", source.path, file_name, target)
        for comp, ch in zip(components, channels):
            if ch in out:
                raise ConfigError("data.external.fields", "each physics channel filled once",
                                  f"channel {ch} of '{target}' from both '{out[ch].field}' and '{file_name}'")
            out[ch] = ChannelSource(source_field.name, comp, ch)
    for name, (first, count, _, _) in fields.items():
        missing = [c - first for c in range(first, first + count) if c not in out]
        if missing:
            channels = "" if len(missing) == count else f" (channel(s) {missing})"
            raise source.error(f"physics field '{name}'{channels} has no source in the file (its fields: "
                               f"{source.describe_fields()}); map one with data.external.fields")
    return [out[c] for c in sorted(out)]
