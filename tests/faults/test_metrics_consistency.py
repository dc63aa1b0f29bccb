"""Metrics logs stay consistent with the checkpoint a run continues from, whichever moment a kill chose.

A kill is emulated in-process by an exception that nothing catches (like SIGKILL, it skips the trainer's
remaining work; unlike SIGKILL, `atomic_path` still removes its temporary file, which the CLI's
leftover sweep covers, see test_signals.py). Each boundary of an epoch's writes is tried: after its
metrics line, after its checkpoint, inside the checkpoint's atomic write, inside the metrics append
(a torn line), and a kill before the first checkpoint followed by a fresh start.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from hyco.training import checkpoint as ckpt
from hyco.training.run_log import RunLog
from hyco.training.synthetic import SyntheticTrainer
from tests.training.test_synthetic_trainer import _loader, config, shifting_trajectories, small_unet, windows

EPOCHS = 4


class Killed(BaseException):
    """Stands for SIGKILL: no handler in hyco catches a BaseException that is not KeyboardInterrupt."""


@pytest.fixture(scope="module")
def data():
    traj = shifting_trajectories(3, 6)
    inputs, targets = windows(traj, 2)
    masks = (torch.rand(inputs.shape[0], 2, 1, 8, 8, generator=torch.Generator().manual_seed(5)) > 0.3).float()
    return inputs, targets, masks, shifting_trajectories(2, 5, seed=9)


def _trainer(run_dir, data):
    torch.manual_seed(0)
    trainer = SyntheticTrainer(config(epochs=EPOCHS, curriculum=[1, 2]), small_unet(), run_dir=run_dir,
                               progress=False)
    trainer.set_validation(data[3])
    return trainer


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    run_dir = tmp_path_factory.mktemp("reference")
    trainer = _trainer(run_dir, data)
    trainer.train(_loader(*data[:3]), EPOCHS)
    return trainer.model.state_dict(), _records(run_dir)


def _kill_after_metrics(monkeypatch, epoch):
    original = RunLog.write

    def write(self, record):
        original(self, record)
        if record["epoch"] == epoch:
            raise Killed

    monkeypatch.setattr(RunLog, "write", write)


def _kill_after_checkpoint(monkeypatch, epoch):
    original = ckpt.save_checkpoint

    def save(payload, path):
        out = original(payload, path)
        if path.name == "last.pt" and payload["epoch"] == epoch:
            raise Killed
        return out

    monkeypatch.setattr(ckpt, "save_checkpoint", save)


def _kill_inside_checkpoint_write(monkeypatch, epoch):
    original = os.replace
    calls = {"last": 0}

    def replace(src, dst):
        if str(dst).endswith("last.pt"):
            calls["last"] += 1
            if calls["last"] == epoch:  # the temporary file is complete, the rename never happens
                raise Killed
        return original(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def _tear_last_line(run_dir):
    text = (run_dir / "metrics.jsonl").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[-1]
    (run_dir / "metrics.jsonl").write_text(text[: len(text) - len(last) - 1 + len(last) // 2])


BOUNDARIES = ["after_metrics", "after_checkpoint", "inside_checkpoint_write", "torn_metrics_line"]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_resume_after_a_kill_at_each_boundary_logs_every_epoch_once(boundary, tmp_path, data, reference,
                                                                      monkeypatch):
    kill_epoch = 2
    with monkeypatch.context() as patch:
        if boundary in ("after_metrics", "torn_metrics_line"):
            _kill_after_metrics(patch, kill_epoch)
        elif boundary == "after_checkpoint":
            _kill_after_checkpoint(patch, kill_epoch)
        else:
            _kill_inside_checkpoint_write(patch, kill_epoch)
        with pytest.raises(Killed):
            _trainer(tmp_path, data).train(_loader(*data[:3]), EPOCHS)
    if boundary == "torn_metrics_line":
        _tear_last_line(tmp_path)
    checkpoint_epoch = torch.load(tmp_path / "last.pt", weights_only=True)["epoch"]
    logged = [r["epoch"] for r in _records(tmp_path)] if boundary != "torn_metrics_line" else None
    expected_checkpoint = kill_epoch if boundary == "after_checkpoint" else kill_epoch - 1
    assert checkpoint_epoch == expected_checkpoint
    if logged is not None:
        assert logged == [1, 2]  # the log is never behind the checkpoint

    torch.rand(100)  # a new process: the global RNG is elsewhere
    resumed = _trainer(tmp_path, data)
    assert resumed.resume() and resumed.epoch == checkpoint_epoch
    resumed.train(_loader(*data[:3]), EPOCHS - resumed.epoch)
    weights, records = reference
    assert all(torch.equal(weights[k], resumed.model.state_dict()[k]) for k in weights)
    got = _records(tmp_path)
    assert [r["epoch"] for r in got] == list(range(1, EPOCHS + 1))
    assert [r["train_loss"] for r in got] == [r["train_loss"] for r in records]
    assert [r["val_loss"] for r in got] == [r["val_loss"] for r in records]


def test_kill_before_the_first_checkpoint_then_a_fresh_start_logs_every_epoch_once(tmp_path, data, reference,
                                                                                    monkeypatch):
    with monkeypatch.context() as patch:
        _kill_after_metrics(patch, 1)
        with pytest.raises(Killed):
            _trainer(tmp_path, data).train(_loader(*data[:3]), EPOCHS)
    assert not (tmp_path / "last.pt").exists() and [r["epoch"] for r in _records(tmp_path)] == [1]
    fresh = _trainer(tmp_path, data)
    assert not fresh.resume()
    fresh.train(_loader(*data[:3]), EPOCHS)
    assert [r["train_loss"] for r in _records(tmp_path)] == [r["train_loss"] for r in reference[1]]


def test_truncate_keeps_the_checkpoint_steps_and_drops_torn_or_foreign_lines(tmp_path):
    log = RunLog(tmp_path, "t", step_key="cycle")
    lines = [json.dumps({"cycle": 1, "a": 1}), "", json.dumps({"cycle": 2}), "not json", json.dumps([3]),
             json.dumps({"cycle": 3}), '{"cycle": 4, "a"']
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines))
    log.truncate_after(2)
    assert (tmp_path / "metrics.jsonl").read_text() == json.dumps({"cycle": 1, "a": 1}) + "\n" + json.dumps(
        {"cycle": 2}) + "\n"
    log.write({"cycle": 3, "b": 0.5})
    assert [json.loads(x)["cycle"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    log.close()
