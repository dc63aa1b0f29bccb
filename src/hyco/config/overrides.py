"""The command line as a user writes it, turned into the overrides Hydra composes.

- `experiment=./my_exp.yaml` (a file anywhere): copied into a private config folder on Hydra's search path
  (with `# @package _global_` added when it lacks a package line) and selected by its stem.
- `config_dirs` (`--config-dir DIR`): DIR joins the search path, so `experiment=<name>` finds
  `DIR/experiment/<name>.yaml` (and `physics=`, `network=` ... their folders) before any check runs; an
  experiment there without a package line is taken like a file anywhere (the line added in a private copy).
- A plug-in model (`physics=<name>`, or `physics=plugin physics.name=<name>`; the same for `network`) becomes
  a config option whose keys are its `Params` with their defaults: `physics.<key>=<value>` sets one without
  a leading `+`, and `--cfg job` shows them. Without `experiment=`, a plug-in PDE gets the neutral
  `experiment=plugin` (its own name, every value observed) instead of the default Burgers experiment.

- `data.external.fields.<file field>=<physics field>` adds one pair of the mapping without a leading `+`.
- `checkpoint=PATH` and `data=PATH` (`hyco evaluate`) are short for `evaluation.checkpoint=` and
  `evaluation.data=` (`data` is otherwise the section of dataset sizes: only a path value is taken for one).
  Without `experiment=`, the checkpoint's own experiment is composed from its run directory's Hydra record
  (`hyco.config.run_record`).

`prepare` is idempotent: the CLI applies it once and `validate.compose` again on what it returns.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hyco.config.catalogue import shipped_options
from hyco.errors import ConfigError

SECTIONS = ("physics", "network")
PLUGIN_OPTION = "plugin"  # the shipped key-less `physics=plugin` that names its model with `physics.name=`
NEUTRAL_EXPERIMENT = "plugin"
SHORTHANDS = {"checkpoint": "evaluation.checkpoint", "data": "evaluation.data"}
# mappings whose keys the user chooses: `data.external.fields.<file field>=<physics field>` (or the whole mapping,
# `data.external.fields={...}`) needs no `+`
OPEN_MAPPINGS = ("data.external.fields",)
_files_dir: Path | None = None


def _key_value(override: str) -> tuple[str, str] | None:
    """(key, value) of a plain `key=value` override (any leading `+`/`~` kept in the key); None otherwise."""
    if "=" not in override:
        return None
    key, value = override.split("=", 1)
    return key, value


def _private_dir() -> Path:
    """A folder on the search path for single experiment files; removed when the process ends."""
    global _files_dir
    if _files_dir is None:
        _files_dir = Path(tempfile.mkdtemp(prefix="hyco-config-"))
        atexit.register(shutil.rmtree, _files_dir, True)
    return _files_dir


def _experiment_file(value: str | Path) -> str:
    """Copy the file into the private folder's `experiment/` group; return the option name."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError("experiment", "the name of an experiment or an existing .yaml file", value)
    text = path.read_text()
    if "@package" not in text.split("\n", 1)[0]:
        text = "# @package _global_\n" + text
    target = _private_dir() / "experiment" / f"{path.stem}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return path.stem


def _unpackaged_experiment(name: str, dirs: list[Path]) -> Path | None:
    """`DIR/experiment/<name>.yaml` of a --config-dir whose first line has no `@package` (Hydra would put its
    keys under `experiment.`), or None."""
    for folder in dirs:
        path = folder / "experiment" / f"{name}.yaml"
        if path.is_file() and "@package" not in path.read_text().split("\n", 1)[0]:
            return path
    return None


def _search_path(overrides: list[str], dirs: list[Path]) -> list[str]:
    """`hydra.searchpath=[...]` with `dirs` first, merged into an existing one."""
    entries = [f"file://{d.resolve()}" for d in dirs]
    out = []
    for override in overrides:
        kv = _key_value(override)
        if kv and kv[0].lstrip("+") == "hydra.searchpath":
            entries += [e.strip().strip("'\"") for e in kv[1].strip("[]").split(",") if e.strip()]
            continue
        out.append(override)
    if not entries:
        return out
    unique = list(dict.fromkeys(entries))
    return [*out, f"hydra.searchpath=[{','.join(unique)}]"]


def _plugins(overrides: list[str]) -> list[str]:
    for override in overrides:
        kv = _key_value(override)
        if kv and kv[0].lstrip("+") == "plugins":
            return [p.strip().strip("'\"") for p in kv[1].strip("[]").split(",") if p.strip()]
    return []


def plugin_defaults(params: Any) -> dict[str, Any]:
    """The `physics`/`network` section of a registered model, given its `Params` dataclass (None: it has
    none): `name` is added by the caller; the keys of `Params` with their defaults."""
    from omegaconf import OmegaConf

    if params is None or not dataclasses.is_dataclass(params):
        return {}
    return OmegaConf.to_container(OmegaConf.structured(params), resolve=False)


def _register_option(section: str, name: str, plugins: list[str]) -> bool:
    """Make `section=<name>` a config option holding the model's defaults; False when `name` is no
    registered model."""
    from hydra.core.config_store import ConfigStore

    from hyco.config.registry import SECTIONS as REGISTRIES
    from hyco.config.registry import import_plugins

    try:
        import_plugins(plugins)
    except ImportError as exc:
        raise ConfigError("plugins", "importable module names", str(exc)) from None
    registry = REGISTRIES[section]
    if name not in registry:
        return False
    defaults = plugin_defaults(registry.params_class(name))  # a shipped model's without importing it
    ConfigStore.instance().store(group=section, name=name, node={"name": name, **defaults})
    return True


def _plugin_sections(overrides: list[str]) -> tuple[list[str], set[str]]:
    """Rewrite plug-in model selections to their registered options; returns the sections that got one."""
    plugins = _plugins(overrides)
    selected: set[str] = set()
    out = list(overrides)
    for section in SECTIONS:
        shipped = {o.name for o in shipped_options(section)}
        choice = next((kv[1] for kv in map(_key_value, out) if kv and kv[0] == section), None)
        named = next((kv[1] for kv in map(_key_value, out) if kv and kv[0].lstrip("+") == f"{section}.name"), None)
        name = named if choice == PLUGIN_OPTION and named else choice
        if not name or name in shipped or "," in name or not _register_option(section, name, plugins):
            continue
        selected.add(section)
        out = [o for o in out if _key_value(o) is None or _key_value(o)[0].lstrip("+") != f"{section}.name"]
        out = [f"{section}={name}" if (_key_value(o) or ("",))[0] == section else o for o in out]
        # keys that now exist with their defaults: `+key=` (append) would refuse them, `++` sets them either way
        out = [f"+{o}" if o.startswith(f"+{section}.") and not o.startswith("++") else o for o in out]
    return out, selected


def _checkpoint_experiment(overrides: list[str], dirs: list[Path]) -> list[str]:
    """`evaluation.checkpoint=PATH` without `experiment=`: the recorded run's choices and keys first."""
    from hyco.config.run_record import recorded_overrides

    keys = {kv[0].lstrip("+~") for kv in map(_key_value, overrides) if kv}
    checkpoint = next((kv[1] for kv in map(_key_value, overrides) if kv and kv[0] == "evaluation.checkpoint"), "")
    if not checkpoint or "experiment" in keys:
        return overrides
    recorded = recorded_overrides(Path(checkpoint).expanduser(), keys, dirs)
    if not recorded and "evaluation.data" not in keys:
        raise ConfigError("experiment", "", message=(
            f"no run record (.hydra/) above {checkpoint} names the experiment it was trained in; pass "
            "experiment=<name> or data=<dataset file>"))
    return [*recorded, *overrides]


def prepare(overrides: list[str], config_dirs: list[str | Path] = ()) -> list[str]:
    """The overrides Hydra should compose for what the user typed (see the module's docstring)."""
    out, dirs = [], [Path(d) for d in config_dirs]
    for override in overrides:
        kv = _key_value(override)
        if kv and kv[0] in SHORTHANDS and not kv[1].lstrip().startswith(("{", "null")):
            override = f"{SHORTHANDS[kv[0]]}={kv[1]}"
        if kv and any(kv[0] == key or kv[0].startswith(key + ".") for key in OPEN_MAPPINGS):
            override = f"++{kv[0]}={kv[1]}"  # a new key or an existing one alike (`++`: add or set)
        if kv and kv[0] == "experiment" and kv[1].endswith((".yaml", ".yml")):
            override = f"experiment={_experiment_file(kv[1])}"
            dirs.append(_private_dir())
        elif kv and kv[0] == "experiment" and (found := _unpackaged_experiment(kv[1], dirs)) is not None:
            _experiment_file(found)  # the copy with `# @package _global_` is found before the user's file
            dirs.insert(0, _private_dir())
        out.append(override)
    for d in dirs:
        if not d.is_dir():
            raise ConfigError("--config-dir", "an existing directory", str(d))
    out = _checkpoint_experiment(out, dirs)
    out = _search_path(out, dirs)
    out, plugged = _plugin_sections(out)
    if "physics" in plugged and not any((_key_value(o) or ("",))[0] == "experiment" for o in out):
        out.append(f"experiment={NEUTRAL_EXPERIMENT}")
    return out
