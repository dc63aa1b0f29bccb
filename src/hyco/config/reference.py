"""The configuration reference (a Markdown page): every key of the schema and of the shipped PDE models and
networks, with its type, allowed values, the default that actually runs and its description.

Everything is read from the declarations (`hyco.config.fields.setting`) and from the shipped config tree, so the
page cannot fall behind them: the docs build writes it afresh (`docs/hooks.py`), and `python -m
hyco.config.reference` prints it. "The default that runs" is the value `hyco run` composes with no arguments
(the default experiment), or, for a PDE model or network, the value its shipped config file sets; where the
schema's own default differs, that is given too.
"""

from __future__ import annotations

import dataclasses
import json
from importlib.resources import files
from typing import Any

from hyco.config.fields import allowed_values, metadata, type_name

# the sections of the top-level schema that get a table of their own, in order
SECTIONS = ("", "data", "data.external", "data.external.splits", "observation", "trainer.synthetic",
            "trainer.physical", "trainer.hybrid", "trainer.hybrid.physical", "trainer.hybrid.synthetic", "evaluation")
MODEL_SECTIONS = ("physics", "network")

INTRO = """# Configuration reference

Every key hyco reads, generated from the schema's declarations (`hyco/config/schema.py` and the shipped models'
`Params` in `hyco/config/models/`) when these pages are built, so it is always the one in force. Set a key on the
command line (`hyco run trainer.hybrid.alpha=0.3`), in an experiment file, or in `hyco.compose([...])`; a value
outside the allowed ones is refused in one line naming the key.

**Default** is what runs when nothing sets the key: for the sections below, what `hyco run` composes without
arguments (the default experiment `{experiment}`: physics `{physics}`, network `{network}`, observation
`{observation}`, trainer `{trainer}`). Where a shipped config file sets a key, the schema's own default (what a
config of your own gets when it leaves the key out) follows in brackets. Each experiment sets its own values:
`hyco run experiment=<name> --cfg job` prints them all.
"""


# ------------------------------------------------------------------------------------------------ values
def _value(value: Any) -> str:
    """A value as YAML would spell it, for a table cell."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    return json.dumps(value, separators=(", ", ": ")).replace('"', "")


def _profile(profile: dict[str, Any]) -> str:
    """A profile (a coefficient's truth or guess) in a few words."""
    kind = profile.get("type", "constant")
    if kind == "constant":
        return _value(profile.get("value"))
    if kind == "sinusoid":
        return (f"sinusoid (value {_value(profile.get('value'))}, amplitude {_value(profile.get('amplitude'))}, "
                f"wavenumber {_value(profile.get('wavenumber'))})")
    return f"gaussians (value {_value(profile.get('value'))}, {len(profile.get('centers') or [])} bumps)"


def _coefficient(coefficient: dict[str, Any]) -> str:
    """A coefficient's config in a few words: what is learned, the truth, the guess."""
    if not coefficient.get("learn", True):
        return f"known: {_profile(coefficient.get('truth', {}))}"
    kind = coefficient.get("kind", "scalar")
    if kind == "parametric":
        kind = f"parametric {_value(coefficient.get('parameters'))}"
    return f"{kind}: truth {_profile(coefficient.get('truth', {}))}, guess {_profile(coefficient.get('guess', {}))}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _shown(value: Any, kind: str) -> str:
    if kind in ("coefficient", "profile"):
        plain = _plain(value)
        return _coefficient(plain) if kind == "coefficient" else _profile(plain)
    return f"`{_value(value)}`"


# ------------------------------------------------------------------------------------------------ keys
@dataclasses.dataclass(frozen=True)
class Key:
    """One row of the reference."""

    name: str  # dotted, as on the command line
    type: str
    allowed: str
    doc: str
    default: Any  # the schema's (dataclass) default


def _is_section(cls: type, declared: dataclasses.Field) -> bool:
    return declared.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(
        declared.default_factory()) and metadata(cls, declared.name).get("kind") is None


def keys(cls: type, prefix: str = "") -> list[Key]:
    """The keys of dataclass `cls` that are not sections of their own (those: `sections`)."""
    out = []
    for declared in dataclasses.fields(cls):
        if _is_section(cls, declared):
            continue
        meta = metadata(cls, declared.name)
        annotation = type_name(declared.type)
        if declared.default is not dataclasses.MISSING:
            default = declared.default
        else:
            default = declared.default_factory() if declared.default_factory is not dataclasses.MISSING else None
        out.append(Key(prefix + declared.name, meta.get("kind") or annotation,
                       allowed_values(cls, declared.name, annotation), meta.get("doc", ""), default))
    return out


def sections(cls: type, prefix: str = "") -> dict[str, tuple[type, str]]:
    """Dotted name -> (dataclass, description) of `cls`'s nested sections, depth first, `cls` itself as `prefix`."""
    out = {prefix: (cls, "")}
    for declared in dataclasses.fields(cls):
        if _is_section(cls, declared):
            name = f"{prefix}.{declared.name}" if prefix else declared.name
            child = type(declared.default_factory())
            out.update(sections(child, name))
            out[name] = (child, metadata(cls, declared.name).get("doc", ""))
    return out


def _lookup(tree: Any, dotted: str) -> Any:
    for part in filter(None, dotted.split(".")):
        if not isinstance(tree, dict) or part not in tree:
            return dataclasses.MISSING
        tree = tree[part]
    return tree


def _table(rows: list[Key], values: dict[str, list[Any]]) -> list[str]:
    """A Markdown table: key, type, allowed, a column per entry of `values` (heading -> value per row), description."""
    head = ["key", "type", "allowed", *values, "description"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for i, key in enumerate(rows):
        cells = [f"`{key.name}`", _cell(key.type), _cell(key.allowed or "—")]
        for column in values.values():
            value = column[i]
            default = _shown(key.default, key.type)
            shown = default if value is dataclasses.MISSING else _shown(value, key.type)
            if key.type == "section":
                shown = f"`{value}` (below)"
            elif shown != default:
                shown += f" ({default})"
            cells.append(_cell(shown))
        cells.append(_cell(key.doc))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


# ------------------------------------------------------------------------------------------------ the page
def _composed_default() -> tuple[dict[str, Any], dict[str, str]]:
    """The config `hyco run` composes without arguments (interpolations kept), and its group choices."""
    from omegaconf import OmegaConf

    from hyco.config.validate import compose

    composed = OmegaConf.to_container(compose("run", []), resolve=False)
    def defaults_of(path) -> list:
        return OmegaConf.to_container(OmegaConf.load(str(path))).get("defaults", [])

    choices = {k: v for d in defaults_of(files("hyco.conf") / "config.yaml") if isinstance(d, dict)
               for k, v in d.items() if not k.startswith("override")}
    experiment = files("hyco.conf") / "experiment" / f"{choices['experiment']}.yaml"
    for entry in defaults_of(experiment):
        if isinstance(entry, dict):
            choices.update({k.removeprefix("override /"): v for k, v in entry.items()})
    return composed, choices


def _shipped(group: str) -> dict[str, dict[str, Any]]:
    """Shipped config name -> its content, for `physics` or `network`."""
    from omegaconf import OmegaConf

    folder = files("hyco.conf") / group
    found = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    return {name[:-5]: OmegaConf.to_container(OmegaConf.load(str(folder / name))) for name in found}


def _schema_part(composed: dict[str, Any], choices: dict[str, str]) -> list[str]:
    from hyco.config.schema import HycoConfig

    parts = []
    for name, (cls, doc) in sections(HycoConfig).items():
        rows = keys(cls, f"{name}." if name else "")
        if not rows:
            continue
        parts += ["", f"## `{name}`" if name else "## Top-level keys", ""]
        if doc:
            parts += [doc, ""]
        values = [f"{key.name}={choices[key.name]}" if key.type == "section" else _lookup(composed, key.name)
                  for key in rows]
        parts += _table(rows, {"default": values})
    return parts


def _models_part(section: str, params: dict[str, type], runtime: list[Key]) -> list[str]:
    shipped = _shipped(section)
    title = {"physics": "PDE models (`physics.*`)", "network": "Networks (`network.*`)"}[section]
    parts = ["", f"## {title}", ""]
    parts += [f"Choose one with `{section}=<config>`; the shipped config files are listed per model with what "
              "each sets (in brackets the model's own default, which a plug-in's section or a config that leaves "
              "the key out gets).", ""]
    for model, cls in sorted(params.items()):
        configs = {name: content for name, content in shipped.items() if content.get("name") == model}
        rows = keys(cls, f"{section}.")
        parts += ["", f"### `{model}`", ""]
        values = {f"`{section}={name}`": [_lookup(content, key.name.split(".", 1)[1]) for key in rows]
                  for name, content in configs.items()} or {"default": [dataclasses.MISSING] * len(rows)}
        parts += _table(rows, values)
    parts += ["", f"### How the {'model' if section == 'physics' else 'network'} runs (every {section} section)", ""]
    parts += _table(runtime, {"default": [dataclasses.MISSING] * len(runtime)})
    return parts


def _coefficient_part() -> list[str]:
    from hyco.config.models.coefficients import CoefficientParams, ProfileParams

    parts = ["", "### Coefficient keys (`physics.<coefficient>.*`)", "",
             "Every learnable coefficient of a model (ν, κ, D_u, ...) has these keys; `truth` and `guess` (and heat's "
             "`init_profile`) are profiles with the keys that follow.", ""]
    parts += _table(keys(CoefficientParams, "physics.<coefficient>."),
                    {"default": [dataclasses.MISSING] * len(keys(CoefficientParams))})
    parts += ["", "Profile keys (`physics.<coefficient>.truth.*`, `....guess.*`):", ""]
    parts += _table(keys(ProfileParams, "physics.<coefficient>.truth."),
                    {"default": [dataclasses.MISSING] * len(keys(ProfileParams))})
    return parts


def reference_markdown() -> str:
    """The whole page."""
    from hyco.config.models import networks, physics

    composed, choices = _composed_default()
    parts = [INTRO.format(**{k: choices.get(k, "?") for k in ("experiment", "physics", "network", "observation",
                                                               "trainer")}).rstrip()]
    parts += _schema_part(composed, choices)
    physics_runtime = [Key(f"physics.{name}", "bool", "true or false", doc, True)
                       for name, doc in physics.RUNTIME_DOCS.items()]
    parts += _models_part("physics", physics.PARAMS, physics_runtime)
    parts += _coefficient_part()
    parts += _models_part("network", networks.PARAMS, keys(networks.RuntimeOptions, "network."))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    print(reference_markdown(), end="")
