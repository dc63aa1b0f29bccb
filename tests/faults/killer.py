"""`python -m tests.faults.killer <hyco arguments>`: `hyco` that lists its writes and can die at any of them.

Every write a run makes to disk is an event, numbered in order: the moments just before and just after each
atomic rename (`os.replace`: a checkpoint, a summary, a dataset; before it, the complete temporary file exists),
before and after each line appended to a metrics log, and after each block of simulations written into a new
dataset. With `HYCO_KILL_AT=N` the process sends itself SIGKILL at event N, the state on disk being exactly what
that moment leaves; `HYCO_EVENTS=<file>` appends every event's name to a file (what the reference run did).

The hooks are installed without importing hyco or torch first (the CLI sets its thread budget before torch
loads): `os.replace` is wrapped at once, the store and the metrics log when Python imports their modules.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from pathlib import Path

_KILL_AT = int(os.environ.get("HYCO_KILL_AT", "0"))
_EVENTS = os.environ.get("HYCO_EVENTS")
_count = 0


def event(name: str) -> None:
    """Number one event; record it, and die here when it is the chosen one."""
    global _count
    _count += 1
    if _EVENTS:
        with open(_EVENTS, "a") as handle:
            handle.write(f"{_count} {name}\n")
    if _count == _KILL_AT:
        os.kill(os.getpid(), signal.SIGKILL)


_real_replace = os.replace


def _replace(src, dst, *args, **kwargs):
    name = Path(os.fsdecode(dst)).name
    event(f"before rename {name}")
    _real_replace(src, dst, *args, **kwargs)
    event(f"after rename {name}")


def _patch_run_log(module) -> None:
    write = module.RunLog.write

    def logged(self, record):
        if self.run_dir is None:
            return write(self, record)
        event(f"before metrics {self.tag} {record.get(self.step_key)}")
        write(self, record)
        event(f"after metrics {self.tag} {record.get(self.step_key)}")

    module.RunLog.write = logged


def _patch_store(module) -> None:
    write = module.StoreWriter.write

    def logged(self, first, trajectories, seeds):
        write(self, first, trajectories, seeds)
        event(f"after rows {first}")

    module.StoreWriter.write = logged


PATCHES = {"hyco.training.run_log": _patch_run_log, "hyco.data.store": _patch_store}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds the patched modules with the ordinary path finder and patches each once it has run."""

    def find_spec(self, name, path, target=None):
        if name not in PATCHES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            PATCHES[name](module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    os.replace = _replace
    sys.meta_path.insert(0, _PatchOnImport())


if __name__ == "__main__":
    install()
    sys.argv = ["hyco", *sys.argv[1:]]
    from hyco.cli import entry

    entry()
