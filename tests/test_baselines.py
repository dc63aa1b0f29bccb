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
