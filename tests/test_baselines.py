"""Reused baselines: the content hash that names a physical-only or synthetic-only run changes with everything
that can change that run, and with nothing of HYCO's."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import hyco
from hyco.tasks.baselines import baseline_key
from hyco.tasks.context import RunContext


def _key(*overrides: str, mode: str = "physical", dataset: str = "d1", run_dir: str = "/runs/a") -> str:
    cfg = hyco.compose(["experiment=heat_2d_quick", *overrides], output_dir=run_dir)
    return baseline_key(RunContext(cfg=cfg, run_dir=Path(run_dir), device=torch.device("cpu")), mode, dataset)


def test_hyco_keys_places_and_evaluation_leave_the_baseline_key_alone():
    base = _key()
    assert _key("trainer.hybrid.alpha=0.9", "trainer.hybrid.cycles=5") == base
    assert _key("evaluation.animation=false", "log_level=DEBUG", run_dir="/elsewhere/b") == base


@pytest.mark.parametrize("change", [("seed=1",), ("trainer.physical.epochs=7",), ("observation=full",),
                                    ("trainer.synthetic.lr=0.5",)])
def test_anything_that_can_change_a_baseline_changes_its_key(change):
    assert _key(*change) != _key()


def test_the_dataset_and_the_mode_are_part_of_the_key():
    assert _key(dataset="d2") != _key()
    assert _key(mode="synthetic") != _key()


class _FakeExperiment:
    """What train_or_reuse reads of an experiment: the dataset's hash and the run directory of a mode."""

    def __init__(self, run_dir: Path):
        self.store = type("Store", (), {"config_hash": "dataset-hash"})()
        self._run_dir = run_dir

    def run_dir(self, mode: str) -> Path:
        return self._run_dir / mode


def test_two_jobs_at_once_train_a_baseline_once_and_the_second_copies_it(tmp_path, caplog):
    import logging
    import threading
    import time

    from hyco.tasks.baselines import train_or_reuse

    cfg = hyco.compose(["experiment=heat_2d_quick"], output_dir=str(tmp_path / "a"))
    trained: list[Path] = []

    def train(ctx, exp):  # a training that takes a while and leaves a checkpoint
        trained.append(ctx.run_dir)
        time.sleep(0.3)
        (exp.run_dir("physical")).mkdir(parents=True)
        (exp.run_dir("physical") / "best.pt").write_bytes(ctx.run_dir.name.encode() * 10)

    reused: dict[str, bool] = {}

    def job(name: str) -> None:
        ctx = RunContext(cfg=cfg, run_dir=tmp_path / name, device=torch.device("cpu"),
                         baselines_dir=tmp_path / "baselines")
        reused[name] = train_or_reuse(ctx, _FakeExperiment(tmp_path / name), "physical", train)

    with caplog.at_level(logging.INFO, logger="hyco.tasks.baselines"):
        threads = [threading.Thread(target=job, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(trained) == 1 and sorted(reused.values()) == [False, True]
    first = trained[0].name
    for name in ("a", "b"):  # both directories complete, with the one trained model
        assert (tmp_path / name / "physical" / "best.pt").read_bytes() == first.encode() * 10
    assert caplog.text.count("trained here and stored") == 1
    assert caplog.text.count(f"reused the run trained in {tmp_path / first}") == 1
