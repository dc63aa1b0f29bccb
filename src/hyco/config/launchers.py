"""Hydra launchers for sweeps (`hyco <task> -m ... hydra/launcher=<name>`): which package each needs.

The launchers are Hydra plugins, installed with the `cluster` extra (`pip install 'hyco[cluster]'`).
hyco ships two configs of its own on top of them (conf/hydra/launcher/): `parallel` (joblib: the jobs of a
sweep as parallel local processes) and `slurm` (submitit: one SLURM job per sweep job). A launcher whose
plugin is missing is refused in one line before anything runs.
"""

from __future__ import annotations

import importlib.util

from hyco.config.errors import ConfigError

_JOBLIB = ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher")
_SUBMITIT = ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")
# launcher config name -> (plugin module, PyPI package)
PLUGINS = {"joblib": _JOBLIB, "parallel": _JOBLIB, "submitit_local": _SUBMITIT, "submitit_slurm": _SUBMITIT,
           "slurm": _SUBMITIT}


def launcher_choice(overrides: list[str]) -> str | None:
    """The `hydra/launcher=<name>` of the command line, if any."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.lstrip("+~") == "hydra/launcher":
            return value
    return None


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
