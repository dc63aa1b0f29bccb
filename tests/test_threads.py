"""The thread budget: cores from affinity / cgroup quota / SLURM, divided by local ranks and parallel jobs,
the precedence of the overrides, what is exported before torch loads, and the data-loader workers' share."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from hyco.errors import ConfigError
from hyco.utils import threads as T

TWO = {0, 1}
NO_PROC = "/nonexistent/proc/stat"  # a system without /proc/stat: the budget never follows the load
# Variables a test's child process must not inherit from the test run (which sets OMP_NUM_THREADS=1).
THREAD_VARIABLES = (*T.THREAD_COUNT_VARIABLES, *T.WAIT_POLICY_VARIABLES, T.ENV_THREADS, T.ENV_PARALLEL_JOBS,
                    T.ENV_FOLLOW_LOAD,
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
    budget = T.decide("auto", env, launcher=launcher, cpus={0, 1, 2, 3}, quota=None, proc_stat=NO_PROC)
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
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None, proc_stat=NO_PROC), env)
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


# ---------------------------------------------------------------------------- following the load
def _proc_stat(path, busy_ticks: dict[int, int]):
    """A /proc/stat whose CPU k was busy busy_ticks[k] ticks (split over user, system, irq, steal)."""
    lines = ["cpu  1 2 3 4 5 6 7 8 0 0"]
    for cpu, ticks in sorted(busy_ticks.items()):
        user, system, irq, steal = ticks - 3, 1, 1, 1
        lines.append(f"cpu{cpu} {user} 0 {system} 99999 7 {irq} 0 {steal} 0 0")
    lines.append("intr 12345")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cpu_busy_seconds_counts_only_the_masks_cpus(tmp_path):
    hz = os.sysconf("SC_CLK_TCK")
    stat = _proc_stat(tmp_path / "stat", {0: 10 * hz, 1: 20 * hz, 2: 400 * hz})
    assert T.cpu_busy_seconds({0, 1}, stat) == pytest.approx(30.0)  # idle and iowait are not busy
    assert T.cpu_busy_seconds({2}, stat) == pytest.approx(400.0)
    assert T.cpu_busy_seconds({0, 3}, stat) is None  # a CPU of the mask missing: cannot tell
    assert T.cpu_busy_seconds({0}, tmp_path / "missing") is None


def test_only_auto_on_the_whole_mask_follows_the_load(tmp_path):
    stat = _proc_stat(tmp_path / "stat", {0: 100, 1: 100, 2: 100, 3: 100})

    def follows(setting="auto", env=None, cpus=TWO, quota=None, proc_stat=stat):
        return T.decide(setting, env or {}, cpus=cpus, quota=quota, proc_stat=proc_stat).follows_load

    assert follows()
    assert T.decide("auto", {}, cpus=TWO, quota=None, proc_stat=stat).describe() == (
        "threads: 2 of 2 cores (affinity 0-1, fewer while other processes use these cores)")
    assert not follows("2")  # a number the user chose is kept
    assert not follows(env={"OMP_NUM_THREADS": "2"}) and not follows(env={"HYCO_THREADS": "2"})
    assert not follows("off")
    assert not follows(cpus={0})  # one thread: nothing to give back
    assert not follows(env={"LOCAL_WORLD_SIZE": "2"})  # 1 thread per rank
    assert not follows(cpus={0, 1, 2, 3}, quota=2.0)  # the mask's CPUs are shared beyond the quota
    assert not follows(cpus={0, 1, 2, 3}, env={"SLURM_CPUS_PER_TASK": "2"})
    assert not follows(proc_stat=tmp_path / "missing")
    assert not follows(env={"HYCO_FOLLOW_LOAD": "0"}) and follows(env={"HYCO_FOLLOW_LOAD": "1"})


def test_following_the_load_keeps_openmps_waits(tmp_path):
    stat = _proc_stat(tmp_path / "stat", {0: 100, 1: 100})
    env: dict[str, str] = {}
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None, proc_stat=stat), env)
    assert env["OMP_NUM_THREADS"] == "2" and not any(name in env for name in T.WAIT_POLICY_VARIABLES)
    # a parent hyco process exported its short spin (e.g. a static budget): the child follows the load instead
    env = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000", T.ENV_EXPORTED_WAIT: "1"}
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None, proc_stat=stat), env)
    assert not any(name in env for name in (*T.WAIT_POLICY_VARIABLES, T.ENV_EXPORTED_WAIT))
    env = {"OMP_WAIT_POLICY": "PASSIVE"}  # the user's own choice stays
    T.export_budget(T.decide("auto", env, cpus=TWO, quota=None, proc_stat=stat), env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"


class FakeMachine:
    """A clock and the CPU-seconds of 'all processes on the mask' and 'this process', advanced by hand."""

    def __init__(self):
        self.now, self.busy, self.own, self.reads = 0.0, 0.0, 0.0, 0
        self.threads: list[int] = []

    def run(self, seconds: float, ours: float, others: float) -> None:
        """`seconds` pass while this process uses `ours` cores and other processes `others` cores."""
        self.now += seconds
        self.own += ours * seconds
        self.busy += (ours + others) * seconds

    def read_busy(self) -> float:
        self.reads += 1
        return self.busy

    def follower(self, budget: int = 2, cpus=TWO) -> T.AdaptiveThreads:
        return T.AdaptiveThreads(budget, cpus, interval=1.0, clock=lambda: self.now, busy=self.read_busy,
                                 own=lambda: self.own, set_threads=self.threads.append)


def test_a_competitor_takes_a_thread_at_once_and_gives_it_back_after_two_looks():
    machine = FakeMachine()
    follower = machine.follower()
    for _ in range(3):  # quiet: our 2 threads and a little background (below TAKEN of a core)
        machine.run(1.0, ours=2.0, others=0.2)
        follower.poll()
    assert follower.threads == 2 and machine.threads == []
    machine.run(1.0, ours=1.4, others=0.6)  # a competitor starts (we spin, it gets what is left)
    follower.poll()
    assert follower.threads == 1 and machine.threads == [1]
    for _ in range(3):
        machine.run(1.0, ours=1.0, others=1.0)
        follower.poll()
    assert follower.threads == 1 and machine.threads == [1]
    machine.run(1.0, ours=1.0, others=0.0)  # it stopped: one look is not enough
    follower.poll()
    assert follower.threads == 1
    machine.run(1.0, ours=1.0, others=0.0)
    follower.poll()
    assert follower.threads == 2 and machine.threads == [1, 2]
    assert follower.changes == 2
    assert follower.describe() == ("threads over the job: 2 for 44 %, 1 for 56 % of 9 s (2 changes, "
                                   "following other processes' load)")


def test_a_bursty_neighbour_does_not_raise_the_count_and_it_stays_within_budget():
    machine = FakeMachine()
    follower = machine.follower(budget=3, cpus={0, 1, 2, 3})  # 3 threads of 4 cores (e.g. threads via ranks)
    machine.run(1.0, ours=3.0, others=0.9)  # 1 core taken: 4 - 1 = 3, still the budget
    follower.poll()
    assert follower.threads == 3
    machine.run(1.0, ours=2.0, others=3.0)  # three taken: the one free core
    follower.poll()
    assert follower.threads == 1
    for others in (0.0, 3.0, 0.0, 3.0, 0.0):  # never two quiet looks in a row
        machine.run(1.0, ours=1.0, others=others)
        follower.poll()
        assert follower.threads == 1
    machine.run(1.0, ours=1.0, others=8.0)  # more than the mask: never below one thread
    follower.poll()
    assert follower.threads == 1 and machine.threads == [1]


def test_between_looks_a_poll_reads_nothing():
    machine = FakeMachine()
    follower = machine.follower()
    reads = machine.reads
    for _ in range(100):
        machine.run(0.005, ours=2.0, others=2.0)
        follower.poll()
    assert machine.reads == reads and follower.threads == 2  # 0.5 s: no look yet
    machine.run(0.5, ours=2.0, others=2.0)
    follower.poll()
    assert machine.reads == reads + 1 and follower.threads == 1


def test_data_loader_workers_pause_the_following(monkeypatch):
    machine = FakeMachine()
    follower = machine.follower()
    monkeypatch.setitem(T._FOLLOWING, "follower", follower)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with T.lend_to_workers(1):
            assert T.follower() is None
            machine.run(5.0, ours=1.0, others=1.0)  # the worker's CPU: not another process's
            T.poll()
        assert T.follower() is follower
        machine.run(1.0, ours=2.0, others=0.0)
        T.poll()
        assert follower.threads == 2 and machine.threads == []  # the workers' time did not count
    finally:
        torch.set_num_threads(before)


FOLLOW_CHILD = textwrap.dedent("""
    import os, sys, time
    from hyco.utils import threads as T
    budget = T.configure_process([])
    import torch
    budget = T.job_budget("auto")
    assert budget.follows_load, budget
    x = torch.randn(256, 256)
    start = time.monotonic()
    while time.monotonic() - start < float(sys.argv[1]):
        x = torch.tanh(x @ x.T / 256)
        T.poll()
    print("THREADS", torch.get_num_threads(), T.follower().threads, os.environ.get("OMP_WAIT_POLICY"))
""")


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2
                    or T.cpu_busy_seconds(os.sched_getaffinity(0)) is None,
                    reason="needs 2 CPUs and /proc/stat")
def test_beside_a_cpu_bound_process_a_run_drops_to_the_free_cores():
    cpus = set(sorted(os.sched_getaffinity(0))[:2])
    pin = lambda: os.sched_setaffinity(0, cpus)  # noqa: E731
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pin)
    try:
        time.sleep(0.3)
        out = subprocess.run([sys.executable, "-c", FOLLOW_CHILD, "3.5"], capture_output=True, text=True,
                             env=clean_env(), preexec_fn=pin, timeout=120)
    finally:
        hog.kill()
        hog.wait()
    assert out.returncode == 0, out.stderr[-2000:]
    threads, followed, wait = out.stdout.split()[1:]
    assert (threads, followed, wait) == ("1", "1", "None"), out.stdout
