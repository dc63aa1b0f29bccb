"""The one place that decides how many CPU threads a hyco process uses, and how they wait.

Why: torch and NumPy start one thread per core of the MACHINE, and torch's OpenMP threads spin while
they wait for each other. Beside another CPU-bound process (a second experiment, a shared SLURM node, a
parallel sweep) a spinning thread burns the core its partner needs, and a run gets 10x slower instead
of the fair 2x. So, before torch or NumPy is imported (`configure_process`, called first thing by the
`hyco` command), this module:

- counts the cores this process may use: its CPU affinity, capped by the cgroup CPU quota (containers,
  SLURM) and by SLURM_CPUS_PER_TASK; not the machine's core count;
- divides them by the processes that share them and that it can know of: the local ranks under torchrun
  (LOCAL_WORLD_SIZE), the parallel jobs of a launcher (HYCO_PARALLEL_JOBS, and at job start the Hydra
  joblib launcher's n_jobs);
- decides how waiting threads wait. With `auto` on all of its CPUs (the usual case) it leaves OpenMP's
  own waits, which spin for milliseconds and are the fastest on an idle machine, and lets the job follow
  the load instead (`AdaptiveThreads`): while the job runs, every core that other processes take costs it
  a thread, at once, and the thread comes back when they leave. One thread never waits for a partner, so
  it cannot burn the core a competitor needs. Where the load cannot be followed (a thread count the user
  chose, a cgroup quota or SLURM count below the affinity mask, no /proc/stat, HYCO_FOLLOW_LOAD=0: a count
  that stays fixed, for bit-identical reruns) threads spin only briefly,
  then sleep (GOMP_SPINCOUNT=10000, about 0.1 ms, for the GNU OpenMP that torch's wheels ship, and
  OMP_WAIT_POLICY=PASSIVE for other runtimes): that pays a wake-up per parallel region on an idle machine
  (1.1-1.4x at the benchmark's sizes) but never spins against a competitor (benchmarks/threads.py
  measures each);
- exports the budget as OMP_NUM_THREADS / MKL_NUM_THREADS / OPENBLAS_NUM_THREADS for torch, NumPy and
  child processes (data-loader workers, launcher workers).

At job start (`job_budget`) the config key `threads` and the launcher are known: the budget is decided
again with them, set with torch.set_num_threads and logged once with the job's start line; the training
and rollout loops call `poll()` so that the count follows the load, and the job's last line says how it
did. Data-loader workers run one thread each and are counted in the same budget while they run
(`lend_to_workers`; the following pauses meanwhile).
Library use without the `hyco` command: call `configure_process()` before importing torch.

Precedence of the setting: the config key `threads` (auto | off | N; also `threads=N` on the command line)
when not `auto`, else the environment variable HYCO_THREADS, else a user's own OMP_NUM_THREADS, else the
automatic budget. `off` leaves every thread setting to torch and OpenMP (their defaults: a thread per core,
spinning waits), i.e. the behaviour before this module existed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hyco.errors import ConfigError

log = logging.getLogger(__name__)

ENV_THREADS = "HYCO_THREADS"
ENV_PARALLEL_JOBS = "HYCO_PARALLEL_JOBS"
# 0: keep the automatic count fixed for the whole job (bit-identical reruns on a shared machine)
ENV_FOLLOW_LOAD = "HYCO_FOLLOW_LOAD"
# What hyco itself exported, so that a later decision (at job start, in a child process) does not take
# hyco's own OMP_NUM_THREADS / OMP_WAIT_POLICY for the user's.
ENV_EXPORTED = "HYCO_EXPORTED_THREADS"
ENV_EXPORTED_WAIT = "HYCO_EXPORTED_WAIT_POLICY"
# Thread-count variables read by the libraries when they load (torch's OpenMP, MKL, NumPy's OpenBLAS, ...).
THREAD_COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                          "NUMEXPR_NUM_THREADS")
# A user who set any of these chose a wait policy; hyco keeps it.
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
# What hyco exports when the user chose no wait policy: sleep after a short spin (see the module docstring).
WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"}
EXPECTED = "auto, off or an integer >= 1"
PROC_STAT = "/proc/stat"
# AdaptiveThreads: how often it looks (seconds), how much of a core other processes must use for it to count
# as taken, and how many looks in a row must allow more threads before it adds one back.
POLL_SECONDS = 1.0
TAKEN = 0.35
RAISE_AFTER = 2


@dataclass(frozen=True)
class ThreadBudget:
    """What was decided and why (the numbers behind the one log line)."""

    threads: int | None  # None: `off`, hyco leaves the settings alone
    source: str  # "auto", "threads=2", "HYCO_THREADS=2", "OMP_NUM_THREADS=1" or "off"
    cores: int  # cores this process may use (affinity, quota, SLURM)
    affinity: str  # the CPUs of the affinity mask, e.g. "0-1"
    quota: float | None = None  # cgroup CPU quota in cores, None when unlimited
    local_ranks: int = 1
    parallel_jobs: int = 1
    workers: int = 0  # data-loader worker processes that share the budget while they run (lend_to_workers)
    cpus: frozenset[int] = frozenset()  # the CPUs of the affinity mask
    follows_load: bool = False  # `auto` on all of its CPUs: fewer threads while others use them (AdaptiveThreads)

    def describe(self) -> str:
        """One line, e.g. `threads: 1 of 2 cores (affinity 0-1, 2 local ranks)`."""
        if self.threads is None:
            return f"threads: left to torch/OpenMP (threads=off; {self.cores} cores, affinity {self.affinity})"
        why = [f"affinity {self.affinity}"]
        if self.quota is not None:
            why.append(f"cgroup quota {self.quota:g} cores")
        if self.local_ranks > 1:
            why.append(f"{self.local_ranks} local ranks")
        if self.parallel_jobs > 1:
            why.append(f"{self.parallel_jobs} parallel jobs")
        if self.source != "auto":
            why.append(f"set by {self.source}")
        if self.follows_load:
            why.append("fewer while other processes use these cores")
        if self.workers:
            why.append(f"{worker_threads(self.threads, self.workers)} while {self.workers} data-loader "
                       f"worker{'s' if self.workers > 1 else ''} run")
        return f"threads: {self.threads} of {self.cores} core{'s' if self.cores > 1 else ''} ({', '.join(why)})"


# ---------------------------------------------------------------------------- the setting
def parse_setting(value: object, key: str = "threads") -> int | str:
    """`auto`, `off` or a positive int; anything else is a ConfigError naming `key`."""
    text = str(value).strip().lower()
    if text in ("auto", "off"):
        return text
    try:
        number = int(text)
    except ValueError:
        raise ConfigError(key, EXPECTED, value) from None
    if number < 1:
        raise ConfigError(key, EXPECTED, value)
    return number


def _positive_int(env: Mapping[str, str], name: str) -> int | None:
    """A positive integer from the environment, None when unset or not a positive integer."""
    try:
        value = int(env.get(name, "").strip())
    except ValueError:
        return None
    return value if value >= 1 else None


# ---------------------------------------------------------------------------- the cores
def format_cpus(cpus: set[int] | frozenset[int]) -> str:
    """{0, 1, 2, 5} -> "0-2,5"."""
    ordered, runs = sorted(cpus), []
    for cpu in ordered:
        if runs and cpu == runs[-1][1] + 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def affinity_cpus() -> set[int]:
    """The CPUs this process may run on (all of them where the OS has no affinity call)."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_quota(root: str | Path = "/sys/fs/cgroup",
                     proc_cgroup: str | Path = "/proc/self/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in cores (e.g. 1.5), None when there is none.

    cgroup v2: `cpu.max` ("max 100000" or "150000 100000") of the process's group and its ancestors;
    cgroup v1: `cpu.cfs_quota_us` / `cpu.cfs_period_us` under the cpu controller. The tightest wins.
    """
    root = Path(root)
    lines = (_read(Path(proc_cgroup)) or "").splitlines()
    quotas: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, group = parts
        group_parts = [p for p in group.strip("/").split("/") if p]
        # the group itself and every ancestor; in a container the mount is already the group (tried last)
        prefixes = [group_parts[:i] for i in range(len(group_parts), -1, -1)]
        if controllers == "":  # v2
            for prefix in prefixes:
                text = _read(root.joinpath(*prefix, "cpu.max"))
                if text:
                    limit, _, period = text.partition(" ")
                    if limit != "max" and period:
                        quotas.append(int(limit) / int(period))
        elif "cpu" in controllers.split(","):  # v1
            for mount in (controllers, "cpu,cpuacct", "cpu"):
                for prefix in prefixes:
                    quota = _read(root.joinpath(mount, *prefix, "cpu.cfs_quota_us"))
                    period = _read(root.joinpath(mount, *prefix, "cpu.cfs_period_us"))
                    if quota and period and int(quota) > 0 and int(period) > 0:
                        quotas.append(int(quota) / int(period))
    return min(quotas) if quotas else None


def usable_cores(env: Mapping[str, str] | None = None, cpus: set[int] | None = None,
                 quota: float | None | str = "read") -> tuple[int, str, float | None]:
    """(cores this process may use, its affinity as text, the cgroup quota in cores or None)."""
    env = os.environ if env is None else env
    cpus = affinity_cpus() if cpus is None else cpus
    quota = cgroup_cpu_quota() if quota == "read" else quota
    cores = len(cpus)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    slurm = _positive_int(env, "SLURM_CPUS_PER_TASK")
    if slurm is not None:
        cores = min(cores, slurm)
    return max(1, cores), format_cpus(cpus), quota


def cpu_busy_seconds(cpus: set[int] | frozenset[int], path: str | Path = PROC_STAT) -> float | None:
    """CPU-seconds that all processes together have kept the CPUs `cpus` busy since boot (the per-CPU lines
    of /proc/stat: user, nice, system, irq, softirq and steal time); None where that cannot be read."""
    text = _read(Path(path))
    if not text or not cpus:
        return None
    ticks, found = 0, 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        try:
            values = [int(v) for v in rest.split()]
        except ValueError:
            return None
        if len(values) < 7:
            return None
        ticks += values[0] + values[1] + values[2] + values[5] + values[6] + (values[7] if len(values) > 7 else 0)
        found += 1
    if found != len(cpus):
        return None
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------------- the decision
def launcher_jobs(launcher: Mapping | None, cores: int) -> int:
    """Jobs that a Hydra launcher runs at once in this machine's processes: the joblib launcher's
    `n_jobs` (negative counts back from the cores, as joblib does); 1 for the basic launcher."""
    if not launcher or "joblib" not in str(launcher.get("_target_", "")).lower():
        return 1
    n_jobs = launcher.get("n_jobs")
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return max(1, cores + 1 + n_jobs if n_jobs < 0 else n_jobs)


def decide(setting: object = "auto", env: Mapping[str, str] | None = None, *, launcher: Mapping | None = None,
           workers: int = 0, cpus: set[int] | None = None, quota: float | None | str = "read",
           proc_stat: str | Path = PROC_STAT) -> ThreadBudget:
    """The thread budget of this process (see the module docstring for the precedence)."""
    env = os.environ if env is None else env
    cpus = affinity_cpus() if cpus is None else set(cpus)
    cores, affinity, quota = usable_cores(env, cpus, quota)
    ranks = _positive_int(env, "LOCAL_WORLD_SIZE") or 1
    jobs = max(_positive_int(env, ENV_PARALLEL_JOBS) or 1, launcher_jobs(launcher, cores))
    choice, source = parse_setting(setting), ""
    if choice != "auto":
        source = "off" if choice == "off" else f"threads={choice}"
    elif env.get(ENV_THREADS, "").strip():
        choice = parse_setting(env[ENV_THREADS], ENV_THREADS)
        source = "off" if choice == "off" else f"{ENV_THREADS}={choice}"
    elif _users_omp_threads(env) is not None:
        choice = _users_omp_threads(env)
        source = f"OMP_NUM_THREADS={choice}"
    if choice == "off":
        threads = None
    elif choice == "auto":
        threads, source = max(1, cores // (ranks * jobs)), "auto"
    else:
        threads = int(choice)
    # Following the load needs the CPU time of exactly the cores this process runs on: not under a cgroup
    # quota or a SLURM count smaller than the affinity mask (the mask's CPUs are shared with processes
    # outside the quota), and only where /proc/stat tells it; HYCO_FOLLOW_LOAD=0 turns it off.
    follows = (source == "auto" and threads is not None and threads > 1 and cores == len(cpus)
               and env.get(ENV_FOLLOW_LOAD, "1").strip() != "0" and cpu_busy_seconds(cpus, proc_stat) is not None)
    return ThreadBudget(threads=threads, source=source, cores=cores, affinity=affinity, quota=quota,
                        local_ranks=ranks, parallel_jobs=jobs, workers=max(0, int(workers)),
                        cpus=frozenset(cpus), follows_load=follows)


# ---------------------------------------------------------------------------- applying it
def _users_omp_threads(env: Mapping[str, str]) -> int | None:
    """OMP_NUM_THREADS when the user set it (not when hyco exported it to this or a parent process)."""
    value = _positive_int(env, "OMP_NUM_THREADS")
    if value is None or env.get(ENV_EXPORTED) == env.get("OMP_NUM_THREADS"):
        return None
    return value


def export_budget(budget: ThreadBudget, env: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Write the budget into the environment that torch, NumPy and child processes read when they load.

    OMP_NUM_THREADS always carries the budget (a user's own value is one of the inputs of the decision);
    the other libraries' variables and the wait policy are set only where the user left them unset.
    Returns what was set.
    """
    env = os.environ if env is None else env
    if budget.threads is None:
        return {}
    value, previous = str(budget.threads), env.get(ENV_EXPORTED)
    users_count = budget.source.startswith("OMP_NUM_THREADS")  # stays the user's, never marked as hyco's
    changes = {name: value for name in THREAD_COUNT_VARIABLES
               if (name == "OMP_NUM_THREADS" and not users_count) or name not in env or env[name] == previous}
    if budget.follows_load:  # OpenMP's own waits (fast on an idle machine); AdaptiveThreads handles contention
        if env.get(ENV_EXPORTED_WAIT):  # hyco's own earlier choice (a parent's), not the user's
            for name in (*WAIT_POLICY, ENV_EXPORTED_WAIT):
                env.pop(name, None)
    elif not any(name in env for name in WAIT_POLICY_VARIABLES) or env.get(ENV_EXPORTED_WAIT):
        changes.update(WAIT_POLICY)
        changes[ENV_EXPORTED_WAIT] = "1"
    if not users_count:
        changes[ENV_EXPORTED] = value
    env.update(changes)
    return changes


def setting_from_overrides(overrides: Sequence[str]) -> object:
    """The value of a `threads=...` command-line override (the last one), `auto` when there is none or it is
    a sweep (each job then sets its own at job start)."""
    value: object = "auto"
    for override in overrides:
        key, sep, text = override.lstrip("+").partition("=")
        if sep and key == "threads":
            value = text
    try:
        return parse_setting(value)
    except ConfigError:
        return "auto"  # a sweep such as threads=1,2, or a bad value that validating the config reports


def configure_process(overrides: Sequence[str] = (), env: MutableMapping[str, str] | None = None) -> ThreadBudget:
    """Decide and export the budget; call it before the first `import torch` / `import numpy`.

    Raises ConfigError for a bad HYCO_THREADS. When torch is already loaded (hyco used as a library) the
    wait policy can no longer change; `apply_to_torch` still sets the thread count.
    """
    budget = decide(setting_from_overrides(overrides), env)
    export_budget(budget, env)
    return budget


def worker_threads(threads: int, workers: int) -> int:
    """Threads left to the training process while `workers` single-threaded worker processes run."""
    return max(1, threads - max(0, workers))


def apply_to_torch(budget: ThreadBudget) -> None:
    """Set torch's intra-op thread count to the budget (a no-op for `off`)."""
    if budget.threads is None:
        return
    import torch

    torch.set_num_threads(budget.threads)


def job_budget(setting: object, launcher: Mapping | None = None, workers: int = 0) -> ThreadBudget:
    """At the start of a job: decide with everything the job knows and apply it to torch; the caller logs
    `budget.describe()` once with the job's start line."""
    budget = decide(setting, launcher=launcher, workers=workers)
    export_budget(budget)
    apply_to_torch(budget)
    follow_load(budget)
    return budget


@contextlib.contextmanager
def lend_to_workers(workers: int) -> Iterator[None]:
    """While `workers` data-loader processes run (one thread each, as torch sets them up), the training
    process uses that many fewer threads, so that workers + threads stay within the budget."""
    import torch

    before = torch.get_num_threads()
    if workers <= 0:
        yield
        return
    follower, _FOLLOWING["follower"] = _FOLLOWING["follower"], None  # the workers' CPU is not "other processes"
    torch.set_num_threads(worker_threads(before, workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if follower is not None:
            follower.restart()
        _FOLLOWING["follower"] = follower


# ---------------------------------------------------------------------------- following the load
class AdaptiveThreads:
    """`threads: auto` while a job runs: one thread fewer for every core that other processes take.

    Why: on an idle machine OpenMP's spinning waits are the fastest (sleeping waits cost a wake-up per
    parallel region: 1.1-1.4x at the benchmark's sizes), but beside a competing process a spinning thread
    burns the core that the thread it waits for needs (2-11x). One thread never waits for a partner, so it
    cannot lose that way. So hyco keeps OpenMP's waits and measures instead: at most every POLL_SECONDS
    (`poll()`, called from the training and rollout loops, costs a clock read otherwise), the CPU time that
    processes other than this one used on this process's CPUs (/proc/stat minus this process's own CPU
    time). Each core they used more than TAKEN of is taken: the thread count drops to the free cores (at
    least 1) at once, and rises again only after RAISE_AFTER looks in a row allow it, so a bursty neighbour
    does not make it flap. Two hyco runs that share the cores both drop to their share.
    """

    def __init__(self, budget: int, cpus: set[int] | frozenset[int], *, interval: float = POLL_SECONDS,
                 clock=time.monotonic, busy=None, own=time.process_time, set_threads=None):
        self.budget = int(budget)
        self.cpus = frozenset(cpus)
        self.interval = float(interval)
        self._clock, self._own = clock, own
        self._busy = busy or (lambda: cpu_busy_seconds(self.cpus))
        self._set = set_threads or _set_torch_threads
        self.threads = self.budget
        self.seconds_at: dict[int, float] = {}  # how long the job ran with each thread count
        self.changes = 0
        self.restart()

    def restart(self) -> None:
        """Start a new measuring interval (after a pause whose CPU time must not count)."""
        self._last = (self._clock(), self._busy(), self._own())
        self._streak = 0

    def poll(self) -> None:
        now = self._clock()
        last_time, last_busy, last_own = self._last
        elapsed = now - last_time
        if elapsed < self.interval:
            return
        busy, own = self._busy(), self._own()
        self._last = (now, busy, own)
        self.seconds_at[self.threads] = self.seconds_at.get(self.threads, 0.0) + elapsed
        if busy is None or last_busy is None:
            return
        other = max(0.0, (busy - last_busy) - (own - last_own)) / elapsed  # cores other processes used
        target = max(1, min(self.budget, len(self.cpus) - max(0, math.ceil(other - TAKEN))))
        if target < self.threads:
            self._change(target, other)
        elif target > self.threads:
            self._streak += 1
            if self._streak >= RAISE_AFTER:
                self._change(target, other)
        else:
            self._streak = 0

    def _change(self, threads: int, other: float) -> None:
        log.debug("threads: %d -> %d (other processes used %.2f of %d cores)", self.threads, threads, other,
                  len(self.cpus))
        self.threads, self._streak = threads, 0
        self.changes += 1
        self._set(threads)

    def describe(self) -> str:
        """E.g. `threads over the job: 2 for 80 %, 1 for 20 % of 95 s (3 changes, following other processes' load)`."""
        total = sum(self.seconds_at.values())
        if total <= 0:
            return f"threads over the job: {self.threads}"
        shares = ", ".join(f"{n} for {100 * s / total:.0f} %" for n, s in sorted(self.seconds_at.items(), reverse=True))
        return (f"threads over the job: {shares} of {total:.0f} s ({self.changes} change"
                f"{'' if self.changes == 1 else 's'}, following other processes' load)")


_FOLLOWING: dict[str, AdaptiveThreads | None] = {"follower": None}


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def follow_load(budget: ThreadBudget) -> AdaptiveThreads | None:
    """Start (or stop) following other processes' load for this job, as the budget says."""
    follower = AdaptiveThreads(budget.threads, budget.cpus) if budget.follows_load and budget.threads else None
    _FOLLOWING["follower"] = follower
    return follower


def follower() -> AdaptiveThreads | None:
    """The job's AdaptiveThreads, None when the thread count is fixed."""
    return _FOLLOWING["follower"]


def poll() -> None:
    """Let the job's thread count follow other processes' load (cheap: a clock read between looks)."""
    follower = _FOLLOWING["follower"]
    if follower is not None:
        follower.poll()
