"""The thread budget: cores from affinity / cgroup quota / SLURM, divided by local ranks and parallel jobs,
the precedence of the overrides, what is exported before torch loads, and the data-loader workers' share."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

from hyco.config.errors import ConfigError
from hyco.utils import threads as T

TWO = {0, 1}
# Variables a test's child process must not inherit from the test run (which sets OMP_NUM_THREADS=1).
THREAD_VARIABLES = (*T.THREAD_COUNT_VARIABLES, *T.WAIT_POLICY_VARIABLES, T.ENV_THREADS, T.ENV_PARALLEL_JOBS,
                    T.ENV_EXPORTED, T.ENV_EXPORTED_WAIT, "LOCAL_WORLD_SIZE", "SLURM_CPUS_PER_TASK")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(extra)
    return env


# ---------------------------------------------------------------------------- counting cores
@pytest.mark.parametrize("cpus, quota, env, cores", [
    ({0, 1, 2, 3}, None, {}, 4),
    ({2, 5}, None, {}, 2),  # the affinity mask, not the machine's core count
    ({0, 1, 2, 3}, 1.5, {}, 2),  # a fractional quota rounds up
    ({0, 1, 2, 3}, 0.2, {}, 1),
    ({0, 1}, 8.0, {}, 2),  # a quota above the mask does not add cores
    ({0, 1, 2, 3, 4, 5, 6, 7}, None, {"SLURM_CPUS_PER_TASK": "3"}, 3),
])
def test_usable_cores(cpus, quota, env, cores):
    assert T.usable_cores(env, cpus, quota)[0] == cores


def test_affinity_text():
    assert T.format_cpus({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8"
    assert T.format_cpus({3}) == "3"


def test_cgroup_v2_quota_takes_the_tightest_ancestor(tmp_path):
    (tmp_path / "proc").write_text("0::/jobs/job7\n")
    (tmp_path / "jobs" / "job7").mkdir(parents=True)
    (tmp_path / "jobs" / "job7" / "cpu.max").write_text("max 100000\n")
    assert T.cgroup_cpu_quota(tmp_path, tmp_path / "proc") is None
    (tmp_path / "jobs" / "cpu.max").write_text("250000 100000\n")
    assert T.cgroup_cpu_quota(tmp_path, tmp_path / "proc") == pytest.approx(2.5)
    (tmp_path / "jobs" / "job7" / "cpu.max").write_text("50000 100000\n")
    assert T.cgroup_cpu_quota(tmp_path, tmp_path / "proc") == pytest.approx(0.5)


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "proc").write_text("4:memory:/x\n3:cpu,cpuacct:/slurm/job1\n0::/\n")
    group = tmp_path / "cpu,cpuacct" / "slurm" / "job1"
    group.mkdir(parents=True)
    (group / "cpu.cfs_period_us").write_text("100000\n")
    (group / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert T.cgroup_cpu_quota(tmp_path, tmp_path / "proc") is None
    (group / "cpu.cfs_quota_us").write_text("300000\n")
    assert T.cgroup_cpu_quota(tmp_path, tmp_path / "proc") == pytest.approx(3.0)
    assert T.cgroup_cpu_quota(tmp_path / "missing", tmp_path / "missing") is None


# ---------------------------------------------------------------------------- dividing them
@pytest.mark.parametrize("env, launcher, threads, text", [
    ({}, None, 4, "threads: 4 of 4 cores (affinity 0-3)"),
    ({"LOCAL_WORLD_SIZE": "2"}, None, 2, "threads: 2 of 4 cores (affinity 0-3, 2 local ranks)"),
    ({"LOCAL_WORLD_SIZE": "8"}, None, 1, "threads: 1 of 4 cores (affinity 0-3, 8 local ranks)"),
    ({"HYCO_PARALLEL_JOBS": "2"}, None, 2, "threads: 2 of 4 cores (affinity 0-3, 2 parallel jobs)"),
    ({"LOCAL_WORLD_SIZE": "2", "HYCO_PARALLEL_JOBS": "2"}, None, 1,
     "threads: 1 of 4 cores (affinity 0-3, 2 local ranks, 2 parallel jobs)"),
    ({}, {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 3}, 1,
     "threads: 1 of 4 cores (affinity 0-3, 3 parallel jobs)"),
    ({}, {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": -3}, 2,
     "threads: 2 of 4 cores (affinity 0-3, 2 parallel jobs)"),  # joblib: -3 = cores + 1 - 3
    ({}, {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 4,
     "threads: 4 of 4 cores (affinity 0-3)"),  # the basic launcher runs one job at a time
])
def test_auto_divides_the_cores(env, launcher, threads, text):
    budget = T.decide("auto", env, launcher=launcher, cpus={0, 1, 2, 3}, quota=None)
    assert budget.threads == threads and budget.source == "auto"
    assert budget.describe() == text


def test_precedence_config_then_variable_then_omp_then_auto():
    def decide(setting, **env):
        return T.decide(setting, env, cpus=TWO, quota=None)

    assert decide("auto").threads == 2
    assert decide("auto", OMP_NUM_THREADS="1").threads == 1  # a user's own OMP_NUM_THREADS is kept
    budget = decide("auto", OMP_NUM_THREADS="1", HYCO_THREADS="3")
    assert (budget.threads, budget.source) == (3, "HYCO_THREADS=3")
    budget = decide("5", OMP_NUM_THREADS="1", HYCO_THREADS="3")
    assert (budget.threads, budget.source) == (5, "threads=5")
    assert decide("5").describe() == "threads: 5 of 2 cores (affinity 0-1, set by threads=5)"
    assert decide("off", HYCO_THREADS="3").threads is None
    assert decide("auto", HYCO_THREADS="off").describe().startswith("threads: left to torch/OpenMP")
    # hyco's own export (in this or a parent process) is not taken for the user's choice
    assert decide("auto", LOCAL_WORLD_SIZE="2", OMP_NUM_THREADS="2", HYCO_EXPORTED_THREADS="2").threads == 1


@pytest.mark.parametrize("setting, key", [("0", "threads"), ("two", "threads"), ("-1", "threads")])
def test_bad_settings_name_the_key(setting, key):
    with pytest.raises(ConfigError, match=f"^{key}: expected auto, off or an integer >= 1"):
        T.decide(setting, {}, cpus=TWO, quota=None)
    with pytest.raises(ConfigError, match="^HYCO_THREADS: expected auto, off or an integer >= 1"):
        T.decide("auto", {"HYCO_THREADS": setting}, cpus=TWO, quota=None)


def test_config_key_is_range_checked(fake_overrides):
    from hyco.config.validate import load

    assert load("train", [*fake_overrides, "threads=3"]).threads == "3"
    assert load("train", fake_overrides).threads == "auto"
    with pytest.raises(ConfigError, match="^threads: expected auto, off or an integer >= 1, got '0'"):
        load("train", [*fake_overrides, "threads=0"])


def test_setting_from_the_command_line():
    assert T.setting_from_overrides(["experiment=x", "threads=2"]) == 2
    assert T.setting_from_overrides(["++threads=off"]) == "off"
    assert T.setting_from_overrides(["threads=1,2"]) == "auto"  # a sweep: each job sets its own
    assert T.setting_from_overrides(["mode=physical"]) == "auto"


# ---------------------------------------------------------------------------- exporting it
def test_export_sets_counts_and_short_spin_waits_but_keeps_the_users_choices():
    env = {"MKL_NUM_THREADS": "7"}
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None), env)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "2" and env["MKL_NUM_THREADS"] == "7"
    assert (env["OMP_WAIT_POLICY"], env["GOMP_SPINCOUNT"]) == ("PASSIVE", "10000")
    # deciding again (at job start, in a child process) with more information replaces hyco's own values
    env["LOCAL_WORLD_SIZE"] = "2"
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None), env)
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == "1" and env["MKL_NUM_THREADS"] == "7"

    # a user's OMP_NUM_THREADS is still the user's when the job decides again (same process or a child)
    env = {"OMP_NUM_THREADS": "1"}
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None), env)
    budget = T.decide("auto", env, cpus=TWO, quota=None)
    assert (budget.threads, budget.source, env["OMP_NUM_THREADS"]) == (1, "OMP_NUM_THREADS=1", "1")

    env = {"GOMP_SPINCOUNT": "10000"}
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None), env)
    assert "OMP_WAIT_POLICY" not in env and env["GOMP_SPINCOUNT"] == "10000"  # the user chose how threads wait
    env = {}
    assert T.export_budget(T.decide("off", env, cpus=TWO, quota=None), env) == {} and env == {}


CHILD = textwrap.dedent("""
    import importlib.abc, json, os, sys
    seen = {}
    class Watch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name in ("torch", "numpy") and name not in seen:
                seen[name] = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
            return None
    sys.meta_path.insert(0, Watch())
    from hyco.cli import main
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
    import torch
    print(json.dumps({"seen": seen, "torch_threads": torch.get_num_threads()}))
""")


def _child(*args: str, env: dict[str, str], cpus: set[int] | None = None):
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, env=env,
                          preexec_fn=preexec, timeout=120)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_the_command_exports_the_budget_before_torch_and_numpy_load(fake_overrides, tmp_path):
    import json

    cpu = min(os.sched_getaffinity(0))
    cmd = ("train", *fake_overrides, f"output_dir={tmp_path}/run", "--cfg", "job")
    out = _child(*cmd, env=clean_env(), cpus={cpu})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    expected = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}  # 1 core in the mask
    assert result["seen"] == {"torch": expected, "numpy": expected}, out.stderr[-2000:]
    assert result["torch_threads"] == 1

    out = _child(*cmd, "threads=2", env=clean_env(HYCO_THREADS="3", OMP_WAIT_POLICY="ACTIVE"), cpus={cpu})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["seen"]["torch"] == {"OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE",
                                       "GOMP_SPINCOUNT": None}  # threads= wins; the wait policy stays the user's
    assert result["torch_threads"] == 2


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_a_run_under_an_affinity_mask_logs_its_budget(tmp_path):
    cpu = min(os.sched_getaffinity(0))
    result = subprocess.run([sys.executable, "-m", "hyco", "generate", "experiment=burgers_1d_quick",
                             f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"], capture_output=True,
                            text=True, env=clean_env(), cwd=tmp_path, timeout=120,
                            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in (tmp_path / "run" / "hyco.log").read_text().splitlines() if "threads:" in line]
    assert len(lines) == 1 and lines[0].endswith(f"threads: 1 of 1 core (affinity {cpu})"), lines


# ---------------------------------------------------------------------------- data-loader workers
def test_workers_take_their_threads_from_the_budget():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with T.lend_to_workers(2):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 3
        with T.lend_to_workers(5):
            assert torch.get_num_threads() == 1  # never below one
        with T.lend_to_workers(0):
            assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    budget = T.decide("3", {}, workers=2, cpus=TWO, quota=None)
    assert budget.describe() == ("threads: 3 of 2 cores (affinity 0-1, set by threads=3, "
                                 "1 while 2 data-loader workers run)")
