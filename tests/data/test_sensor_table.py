"""Measurements from a table (hyco.data.sensor_table): a table written from a generated dataset's sensors reads
back to the same windows and the same learned coefficient; every bad row is named in one line."""

import math

import pandas as pd
import pytest
import torch

from hyco.config.schema import DataConfig, HycoConfig, ObservationConfig
from hyco.data.generate import ensure_dataset
from hyco.data.observation import Observation
from hyco.data.sensor_table import write_sensor_table
from hyco.data.store import TrajectoryStore
from hyco.data.windows import WindowDataset
from hyco.errors import DataError, HycoError
from hyco.physics import build_physics, shipped_config

from ..builders import physical_trainer, train_physical

SENSORS = ObservationConfig(spatial="sensors", sensor_layout="random_per_frame", sensor_count=6, noise_level=0.02)


@pytest.fixture(scope="module")
def heat(tmp_path_factory):
    """A small heat dataset (8x8, scalar diffusivity, 5 frames) and its model."""
    section = {**shipped_config("heat_2d"), "resolution": [8, 8]}
    section["diffusivity"] = {**section["diffusivity"], "kind": "scalar",
                              "truth": {**section["diffusivity"]["truth"], "type": "constant"}}
    cfg = HycoConfig(task="train", experiment_name="sensor_table", physics=section, network={"name": "none"},
                     data=DataConfig(num_train=3, num_val=1, num_test=1, num_frames=5, rollout_steps=4),
                     observation=SENSORS)
    model = build_physics(section)
    return model, TrajectoryStore(ensure_dataset(cfg, model, tmp_path_factory.mktemp("heat")))


@pytest.fixture(scope="module")
def table(heat, tmp_path_factory):
    _, store = heat
    return write_sensor_table(tmp_path_factory.mktemp("table") / "readings.csv", Observation.from_store(SENSORS, store),
                              store)


def whole_trajectories(store, observation) -> WindowDataset:
    windows = WindowDataset(store, "train", 4, observation=observation, from_start=True)
    return windows


def test_a_written_table_reads_back_to_the_same_windows_and_the_same_coefficient(heat, table):
    model, store = heat
    frame = pd.read_csv(table)
    assert len(frame) == 5 * 5 * 6 and list(frame.columns) == ["split", "trajectory", "t", "x", "y", "temperature"]
    from_table = ObservationConfig(spatial="sensors", sensor_layout="table", sensor_table=str(table), noise_level=0.02)
    generated, read = whole_trajectories(store, SENSORS), whole_trajectories(store, from_table)
    a, b = generated.batch(torch.arange(3)), read.batch(torch.arange(3))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.sensor_values, b.sensor_values)
    assert torch.equal(a.sensor_index, b.sensor_index)
    assert torch.allclose(a.sensor_weight, b.sensor_weight, rtol=0, atol=1e-6)
    learned = []
    for batch in (a, b):
        trainer = physical_trainer(model, iterations=30, early_stop=False)
        train_physical(trainer, [batch], epochs=1)
        learned.append(float(trainer.coefficients()["diffusivity"]))
    assert learned[0] == pytest.approx(learned[1], rel=1e-6)
    assert learned[0] == pytest.approx(0.01, rel=0.2)


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(x=f.x.where(f.index != 3, 1.5)), r"row 5: x = 1.5 is outside the domain \[0, 1\]"),
    (lambda f: f.assign(t=f.t.where(f.index != 0, 0.9)), r"row 2: t = 0.9 is outside the run \(0 to 0.04\)"),
    (lambda f: f.assign(t=f.t.where(f.index != 1, 0.015)), r"row 3: t = 0.015 lies between the frames"),
    (lambda f: f.assign(temperature=f.temperature.where(f.index != 7, math.nan)),
     r"row 9: temperature: expected a number, got nan"),
    (lambda f: f.assign(trajectory=f.trajectory.where(f.index != 2, 7)),
     r"row 4: trajectory 7: the train split has trajectories 0..2"),
    (lambda f: f.assign(pressure=1.0), r"column 'pressure': not a column of a sensor table of this model"),
    (lambda f: f.drop(columns=["y"]), r"column 'y' is missing"),
])
def test_every_bad_row_is_named_with_its_file(heat, table, tmp_path, change, message):
    _, store = heat
    bad = tmp_path / "bad.csv"
    change(pd.read_csv(table)).to_csv(bad, index=False)
    config = ObservationConfig(spatial="sensors", sensor_layout="table", sensor_table=str(bad))
    with pytest.raises(DataError, match=message) as caught:
        Observation.from_store(config, store)
    assert str(caught.value).startswith(f"{bad}: ") and isinstance(caught.value, HycoError)  # the CLI's exit 2
    assert len(str(caught.value).splitlines()) == 1


def test_several_problems_are_listed_one_line_each(heat, table, tmp_path):
    _, store = heat
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(table)
    frame.loc[[0, 4], "x"] = -2.0
    frame.to_csv(bad, index=False)
    with pytest.raises(DataError) as caught:
        Observation.from_store(ObservationConfig(spatial="sensors", sensor_layout="table", sensor_table=str(bad)),
                               store)
    assert [line.split(": ", 2)[1] for line in str(caught.value).splitlines()] == ["row 2", "row 6"]
