"""Memory estimate per task, checked before anything is allocated: absurd sizes end in one line naming the
keys; the estimate is within a factor of 2 of the peak RSS measured on real tasks (slow)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hyco.config.validate import load
from hyco.errors import ConfigError
from hyco.resources import BASE, check_disk, check_memory, estimate_memory

from .conftest import QUICK, one_error_line

ABSURD = {
    "2D grid of 10^10 cells": (["physics.resolution=[100000,100000]", "physics.bounds=[20000,20000]"],
                               "physics.resolution=[100000, 100000]"),
    "3D grid of 2048^3 cells": (["physics.resolution=[2048,2048,2048]", "physics.bounds=[400,400,400]",
                                 "physics.viscosity.truth.wavenumber=[1,1,1]",
                                 "physics.viscosity.guess.wavenumber=[1,1,1]"],
                                "physics.resolution=[2048, 2048, 2048]"),
    "10^9 simulations": (["data.num_train=1000000000"], "data.num_train=1000000000"),
    "10^5 frames": (["data.num_frames=100000", "physics.resolution=[256,256]", "physics.bounds=[8,8]"],
                    "data.num_frames=100000"),
}


@pytest.mark.parametrize("name,task", [(name, task) for name, task in zip(ABSURD, ["run", "train", "generate", "run"])])
def test_absurd_sizes_are_refused_naming_the_keys(name, task):
    overrides, named = ABSURD[name]
    cfg = load(task, [*QUICK, *overrides])
    with pytest.raises(ConfigError) as info:
        check_memory(cfg, limit=64 * 2**30)
    message = str(info.value)
    assert named in message.split(": ", 1)[0] and "of memory" in message and "\n" not in message, message
    assert "more than the 64 GB available" in message


def test_quick_experiments_fit_and_the_estimate_grows_with_the_data():
    for task, mode in [("generate", "hybrid"), ("train", "physical"), ("train", "synthetic"), ("train", "hybrid"),
                       ("run", "hybrid")]:
        estimate = check_memory(load(task, [*QUICK, f"mode={mode}"]), limit=2 * 2**30)
        assert BASE < estimate.peak < BASE + 64 * 2**20, (task, mode, estimate.phases)
    small = estimate_memory(load("train", [*QUICK, "mode=synthetic"]))
    large = estimate_memory(load("train", [*QUICK, "mode=synthetic", "trainer.synthetic.batch_size=64",
                                           "physics.resolution=[64,64]", "physics.bounds=[4,4]"]))
    def activations(estimate):
        return next(t.bytes for t in estimate.phases["synthetic"] if "activations" in t.what)

    # 8x the batch and 16x the cells: 128x the per-cell part; the fixed part (weights) grows 8x only
    assert 64 < activations(large) / activations(small) <= 128


def test_a_dataset_larger_than_its_file_system_is_refused(tmp_path):
    cfg = load("generate", [*QUICK, "data.num_train=100000000", f"data_dir={tmp_path}/data"])
    with pytest.raises(ConfigError, match=r"^data.num_train: the dataset would take \S+ TB \(100000002 simulations "
                                          r"x 8 frames of 2 x \[16, 16\] float32 values\), more than the whole file"):
        check_disk(cfg)


def test_cli_refuses_an_absurd_grid_in_one_line_before_any_work(tmp_path):
    overrides, named = ABSURD["2D grid of 10^10 cells"]
    result = subprocess.run([sys.executable, "-m", "hyco", "train", *QUICK, *overrides, f"output_dir={tmp_path}/run",
                             f"data_dir={tmp_path}/data"], capture_output=True, text=True, timeout=120)
    message = one_error_line(result)
    assert message.startswith(named) and "TB of memory" in message
    assert list(tmp_path.iterdir()) == []


CALIBRATION = {
    "generate 128x128, 16 at once": ("generate", ["physics.resolution=[128,128]", "physics.bounds=[4,4]",
                                                  "data.num_train=16", "data.num_val=0", "data.num_test=0",
                                                  "data.num_frames=32", "data.generation_batch=16"]),
    "synthetic 64x64, batch 32": ("train", ["mode=synthetic", "physics.resolution=[64,64]", "physics.bounds=[2,2]",
                                            "network.width=16", "network.depth=2", "trainer.synthetic.batch_size=32",
                                            "data.num_frames=8", "data.rollout_steps=4", "trainer.synthetic.epochs=1",
                                            "data.num_train=8"]),
    "physical 64x64, 1 GB budget": ("train", ["mode=physical", "physics.resolution=[64,64]", "physics.bounds=[2,2]",
                                              "data.num_train=16", "data.num_frames=16",
                                              "trainer.physical.memory_budget_gb=1", "trainer.physical.epochs=1",
                                              "trainer.physical.iterations=2"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CALIBRATION))
def test_estimate_is_within_a_factor_2_of_the_measured_peak(name, tmp_path):
    task, overrides = CALIBRATION[name]
    args = [*QUICK, f"data_dir={tmp_path}/data", f"output_dir={tmp_path}/run", *overrides]
    estimate = estimate_memory(load(task, args)).peak
    result = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "hyco", task, *args],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = int(result.stderr.strip().splitlines()[-1]) * 1024
    print(f"{name}: estimate {estimate / 2**20:.0f} MB, measured peak RSS {measured / 2**20:.0f} MB, "
          f"ratio {estimate / measured:.2f}")
    assert 0.5 < estimate / measured < 2.0
