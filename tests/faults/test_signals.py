"""SIGTERM, SIGHUP and SIGINT stop a task cleanly: every cleanup runs, the last checkpoint stays, the exit
code is 128 + signal, and one line says how to continue. Leftovers of a SIGKILL are removed by the next
run on that directory."""

from __future__ import annotations

import copy
import logging
import os
import pickle
import signal

import pytest

from hyco.cli import main
from hyco.run_safety import remove_leftovers
from hyco.utils.io import atomic_path
from hyco.utils.signals import Interrupted, as_interrupted, stop_on_signals

from .harness import QUICK, kill_at, leftovers


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_signal_becomes_an_exception_that_runs_finally_blocks(tmp_path, signum):
    target = tmp_path / "checkpoint.pt"
    cleaned = []
    with pytest.raises(Interrupted) as info, stop_on_signals():
        try:
            with atomic_path(target) as tmp:
                tmp.write_bytes(b"half")
                os.kill(os.getpid(), signum)
                pytest.fail("the signal did not interrupt")  # pragma: no cover
        finally:
            cleaned.append(True)
    assert info.value.signum == signum and info.value.exit_code == 128 + signum
    assert isinstance(info.value, KeyboardInterrupt)
    assert cleaned and list(tmp_path.iterdir()) == []  # no temporary file, no half-written checkpoint
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored after the block


def test_further_signals_are_ignored_while_stopping(tmp_path, capfd):
    steps = []
    with pytest.raises(Interrupted), stop_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # would cut this cleanup short
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("cleanup finished")
    assert steps == ["cleanup finished"]
    assert capfd.readouterr().err.count("received while stopping; still cleaning up") == 2


def test_the_console_command_ignores_signals_once_its_task_is_over():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with stop_on_signals(afterwards="ignore"):
            pass
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # the interpreter's shutdown is not cut short
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_interrupted_survives_a_copy_and_a_pickle_round_trip():
    stop = Interrupted(signal.SIGTERM)
    for again in (copy.copy(stop), pickle.loads(pickle.dumps(stop))):
        assert isinstance(again, Interrupted) and again.signum == signal.SIGTERM and again.exit_code == 143


def test_an_exception_a_library_raises_after_a_stop_signal_is_that_stop():
    assert as_interrupted(ValueError("unrelated")) is None
    with stop_on_signals():
        try:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
            except KeyboardInterrupt:  # what a C extension's module initialisation does with it
                raise ImportError("initialization failed") from None
        except ImportError as error:
            stop = as_interrupted(error)
    assert isinstance(stop, Interrupted) and stop.signum == signal.SIGTERM
    assert as_interrupted(ValueError("after the block")) is None  # a stop belongs to its block


def test_a_converted_stop_ends_the_task_like_the_signal(tmp_path, monkeypatch, capsys):
    def task_hit_by_a_signal(name, ctx):
        (ctx.run_dir / "partial.txt").write_text("work before the signal")
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except KeyboardInterrupt:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr("hyco.tasks.run_task", task_hit_by_a_signal)
    with pytest.raises(SystemExit) as info:
        main(["train", "mode=synthetic", *QUICK, f"data_dir={tmp_path}/data", f"output_dir={tmp_path}/run"])
    assert info.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    log = (tmp_path / "run" / "hyco.log").read_text()
    assert "stopped by SIGTERM after cleaning up; continue from the last checkpoint with" in log, log[-2000:]
    assert "ImportError" not in capsys.readouterr().err


def test_leftovers_of_a_killed_run_are_removed_in_one_log_line(tmp_path, caplog):
    run_dir = tmp_path / "run"
    (run_dir / "hyco" / "synthetic").mkdir(parents=True)
    keep = [run_dir / "hyco" / "hybrid_last.pt", run_dir / "notes.tmp.txt", run_dir / ".hyco.lock"]
    stray = [run_dir / "hyco" / ".hybrid_last.a1b2c3d4.tmp.pt", run_dir / ".summary.q1w2e3r4.tmp.json",
             run_dir / "hyco" / "synthetic" / ".last.zz_9y8x7.tmp.pt"]
    cache = run_dir / "cache" / "generated" / "physical_preds" / "cycle_002"
    cache.mkdir(parents=True)
    for path in [*keep, *stray, cache / "chunk_00000.pt", cache / "chunk_00001.pt"]:
        path.write_bytes(b"x")
    with caplog.at_level(logging.INFO, logger="hyco.run_safety"):
        remove_leftovers(run_dir, run_dir / "cache")
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stray)
    assert not (run_dir / "cache" / "generated").exists()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "3 temporary file(s)" in lines[0] and "(2 file(s))" in lines[0], lines


def test_sigterm_mid_cycle_with_the_cache_strategy_leaves_nothing_and_says_how_to_resume(tmp_path):
    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    args = ["train", "mode=hybrid", *QUICK, "trainer.hybrid.strategy=cache", f"output_dir={run_dir}",
            f"data_dir={data_dir}"]
    code, output, _ = kill_at(args, tmp_path / "log", r"cycle 1/2: .*storage cache", 0.3, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, output[-3000:]
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert "stopped by SIGTERM after cleaning up; continue from the last checkpoint with: hyco train mode=hybrid" \
        in last and f"output_dir={run_dir} resume=true" in last, last
    assert leftovers(run_dir, data_dir) == []
