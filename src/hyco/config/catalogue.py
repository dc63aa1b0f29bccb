"""What a user can choose, read without importing torch: the shipped config options (experiments, PDE
models, networks, observations, trainers) with their one-line descriptions, and the plug-ins declared as
entry points. `hyco --help` and `hyco list` print it."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from importlib.resources import files
from pathlib import Path

CONFIG_MODULE = "hyco.conf"
GROUPS = ("experiment", "physics", "network", "observation", "trainer")
ENTRY_POINTS = {"physics": "hyco.physics", "network": "hyco.networks"}


@dataclass(frozen=True)
class Option:
    name: str
    description: str
    source: str = "shipped"  # or "plug-in <module:object>"


def _description(text: str) -> str:
    """The first sentence of a YAML file's leading comment (after `# @package`): up to the first full stop, or
    the end of a line that ends in one or in a colon (what follows a colon is an equation or a list)."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        line = line.lstrip("#").strip()
        if line.startswith("@package"):
            continue
        lines.append(line)
        if line.endswith((".", ":")):
            break
    words = " ".join(lines)
    end = words.find(". ")
    sentence = words[:end + 1] if end >= 0 else words
    return sentence[:-1] + "." if sentence.endswith(":") else sentence


def shipped_options(group: str) -> list[Option]:
    folder = files(CONFIG_MODULE) / group
    try:
        paths = sorted((p for p in folder.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [Option(p.name[:-5], _description(p.read_text())) for p in paths]


def plugin_options(group: str) -> list[Option]:
    """Models declared by installed packages in the entry-point group (`hyco.physics` / `hyco.networks`);
    named, not imported."""
    if group not in ENTRY_POINTS:
        return []
    return [Option(e.name, f"plug-in ({e.value})", source="plug-in")
            for e in sorted(entry_points(group=ENTRY_POINTS[group]), key=lambda e: e.name)]


def user_options(group: str, config_dir: str | Path) -> list[Option]:
    folder = Path(config_dir) / group
    paths = sorted(folder.glob("*.yaml")) if folder.is_dir() else []
    return [Option(p.stem, _description(p.read_text()), source=str(folder)) for p in paths]


def options(group: str, config_dir: str | Path | None = None) -> list[Option]:
    found = shipped_options(group) + plugin_options(group)
    return found + (user_options(group, config_dir) if config_dir is not None else [])


def names(group: str) -> list[str]:
    return [o.name for o in options(group)]
