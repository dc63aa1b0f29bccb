"""Fixtures of the fault-injection suite: read-only directories and `hyco` subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUICK = ["experiment=burgers_2d_quick"]


@pytest.fixture
def read_only():
    """`read_only(directory)` returns a read-only view of `directory` for this process and its children.

    Root ignores permission bits, so as root the view is a read-only bind mount (a real read-only file
    system, EROFS); otherwise the directory's own permission bits are cleared (EACCES).
    """
    mounts: list[Path] = []
    chmodded: list[Path] = []

    def make(directory: Path) -> Path:
        if os.geteuid() != 0:
            directory.chmod(0o555)
            chmodded.append(directory)
            return directory
        view = directory.with_name(directory.name + "-ro")
        view.mkdir()
        for command in (["mount", "--bind", str(directory), str(view)],
                        ["mount", "-o", "remount,ro,bind", str(view)]):
            if subprocess.run(command, capture_output=True).returncode != 0:
                if mounts and mounts[-1] == view:
                    subprocess.run(["umount", str(view)], capture_output=True)
                pytest.skip("running as root without permission to mount a read-only view")
            if command[1] == "--bind":
                mounts.append(view)
        return view

    yield make
    for view in mounts:
        subprocess.run(["umount", str(view)], check=True)
    for directory in chmodded:
        directory.chmod(0o755)


def hyco(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None):
    """`python -m hyco ...` with one thread per process (the test machine is shared)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "hyco", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=environment)


def one_error_line(result) -> str:
    """The single `hyco: error:` line of a refused command (asserts there is nothing else on stderr)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("hyco: error: "), result.stderr[-2000:]
    return lines[0][len("hyco: error: "):]
