"""What differs between two hashed dataset configs, in words: the refusal of `data.regenerate=never` names
the keys in which the closest existing dataset differs (`hyco.data.generate`)."""

from __future__ import annotations

from typing import Any


def flat_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Keys whose values differ, dotted (list items as [i]), each as 'key (old -> new)'."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            name = f"{prefix}.{key}" if prefix else str(key)
            if key not in old:
                out.append(f"{name} (absent -> {new[key]!r})")
            elif key not in new:
                out.append(f"{name} ({old[key]!r} -> absent)")
            else:
                out.extend(flat_diff(old[key], new[key], name))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [line for i, (a, b) in enumerate(zip(old, new)) for line in flat_diff(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [f"{prefix} ({old!r} -> {new!r})"]


def _summarise(keys: list[str], limit: int = 6) -> str:
    """The first few differing keys, user-facing ones (physics.params.*) first."""
    keys = sorted(keys, key=lambda k: (not k.startswith("physics.params"), k))
    text = "; ".join(keys[:limit])
    return text + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


def config_differences(old: dict, new: dict) -> str:
    """The differing keys of two hashed configs, summarised ('(nothing hashed; format change)' when none)."""
    keys = flat_diff(old, new)
    return _summarise(keys) if keys else "(nothing hashed; format change)"
