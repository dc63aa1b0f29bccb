"""The directories a task will write, probed before it starts (and before Hydra creates the run directory).

- ``output_dir``: every task (Hydra writes ``.hydra/`` and the log there);
- ``data_dir``: tasks that read or generate the dataset. A directory that exists but cannot be written
  is accepted here: a valid dataset in a read-only folder is read without a lock, and
  `hyco.data.generate.ensure_dataset` refuses in one line if the file would have to be written;
- ``cache_dir``: tasks that train HYCO (the per-cycle cache of generated windows). A cache directory outside
  the run directory may be shared by several runs (every job of a sweep, two runs started by hand): each run
  then writes into its own subdirectory of it (`run_cache_dir`), so no run waits for or reads another's.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hyco.config.schema import HycoConfig
from hyco.errors import ConfigError
from hyco.utils.paths import write_problem

DATA_TASKS = ("generate", "train", "evaluate", "run")


def task_directories(cfg: HycoConfig) -> dict[str, str]:
    """Config key -> directory for every directory the task may create or write."""
    out = {"output_dir": cfg.output_dir}
    if cfg.task in DATA_TASKS:
        out["data_dir"] = cfg.data_dir
    if cfg.task == "run" or (cfg.task == "train" and cfg.mode == "hybrid"):
        out["cache_dir"] = cfg.cache_dir
    return out


def check_task_paths(cfg: HycoConfig) -> None:
    """Raise a one-line ConfigError naming the key when a directory of the task cannot be written."""
    for key, directory in task_directories(cfg).items():
        problem = write_problem(directory)
        if problem is None:
            continue
        if key == "data_dir" and Path(directory).is_dir():
            continue  # read-only data: decided by ensure_dataset once the dataset's name is known
        raise ConfigError(key, "", message=problem)


def run_cache_dir(cache_dir: str | Path, run_dir: str | Path) -> Path:
    """Where one run's HYCO cache goes: `cache_dir` itself when it lies inside the run directory (the default
    `${output_dir}/cache`), else `<cache_dir>/<run dir name>-<hash of its absolute path>`, one per run directory
    (the same one again when the run resumes)."""
    cache, run = Path(cache_dir), Path(run_dir).resolve()
    try:
        cache.resolve().relative_to(run)
    except ValueError:
        digest = hashlib.sha1(str(run).encode()).hexdigest()[:10]
        return cache / f"{run.name}-{digest}"
    return cache
