"""A config key declared once: its default, what it means and which values it takes.

`setting(default, doc, ...)` is a dataclass field whose metadata carries the description and the allowed values
(choices, bounds, or a sentence for what a rule cannot say). The same metadata serves two readers:
`check_settings` refuses a value outside them (one line naming the key), and the configuration reference
(`hyco.config.reference`) prints them beside the default that actually runs. A mutable default (a list, a dict,
a nested dataclass) is copied for every instance.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from typing import Any

from hyco.errors import require


def setting(default: Any, doc: str, *, choices: Sequence[Any] | None = None, at_least: float | None = None,
            above: float | None = None, at_most: float | None = None, below: float | None = None,
            allowed: str | None = None, kind: str | None = None) -> Any:
    """A dataclass field for one config key.

    Args:
        default: the value when neither a config file nor the command line sets the key.
        doc: what the key means, in a sentence or two (the configuration reference prints it).
        choices: the allowed values; `check_settings` refuses any other.
        at_least: lower bound of a number, inclusive.
        above: lower bound of a number, exclusive.
        at_most: upper bound of a number, inclusive.
        below: upper bound of a number, exclusive.
        allowed: the allowed values in words, where the key is checked by hand (`__post_init__`).
        kind: the type as the reference prints it, where the annotation says too little (`Any`).
    """
    metadata = {"doc": doc, "choices": tuple(choices) if choices is not None else None,
                "bounds": (at_least, above, at_most, below), "allowed": allowed, "kind": kind}
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(factory: Any, doc: str) -> Any:
    """A nested section (a dataclass made by `factory`), with its description."""
    return dataclasses.field(default_factory=factory, metadata={"doc": doc})


def metadata(cls: type, name: str) -> dict[str, Any]:
    """The metadata of key `name` of dataclass `cls`, from the nearest class that declares it with `setting`
    (a subclass may redeclare a key only to change its default)."""
    for klass in cls.__mro__:
        declared = getattr(klass, "__dataclass_fields__", {}).get(name)
        if declared is not None and declared.metadata:
            return dict(declared.metadata)
    return {}


def _number(value: float) -> str:
    return f"{value:g}"


def allowed_values(cls: type, name: str, annotation: str = "") -> str:
    """The allowed values of a key in words: `one of a, b`, `an integer >= 1`, `a number in (0, 1]`, ...; empty
    when the key declares none."""
    meta = metadata(cls, name)
    if meta.get("allowed"):
        return meta["allowed"]
    if meta.get("choices"):
        return "one of " + ", ".join(str(c) for c in meta["choices"])
    at_least, above, at_most, below = meta.get("bounds") or (None,) * 4
    noun = "an integer" if annotation == "int" else "a number"
    low = (_number(above), "(") if above is not None else (_number(at_least), "[") if at_least is not None else None
    high = (_number(below), ")") if below is not None else (_number(at_most), "]") if at_most is not None else None
    if low and high:
        return f"{noun} in {low[1]}{low[0]}, {high[0]}{high[1]}"
    if low:
        return f"{noun} {'>' if low[1] == '(' else '>='} {low[0]}"
    if high:
        return f"{noun} {'<' if high[1] == ')' else '<='} {high[0]}"
    return ""


def type_name(annotation: Any) -> str:
    """A field's annotation as written (`int`, `list[float]`), whether postponed (a string) or not."""
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _within(value: Any, bounds: tuple) -> bool:
    at_least, above, at_most, below = bounds
    return ((at_least is None or value >= at_least) and (above is None or value > above)
            and (at_most is None or value <= at_most) and (below is None or value < below))


def check_settings(config: Any, prefix: str = "") -> None:
    """Refuse, in one line naming `<prefix><key>`, a value outside the choices or bounds its `setting` declares."""
    for declared in dataclasses.fields(config):
        meta = metadata(type(config), declared.name)
        value = getattr(config, declared.name)
        expected = allowed_values(type(config), declared.name, type_name(declared.type))
        if meta.get("choices"):
            require(value in meta["choices"], prefix + declared.name, expected, value)
        elif any(b is not None for b in meta.get("bounds") or ()):
            require(_within(value, meta["bounds"]), prefix + declared.name, expected, value)
