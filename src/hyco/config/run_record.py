"""The configuration a trained model came from, read back from its run directory's Hydra record.

`hyco evaluate checkpoint=PATH` without `experiment=` must run the checkpoint's own experiment (its PDE model,
grid and dataset), not the default one. Hydra records every run in `<run dir>/.hydra/`: `hydra.yaml` holds the
config choices the run ended with (`runtime.choices`: experiment, physics, network, ...) and `overrides.yaml`
the keys the user set. Replaying both composes the same experiment again.
"""

from __future__ import annotations

from pathlib import Path

from hyco.config.catalogue import GROUPS, shipped_options
from hyco.errors import ConfigError

RECORD = ".hydra"
LEVELS = 3  # synthetic/best.pt, hyco/synthetic/best.pt: the run directory is at most this far up
# keys of the recorded run that describe that run's process and outputs, not its experiment
NOT_REPLAYED = ("task", "output_dir", "cache_dir", "mode", "resume", "device", "threads", "dist_backend",
                "log_level", "evaluation.checkpoint", "evaluation.data", "hydra")
SHORTHANDS = ("checkpoint", "data")  # `data=PATH` is the dataset file; `data.<key>` are dataset sizes, replayed


def write_record(run_dir: Path, task_cfg) -> None:
    """Write `<run_dir>/.hydra/` (config.yaml, hydra.yaml, overrides.yaml) as Hydra would: hyco asks Hydra not
    to (`hydra.output_subdir=null`) and writes it once the job holds its run directory."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    folder = Path(run_dir) / RECORD
    folder.mkdir(parents=True, exist_ok=True)
    hydra_cfg = HydraConfig.instance().cfg
    OmegaConf.save(task_cfg, folder / "config.yaml")
    OmegaConf.save(hydra_cfg, folder / "hydra.yaml")
    OmegaConf.save(hydra_cfg.hydra.overrides.task, folder / "overrides.yaml")


def find_record(checkpoint: Path) -> Path | None:
    """The `.hydra` folder of the run directory that holds `checkpoint`, or None."""
    for folder in list(checkpoint.resolve().parents)[:LEVELS]:
        if (folder / RECORD / "hydra.yaml").is_file():
            return folder / RECORD
    return None


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _is_replayed(key: str) -> bool:
    if key in GROUPS or key in SHORTHANDS:
        return False
    return not any(key == k or key.startswith(k + ".") for k in NOT_REPLAYED)


def recorded_overrides(checkpoint: Path, user_keys: set[str], config_dirs: list[Path]) -> list[str]:
    """Overrides that compose the experiment the checkpoint was trained in (before the user's own; keys the
    user sets are left to the user). Empty when no record is found."""
    from omegaconf import OmegaConf

    record = find_record(checkpoint)
    if record is None:
        return []
    choices = OmegaConf.load(record / "hydra.yaml").hydra.runtime.choices
    given = OmegaConf.load(record / "overrides.yaml") if (record / "overrides.yaml").is_file() else []
    experiment = str(choices.get("experiment", ""))
    known = {o.name for o in shipped_options("experiment")}
    known |= {p.stem for d in config_dirs for p in (d / "experiment").glob("*.y*ml")}
    if experiment not in known:
        raise ConfigError("experiment", "", message=(
            f"the run of {checkpoint} used experiment {experiment!r}, which is neither shipped nor in "
            "a --config-dir; pass experiment=<its file or name>"))
    out = [f"{group}={choices[group]}" for group in GROUPS if choices.get(group) and group not in user_keys]
    out += [str(o) for o in given if "=" in str(o) and _is_replayed(_key(str(o))) and _key(str(o)) not in user_keys]
    return out
