"""What the CLI does around a task so that a run directory survives signals, kills and a second process.

- `claim_run`: one training process per run directory (and per HYCO cache directory outside it), see
  `hyco.utils.run_lock`; then the leftovers of a killed run there are removed, in one log line.
- `stop_message`: after SIGTERM/SIGHUP/SIGINT, the one line that says how to continue.

Leftovers of a SIGKILL are exactly: temporary files of atomic writes (`.<name>.<random>.tmp.<ext>`, a
checkpoint, summary or metrics file being written) and the HYCO cycle cache (`<cache_dir>/generated/`).
Checkpoints, metrics logs and summaries are never half-written under their own names, and metrics
records beyond the checkpoint are dropped when training continues (`hyco.training.run_log`).
"""

from __future__ import annotations

import logging
import shlex
import shutil
from pathlib import Path

from hyco.config.paths import run_cache_dir
from hyco.config.schema import HycoConfig
from hyco.utils.io import stray_temporaries
from hyco.utils.launch_env import is_main_rank  # under torchrun only rank 0 owns the run directory
from hyco.utils.run_lock import RunLock

log = logging.getLogger(__name__)

LOCKED_TASKS = ("train", "run")  # tasks that write checkpoints and metrics into the run directory
RESUMABLE_TASKS = ("train", "run")
GENERATED_CACHE = "generated"  # hyco.training.augmentation.CacheManager's root under cache_dir

_held: dict[Path, RunLock] = {}  # this process's locks, by resolved directory


def uses_cache(cfg: HycoConfig) -> bool:
    return cfg.task == "run" or (cfg.task == "train" and cfg.mode == "hybrid")


def lock_directory(directory: str | Path, key: str) -> RunLock | None:
    """Lock `directory` for this process (once; later calls return the held lock)."""
    if not is_main_rank():
        return None
    resolved = Path(directory).resolve()
    if resolved not in _held:
        _held[resolved] = RunLock(resolved, key).acquire()
    return _held[resolved]


def holds_lock(directory: str | Path) -> bool:
    lock = _held.get(Path(directory).resolve())
    return lock is not None and lock.held


def release_all() -> None:
    for lock in _held.values():
        lock.release()
    _held.clear()


def release(directory: str | Path) -> None:
    """Release this process's lock of `directory` (a finished job of a sweep that runs in this process)."""
    lock = _held.pop(Path(directory).resolve(), None)
    if lock is not None:
        lock.release()


def lock_run(cfg: HycoConfig, run_dir: Path) -> None:
    """Lock the run directory (and an outside cache directory) of a training task before anything is written
    there. Raises RunDirectoryBusy (one line, exit 2) when another process has it: the refused start has
    then written nothing into that directory."""
    if cfg.task not in LOCKED_TASKS or not is_main_rank():
        return
    lock_directory(run_dir, "output_dir")
    cache_dir = run_cache_dir(cfg.cache_dir, run_dir)
    if uses_cache(cfg) and not _inside(cache_dir, run_dir):
        lock_directory(cache_dir, "cache_dir")


def claim_run(cfg: HycoConfig, run_dir: Path) -> None:
    """Lock the run directory of a training task (see `lock_run`), then clean up what a killed run left there."""
    if cfg.task not in LOCKED_TASKS or not is_main_rank():
        return
    lock_run(cfg, run_dir)
    remove_leftovers(run_dir, run_cache_dir(cfg.cache_dir, run_dir) if uses_cache(cfg) else None)


def sweep_after_stop(cfg: HycoConfig, run_dir: Path) -> None:
    """After a signal stopped the task: remove what a cleanup cut short may have left (the `finally`
    blocks normally leave nothing), in the directories this process holds."""
    if cfg.task not in LOCKED_TASKS or not holds_lock(run_dir):
        return
    cache_dir = run_cache_dir(cfg.cache_dir, run_dir)
    own_cache = uses_cache(cfg) and (_inside(cache_dir, run_dir) or holds_lock(cache_dir))
    remove_leftovers(run_dir, cache_dir if own_cache else None)


def _inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
    except ValueError:
        return False
    return True


def remove_leftovers(run_dir: Path, cache_dir: Path | None) -> list[Path]:
    """Remove stray temporary files under `run_dir` and the cycle cache under `cache_dir`; one log line.

    The caller must hold the locks of both directories (no other process writes there)."""
    removed: list[Path] = stray_temporaries(run_dir)
    for path in removed:
        path.unlink(missing_ok=True)
    cache_files = 0
    cache = Path(cache_dir) / GENERATED_CACHE if cache_dir is not None else None
    if cache is not None and cache.exists():
        cache_files = sum(1 for p in cache.rglob("*") if p.is_file())
        shutil.rmtree(cache, ignore_errors=True)
        removed.append(cache)
    if removed:
        parts = []
        temporaries = [p for p in removed if p != cache]
        if temporaries:
            parts.append(f"{len(temporaries)} temporary file(s) ({', '.join(p.name for p in temporaries[:3])}"
                         f"{', ...' if len(temporaries) > 3 else ''})")
        if cache is not None and cache in removed:
            parts.append(f"the cycle cache {cache} ({cache_files} file(s))")
        log.info("removed what an interrupted run left in %s: %s", run_dir, "; ".join(parts))
    return removed


def stop_message(signal_name: str, cfg: HycoConfig, run_dir: Path, overrides: list[str]) -> str:
    """One line: what stopped the task and how to continue it."""
    head = f"stopped by {signal_name} after cleaning up"
    if cfg.task not in RESUMABLE_TASKS:
        return f"{head}; nothing half-written was kept: run the same command again"
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("task", "output_dir", "resume")]
    command = shlex.join(["hyco", cfg.task, *kept, f"output_dir={run_dir}", "resume=true"])
    return f"{head}; continue from the last checkpoint with: {command}"
