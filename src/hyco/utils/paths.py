"""Can this process create and write a directory? Asked before any work, so that a file in the way, a
missing permission or a read-only file system ends in one line naming the key, not in a traceback
minutes later.

The answer comes from trying (a probe file created and removed in the nearest existing directory),
not from `os.access`, which says yes to root on a read-only mount and knows nothing of ACLs or quotas.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "read-only file system"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or type(exc).__name__


def write_problem(path: str | Path) -> str | None:
    """None when `path` is, or can be created as, a writable directory; else what is in the way."""
    path = Path(os.path.abspath(os.path.expanduser(str(path))))
    if path.is_symlink() and not path.exists():
        return f"{path} is a dangling symbolic link (to {os.readlink(path)})"
    existing = path
    while not existing.exists():
        if existing.is_symlink():
            return f"cannot create {path}: {existing} is a dangling symbolic link"
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            return f"{path} is a file, expected a directory"
        return f"cannot create {path}: {existing} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".hyco-probe-"):
            pass
    except OSError as exc:
        if existing == path:
            return f"{path} is not writable ({_reason(exc)})"
        return f"cannot create {path}: {existing} is not writable ({_reason(exc)})"
    return None
