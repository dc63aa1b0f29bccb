"""One training process per run directory: the second is refused in one line naming the first; the lock
of a killed run is taken over."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from hyco.utils.run_lock import LOCK_NAME, RunDirectoryBusy, RunLock

from .conftest import hyco, one_error_line
from .harness import QUICK, Hyco, metrics, metrics_problems

HOLDER = """
import sys, time
from hyco.utils.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


@pytest.fixture
def holder(tmp_path):
    """A separate process holding the lock of `tmp_path/run`."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run")], stdout=subprocess.PIPE,
                               text=True)
    assert process.stdout.readline().strip() == "locked"
    yield process
    process.kill()
    process.wait()


def test_second_process_is_refused_naming_the_first(tmp_path, holder):
    with pytest.raises(RunDirectoryBusy) as info:
        RunLock(tmp_path / "run").acquire()
    message = str(info.value)
    assert message.startswith(f"output_dir: {tmp_path / 'run'} is in use by another hyco process (pid {holder.pid} "
                              f"on {socket.gethostname()}, started ")
    assert "\n" not in message


def test_lock_of_a_killed_run_is_taken_over_and_reported(tmp_path, holder, caplog):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with caplog.at_level(logging.WARNING, logger="hyco.utils.run_lock"):
        lock = RunLock(tmp_path / "run").acquire()
    assert f"pid {holder.pid}" in caplog.text and "ended without releasing it" in caplog.text
    assert json.loads((tmp_path / "run" / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert (tmp_path / "run" / LOCK_NAME).read_text() == ""  # a clean end leaves no holder behind
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hyco.utils.run_lock"), RunLock(tmp_path / "run"):
        pass
    assert caplog.text == ""


def test_cli_refuses_a_busy_run_directory_before_hydra_writes_anything(tmp_path, holder):
    result = hyco("train", "mode=synthetic", *QUICK, f"output_dir={tmp_path / 'run'}", f"data_dir={tmp_path}/data",
                  cwd=tmp_path)
    message = one_error_line(result)
    assert message.startswith(f"output_dir: {tmp_path / 'run'} is in use by another hyco process (pid {holder.pid}")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_NAME]  # no .hydra/, no log
    assert not (tmp_path / "data").exists()


@pytest.mark.slow
@pytest.mark.parametrize("resume", [False, True], ids=["train", "resume"])
def test_two_trainings_at_once_one_runs_the_other_is_refused(tmp_path, resume):
    """Two `hyco train` (or two `resume=true`) started together into one directory: exactly one runs, and the
    run it leaves equals a solo run's (each metrics step once, same values)."""
    data = f"data_dir={tmp_path}/data"
    args = ["train", "mode=synthetic", *QUICK, "trainer.synthetic.epochs=6", data]
    solo = tmp_path / "solo"
    assert Hyco([*args, f"output_dir={solo}"], tmp_path / "solo.log").wait() == 0
    run_dir = tmp_path / "run"
    extra = []
    if resume:  # the run stopped after two epochs, then both processes continue it
        first = Hyco([*args, f"output_dir={run_dir}"], tmp_path / "part.log")
        log = run_dir / "synthetic" / "metrics.jsonl"
        while first.process.poll() is None and not (log.exists() and len(log.read_text().splitlines()) >= 2):
            time.sleep(0.05)
        first.signal(signal.SIGTERM)
        assert first.wait() == 128 + signal.SIGTERM, first.text()[-2000:]
        extra = ["resume=true"]
    both = [Hyco([*args, f"output_dir={run_dir}", *extra], tmp_path / f"{name}.log") for name in ("a", "b")]
    codes = sorted(p.wait() for p in both)
    outputs = [p.text() for p in both]
    assert codes == [0, 2], outputs
    refused = next(o for o in outputs if "is in use by another hyco process" in o)
    assert refused.strip().splitlines()[-1].startswith(f"hyco: error: output_dir: {run_dir} is in use by another")
    assert metrics_problems(run_dir, "synthetic") == []
    assert metrics(run_dir, "synthetic") == metrics(solo, "synthetic")
