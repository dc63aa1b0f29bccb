"""Hydra launchers and sweepers for sweeps (`hyco <task> -m ... hydra/launcher=<name>`): which package each
needs, and which sweep syntax the chosen sweeper can run.

The launchers are Hydra plugins, installed with the `cluster` extra (`pip install 'hyco[cluster]'`).
hyco ships two configs of its own on top of them (conf/hydra/launcher/): `parallel` (joblib: the jobs of a
sweep as parallel local processes) and `slurm` (submitit: one SLURM job per sweep job). A launcher whose
plugin is missing is refused in one line before anything runs.
"""

from __future__ import annotations

import importlib.util

from hyco.errors import ConfigError

_JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
# launcher config name -> (plugin module, PyPI package)
PLUGINS = {"joblib": _JOBLIB, "parallel": _JOBLIB, "submitit_local": _SUBMITIT, "submitit_slurm": _SUBMITIT,
           "slurm": _SUBMITIT}


SWEEPERS = {"optuna": ("hydra_plugins.hydra_optuna_sweeper", "hydra-optuna-sweeper"),
            "nevergrad": ("hydra_plugins.hydra_nevergrad_sweeper", "hydra-nevergrad-sweeper"),
            "ax": ("hydra_plugins.hydra_ax_sweeper", "hydra-ax-sweeper")}


def choice(overrides: list[str], group: str) -> str | None:
    """The `<group>=<name>` of the command line (e.g. hydra/launcher), if any."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") == group:
            return value
    return None


def launcher_choice(overrides: list[str]) -> str | None:
    return choice(overrides, "hydra/launcher")


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def check_launcher(overrides: list[str]) -> None:
    """Refuse, in one line, a launcher whose plugin is not installed."""
    name = launcher_choice(overrides)
    if name is None or name in ("basic",):
        return
    if name not in PLUGINS:
        raise ConfigError("hydra/launcher", f"one of basic, {', '.join(PLUGINS)}", name)
    module, package = PLUGINS[name]
    if not installed(module):
        raise ConfigError("hydra/launcher", "", message=f"{name} needs the {package} package, which is not "
                          "installed; install it with: pip install 'hyco[cluster]'")


def check_sweeper(overrides: list[str]) -> None:
    """Hydra's basic sweeper enumerates `a,b`, choice, range and glob; an `interval(...)` is sampled by a
    sweeper such as Optuna. Refuse, in one line, an interval without one and a sweeper that is not installed."""
    name = choice(overrides, "hydra/sweeper")
    if name in (None, "basic"):
        interval = next((o for o in overrides if "interval(" in o.partition("=")[2]), None)
        if interval is not None:
            raise ConfigError(interval.partition("=")[0], "", message="interval(...) is sampled by a sweeper such "
                              "as Optuna (hydra/sweeper=optuna); Hydra's basic sweeper runs a,b / choice(...) / "
                              "range(...) / glob(...)")
        return
    if name in SWEEPERS and not installed(SWEEPERS[name][0]):
        raise ConfigError("hydra/sweeper", "", message=f"{name} needs the {SWEEPERS[name][1]} package, which is "
                          "not installed")
