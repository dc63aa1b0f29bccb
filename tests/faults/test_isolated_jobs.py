"""Sweeps whose jobs never refuse each other: each job its own run directory and cache, named by what differs;
a start that is refused leaves the directory of the run that holds it byte for byte as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hyco.config.paths import run_cache_dir
from hyco.config.sweep_names import MAX_LENGTH, constant_keys, job_name

from .conftest import hyco, one_error_line
from .harness import Hyco

QUICK_HEAT = ["experiment=heat_2d_quick", "device=cpu"]
HOLDER = """
import sys, time
from hyco.utils.run_lock import RunLock
RunLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(600)
"""


def test_job_names_are_the_overrides_made_safe_for_a_file_system():
    assert job_name("seed=1,trainer.hybrid.alpha=0.5", 3) == "seed=1,trainer.hybrid.alpha=0.5"
    assert job_name("experiment=./my exp.yaml", 0) == "experiment=._my_exp.yaml"
    assert job_name("physics.resolution=[16,16]", 0) == "physics.resolution=_16,16_"
    assert job_name("", 7) == "job_7"
    long_a, long_b = "a=" + "x" * 300 + "1", "a=" + "x" * 300 + "2"
    assert len(job_name(long_a)) == MAX_LENGTH and job_name(long_a) != job_name(long_b)


def test_the_keys_every_job_sets_alike_are_left_out_of_the_names():
    jobs = [["mode=hybrid", "seed=0", "trainer.hybrid.alpha=0.1"],
            ["mode=hybrid", "seed=1", "trainer.hybrid.alpha=0.1"],
            ["mode=hybrid", "seed=0", "trainer.hybrid.alpha=0.5"]]
    assert constant_keys(jobs) == ["mode"]
    assert constant_keys([["a=1"], ["a=1", "b=2"]]) == ["a"]  # b is not set by every job: it differs


def test_a_shared_cache_dir_gets_one_subdirectory_per_run(tmp_path):
    shared = tmp_path / "cache"
    a, b = run_cache_dir(shared, tmp_path / "runs" / "a"), run_cache_dir(shared, tmp_path / "other" / "a")
    assert a.parent == shared and b.parent == shared and a != b  # same name, different run directories
    assert run_cache_dir(shared, tmp_path / "runs" / "a") == a  # the same again for a resumed run
    inside = tmp_path / "runs" / "a" / "cache"
    assert run_cache_dir(inside, tmp_path / "runs" / "a") == inside  # the default ${output_dir}/cache is kept


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def holder(tmp_path):
    """`holder(directory)`: a separate process holding the lock of `directory`, as a running job would."""
    processes = []

    def hold(directory: Path) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "locked"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_refused_job_leaves_the_running_jobs_directory_byte_identical_and_the_sweep_goes_on(tmp_path, holder):
    sweep = tmp_path / "sweep"
    busy = sweep / "seed=0"
    (busy / ".hydra").mkdir(parents=True)
    (busy / ".hydra" / "overrides.yaml").write_text("- seed=0\n- the running job's own record\n")
    (busy / "hyco.log").write_text("the running job's log\n")
    holder(busy)
    before = _snapshot(busy)
    result = hyco("train", "-m", "mode=physical", *QUICK_HEAT, "trainer.physical.epochs=1", "seed=0,1",
                  f"output_dir={sweep}", f"data_dir={tmp_path}/data", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert _snapshot(busy) == before  # not one byte of the running job's directory changed
    assert f"job seed=0: output_dir: {busy} is in use by another hyco process" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("hyco: error: 1 of 2 jobs did not complete")
    assert (sweep / "seed=1" / "physical" / "summary.json").is_file()  # the other job ran to its end
    record = json.loads((sweep / "seed=1" / "job.json").read_text())
    assert record["status"] == "completed" and "seed=1" in record["overrides"]
    summary = json.loads((sweep / "sweep.json").read_text())
    assert summary["launched"] == 2 and [j["name"] for j in summary["jobs"]] == ["seed=1"]


def test_a_second_sweep_into_a_busy_sweep_directory_writes_nothing_there(tmp_path, holder):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text("the first sweep's\n")
    process = holder(sweep)
    before = _snapshot(sweep)
    result = hyco("train", "-m", "mode=physical", *QUICK_HEAT, "seed=0,1", f"output_dir={sweep}",
                  f"data_dir={tmp_path}/data", cwd=tmp_path)
    assert one_error_line(result).startswith(f"output_dir: {sweep} is in use by another hyco process "
                                             f"(pid {process.pid}")
    assert _snapshot(sweep) == before


def _rollout_errors(run_dir: Path) -> dict:
    runs = json.loads((run_dir / "metrics.json").read_text())["runs"]
    return {k: (r["rollout"]["rel_l2"], r["rollout"]["per_sim"]["rel_l2"]) for k, r in runs.items()}


@pytest.mark.slow  # about 40 s on a shared machine
def test_two_runs_with_one_explicit_cache_dir_at_once_both_finish_as_a_solo_run_does(tmp_path):
    data = f"data_dir={tmp_path}/data"
    cache = f"cache_dir={tmp_path}/shared-cache"
    args = ["run", *QUICK_HEAT, data, cache, "trainer.hybrid.strategy=cache", "evaluation.animation=false",
            "threads=1"]
    solo = tmp_path / "solo"
    assert Hyco([*args, f"output_dir={solo}"], tmp_path / "solo.log").wait() == 0, (tmp_path / "solo.log").read_text()
    both = [Hyco([*args, f"output_dir={tmp_path / name}"], tmp_path / f"{name}.log") for name in ("a", "b")]
    codes = [p.wait() for p in both]
    assert codes == [0, 0], [p.text()[-2000:] for p in both]
    for name in ("a", "b"):
        assert _rollout_errors(tmp_path / name) == _rollout_errors(solo)
        assert f"{tmp_path}/shared-cache/{name}-" in (tmp_path / name / "hyco.log").read_text()
