"""Atomic writes: a crash mid-write never leaves a truncated file under the final name.

Under torchrun only rank 0 writes checkpoints, summaries, logs and reports: `atomic_torch_save` and
`atomic_write_text` (and so `atomic_write_json`) do nothing on the other ranks, which run the same code."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# torch and the process group are imported only when needed: the CLI's checks before a run write nothing
# through here and must not pay seconds for importing torch

_UMASK = os.umask(0)
os.umask(_UMASK)
# `atomic_path`'s temporary names: "." + stem + "." + mkstemp's 8 random characters + ".tmp" + suffix
TEMPORARY_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[^./]+)?$")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name keeps the extension, for writers that infer the format from it
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; the final file gets ordinary permissions
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _is_main_rank() -> bool:
    from hyco.utils.distributed import process_info

    return process_info().is_main


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    import torch

    if not _is_main_rank():
        return
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def atomic_write_text(text: str, path: str | Path) -> None:
    if not _is_main_rank():
        return
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(obj: Any, path: str | Path) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", path)


def stray_temporaries(directory: str | Path) -> list[Path]:
    """Temporary files of `atomic_path` under `directory` (recursively): what a killed writer left.

    Only call this while no other process can be writing there (e.g. holding the run directory's lock)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob(".*") if TEMPORARY_NAME.match(p.name) and p.is_file())


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN/inf: a diverged rollout or a loss never computed is reported as null, not as a fake
    number."""
    return value if math.isfinite(value) else None
