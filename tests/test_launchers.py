"""Sweeps before they run: any sweeper syntax is read or refused in one line; launchers whose plugin is
missing, and torchrun misuse, are refused in one line with exit code 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime

import pytest

from hyco.cli import _check_torchrun, validate_command_line
from hyco.config import launchers
from hyco.config.validate import expand_sweeps
from hyco.errors import ConfigError, HycoError


def test_every_sweeper_syntax_expands_to_the_jobs_it_stands_for():
    jobs = expand_sweeps(["seed=range(0,3)", "trainer.hybrid.alpha=choice(0.1,0.5)", "mode=physical"])
    assert len(jobs) == 6 and ["seed=2", "trainer.hybrid.alpha=0.5", "mode=physical"] in jobs
    assert expand_sweeps(["trainer.hybrid.alpha=interval(0.1,0.5)"]) == [["trainer.hybrid.alpha=0.1"],
                                                                          ["trainer.hybrid.alpha=0.5"]]
    assert expand_sweeps(["seed=interval(1,4)"]) == [["seed=1"], ["seed=4"]]  # integer bounds stay integers
    assert expand_sweeps(["network=glob(*,exclude=[fno,resnet])"]) == [["network=convnet"], ["network=unet"]]
    assert expand_sweeps(["seed=shuffle(range(0,2))"]) in ([["seed=0"], ["seed=1"]], [["seed=1"], ["seed=0"]])


@pytest.mark.parametrize("override, named", [("network=glob(zz*)", "network"), ("seed=range(3,1)", "seed"),
                                             ("seed=choice(", "command line")])
def test_a_sweep_that_cannot_run_is_refused_in_one_line(override, named):
    with pytest.raises(HycoError) as error:
        expand_sweeps([override])
    assert str(error.value).startswith(named) and "\n" not in str(error.value)


def test_interval_needs_a_sampling_sweeper(fake_overrides):
    with pytest.raises(ConfigError, match=r"^trainer.hybrid.alpha: interval\(...\) is sampled by a sweeper"):
        validate_command_line("train", [*fake_overrides, "trainer.hybrid.alpha=interval(0.1,0.5)"], multirun=True)
    launchers.check_sweeper(["trainer.hybrid.alpha=interval(0.1,0.5)", "hydra/sweeper=basic_x"])  # another sweeper's


def test_a_launcher_that_is_not_installed_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(launchers, "installed", lambda module: False)
    for name, package in (("parallel", "hydra-joblib-launcher"), ("submitit_slurm", "hydra-submitit-launcher")):
        with pytest.raises(ConfigError) as error:
            launchers.check_launcher(["seed=0,1", f"hydra/launcher={name}"])
        assert str(error.value) == (f"hydra/launcher: {name} needs the {package} package, which is not installed; "
                                    "install it with: pip install 'hyco[cluster]'")
    with pytest.raises(ConfigError, match="^hydra/launcher: expected one of basic, joblib"):
        launchers.check_launcher(["hydra/launcher=rocket"])
    launchers.check_launcher(["seed=0,1"])  # the basic launcher needs nothing


def test_torchrun_misuse_is_refused_before_anything_starts(monkeypatch, fake_overrides, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(HycoError, match="^-m: a sweep cannot run under torchrun"):
        _check_torchrun("train", fake_overrides, multirun=True)
    with pytest.raises(HycoError, match="^output_dir: under torchrun every rank must write to one directory"):
        _check_torchrun("train", fake_overrides, multirun=False)
    _check_torchrun("train", [*fake_overrides, f"output_dir={tmp_path}"], multirun=False)


def test_nccl_without_cuda_exits_2_with_one_line(fake_overrides, tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "hyco", "train", *fake_overrides, "device=cpu", "dist_backend=nccl",
                             f"output_dir={tmp_path}/run"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "hyco: error: dist_backend: expected gloo on a CPU device (NCCL needs CUDA: set device=cuda on a machine "
        "with GPUs, or dist_backend=gloo), got 'nccl'"]
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run directory


def _span(log_text: str) -> tuple[datetime, datetime]:
    stamps = [datetime.strptime(m, "%H:%M:%S") for m in re.findall(r"^(\d\d:\d\d:\d\d) ", log_text, re.M)]
    return stamps[0], stamps[-1]


@pytest.mark.slow
def test_a_joblib_sweep_runs_its_jobs_concurrently_each_directory_complete(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    quick = ["experiment=burgers_2d_quick", "device=cpu", f"data_dir={tmp_path}/data"]
    generated = subprocess.run([sys.executable, "-m", "hyco", "generate", *quick, f"output_dir={tmp_path}/gen"],
                               capture_output=True, text=True, env=env, timeout=600)
    assert generated.returncode == 0, generated.stderr[-2000:]
    result = subprocess.run([sys.executable, "-m", "hyco", "train", "-m", "hydra/launcher=parallel", "mode=synthetic",
                             *quick, "trainer.synthetic.lr=0.001,0.002", f"output_dir={tmp_path}/sweep"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    spans = []
    for job in ("trainer.synthetic.lr=0.001", "trainer.synthetic.lr=0.002"):
        run = tmp_path / "sweep" / job
        for name in (".hydra/overrides.yaml", "hyco.log", "synthetic/last.pt", "synthetic/best.pt",
                     "synthetic/summary.json", "synthetic/metrics.jsonl"):
            assert (run / name).is_file(), f"{job}: {name} missing"
        assert len((run / "synthetic/metrics.jsonl").read_text().splitlines()) == 4
        spans.append(_span((run / "hyco.log").read_text()))
    (a0, a1), (b0, b1) = spans
    assert a0 <= b1 and b0 <= a1, f"the jobs ran one after the other: {spans}"  # their run times overlap


@pytest.mark.slow
def test_a_submitit_local_sweep_runs_end_to_end(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    quick = ["experiment=burgers_2d_quick", "device=cpu", f"data_dir={tmp_path}/data"]
    result = subprocess.run([sys.executable, "-m", "hyco", "generate", "-m", "hydra/launcher=submitit_local", *quick,
                             "data.num_frames=6,8", f"output_dir={tmp_path}/sweep"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list((tmp_path / "data").glob("*.h5"))) == 2  # one dataset per job
    for job in ("data.num_frames=6", "data.num_frames=8"):
        assert (tmp_path / "sweep" / job / "hyco.log").is_file()
