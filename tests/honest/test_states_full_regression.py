"""`observation.states=full` (oracle states) reproduces the numbers of hyco before honest observations.

The reference figures were recorded with commit 2159be2 (before `observation.states` existed) on the same
tiny sparse experiment, without noise (the normalisation statistics now come from the observed, noisy
values; without noise they are the same as before)."""

from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import open_experiment
from hyco.tasks.train import train_physical, train_synthetic

RECORDED = {"physical_loss": 2.874699589483498e-09, "viscosity": 0.020054461434483528,
            "synthetic_train_loss": [0.0012565104601283867, 0.0012463109257320564]}


def test_oracle_states_reproduce_the_previous_numbers(tmp_path):
    cfg = load("train", ["experiment=burgers_2d_quick", "observation=centre", "observation.states=full",
                         "observation.noise_level=0", "trainer.physical.epochs=2", "trainer.physical.optimizer=adam",
                         "trainer.physical.iterations=4", "trainer.synthetic.epochs=2",
                         f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    exp = open_experiment(ctx)
    physical = train_physical(ctx, exp)
    synthetic = train_synthetic(ctx, exp)
    assert physical["loss"] == pytest.approx(RECORDED["physical_loss"], rel=1e-5)
    assert physical["viscosity"] == pytest.approx(RECORDED["viscosity"], rel=1e-6)
    losses = [h["train_loss"] for h in synthetic["history"]]
    assert losses == pytest.approx(RECORDED["synthetic_train_loss"], rel=1e-5)
