"""One training process per run directory: an advisory `flock` on `<dir>/.hyco.lock`.

Two `hyco train` (or two `resume=true`) into one directory would interleave checkpoints and write every
metrics line twice. The lock is an open file description holding `flock(LOCK_EX)`: the kernel releases it
when the process ends in any way, SIGKILL included, so a lock left by a killed run is never stale; the
next run takes it over and says whose it was (the file records the holder: pid, host, start time,
command). The file itself is never deleted: unlinking a lock file lets two processes lock two different
inodes of the same name.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

from hyco.errors import HycoError

log = logging.getLogger(__name__)

LOCK_NAME = ".hyco.lock"


class RunDirectoryBusy(HycoError):
    """Another process holds the directory's lock."""


def _describe(owner: dict) -> str:
    started = owner.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if isinstance(started, (int, float)) else "?"
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {when}"


class RunLock:
    """`RunLock(directory, key).acquire()` ... `release()`; `key` names the config key in messages."""

    def __init__(self, directory: str | Path, key: str = "output_dir"):
        self.directory = Path(directory)
        self.key = key
        self.path = self.directory / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock or raise RunDirectoryBusy naming the holder; logs when a dead run's lock is taken over."""
        if self._fd is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _read_owner(fd)
            os.close(fd)
            command = f" ({owner['command']})" if owner.get("command") else ""
            raise RunDirectoryBusy(f"{self.key}: {self.directory} is in use by another hyco process "
                                   f"({_describe(owner)}){command}; wait for it to finish or choose another "
                                   f"{self.key}") from None
        previous = _read_owner(fd)
        if previous:
            log.warning("%s: taking over the lock of a run that ended without releasing it (%s; killed?)",
                        self.directory, _describe(previous))
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": " ".join(["hyco", *sys.argv[1:]])[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Clear the holder record (a clean end) and unlock."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_owner(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        owner = json.loads(text) if text else {}
    except (OSError, ValueError):
        return {"pid": "?"}
    return owner if isinstance(owner, dict) else {"pid": "?"}
