"""Threads under contention: how much slower a hyco run gets beside a competing CPU-bound process, with the
thread budget of `hyco.utils.threads` against the settings before it (`threads=off`: a thread per core,
OpenMP's spinning waits).

Every measured run is a fresh `python -m hyco ...` process (the thread settings are fixed when torch
loads) on datasets generated beforehand. "contended" runs start a competitor first, one single-threaded
CPU-bound process (`while True: pass`) that this benchmark starts and stops around each run. Sections:

- contention: `hyco train mode=synthetic` and `hyco train mode=physical` on the default experiment, each
  quiet and contended with the new defaults, and quiet with `threads=off`; all cases interleaved. Figures:
  the slowdown contended / quiet of the training phase (`train_seconds` of the run's summary.json;
  target <= 2.5 on 2 cores, a fair share is 2) and the quiet cost of the new defaults against `threads=off`
  (target <= 1.10). The full run also measures `threads=off` contended (the slowdown this fixes).
- pair: two `hyco run experiment=burgers_2d_quick` started at once against one alone (interleaved); figure:
  the slower of the two against the median solo time (target <= 2.5).
- explore (only on request): the same two trainings with other thread settings (1 thread; 2 threads that
  sleep at once; 2 threads with spinning waits), quiet and contended, to show which settings help.

The machine is shared, so beside the load average every run records the CPU time other processes used
during it (from /proc/stat, less this benchmark's own children): read each ratio with that load.

    PYTHONPATH=src python -m benchmarks.threads [--quick] [--sections contention pair explore]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.common import figure, interleaved, machine, summarize, write_json
from hyco.utils.threads import (
    ENV_EXPORTED,
    ENV_EXPORTED_WAIT,
    ENV_FOLLOW_LOAD,
    ENV_PARALLEL_JOBS,
    ENV_THREADS,
    THREAD_COUNT_VARIABLES,
    WAIT_POLICY_VARIABLES,
    affinity_cpus,
    cpu_busy_seconds,
)

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("contention", "pair", "explore")
NEW, BEFORE = "new default", "before (threads=off)"
QUIET, CONTENDED = "quiet", "contended"
SETTINGS: dict[str, dict[str, str]] = {NEW: {}, BEFORE: {ENV_THREADS: "off"}}
EXPLORE: dict[str, dict[str, str]] = {
    "new default (2 threads following the load, OpenMP's waits)": {},
    "2 threads fixed, short spin (the default before 2026-12-02)": {
        ENV_THREADS: "2", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000"},
    "1 thread": {ENV_THREADS: "1"},
    "2 threads, passive (no spin)": {ENV_THREADS: "2", "OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "0"},
    "2 threads, active (spinning) waits": {ENV_THREADS: "2", "OMP_WAIT_POLICY": "ACTIVE"},
}
# One CPU-bound process that also ends when this benchmark dies without stopping it.
COMPETITOR = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(100000): pass"
# Inherited settings that would decide the outcome instead of the case's own.
CLEARED = (*THREAD_COUNT_VARIABLES, *WAIT_POLICY_VARIABLES, ENV_THREADS, ENV_PARALLEL_JOBS, ENV_FOLLOW_LOAD,
           ENV_EXPORTED, ENV_EXPORTED_WAIT, "LOCAL_WORLD_SIZE")


# ---------------------------------------------------------------------------- running one command
def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _busy_seconds() -> float | None:
    """CPU seconds all processes have spent busy on this process's CPUs since boot, None where unavailable."""
    return cpu_busy_seconds(affinity_cpus())


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def competitor(active: bool):
    """One single-threaded CPU-bound process for the duration of the block."""
    if not active:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", COMPETITOR])
    time.sleep(0.3)  # running before the measured command starts
    try:
        yield
    finally:
        proc.terminate()
        proc.wait()


def run_hyco(args: list[str], out_dir: Path, env: Mapping[str, str], contended: bool = False,
             together: int = 1) -> list[dict[str, Any]]:
    """Run `together` copies of `hyco <args> output_dir=<out_dir>/<i>` at once (beside a competitor when
    `contended`); per copy: wall seconds, summed `train_seconds`, and the CPU other processes used."""
    load = os.getloadavg()
    busy, own = _busy_seconds(), _own_seconds()
    start = time.perf_counter()
    with competitor(contended):
        procs, dirs = [], []
        for i in range(together):
            dirs.append(out_dir / f"{time.time_ns()}_{i}")
            procs.append((subprocess.Popen([sys.executable, "-m", "hyco", *args, f"output_dir={dirs[-1]}"],
                                           env=dict(env), cwd=out_dir, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.PIPE, text=True), time.perf_counter()))
        walls = []
        for proc, started in procs:
            _, err = proc.communicate()
            walls.append(time.perf_counter() - started)
            if proc.returncode != 0:
                raise RuntimeError(f"hyco {' '.join(args)} failed ({proc.returncode}): {err[-1500:]}")
    elapsed = time.perf_counter() - start
    busy_after = _busy_seconds()
    others = None if busy is None or busy_after is None else max(0.0, (busy_after - busy) - (_own_seconds() - own))
    rows = []
    for wall, directory in zip(walls, dirs):
        train = [json.loads(p.read_text()).get("train_seconds", 0.0) for p in directory.glob("*/summary.json")]
        rows.append({"wall_s": wall, "train_s": sum(train) if train else None, "load_average": load[0],
                     "other_cores": None if others is None else others / elapsed})
    return rows


# ---------------------------------------------------------------------------- sections
def workloads(quick: bool) -> dict[str, list[str]]:
    return {
        "synthetic": ["train", "mode=synthetic", f"trainer.synthetic.epochs={1 if quick else 2}"],
        "physical": ["train", "mode=physical", "trainer.physical.epochs=1",
                     f"trainer.physical.iterations={5 if quick else 10}"],
    }


def measure_cases(cases: list[tuple[str, str, str]], settings: Mapping[str, Mapping[str, str]], data_dir: Path,
                  out_dir: Path, quick: bool, repeats: int) -> dict[str, Any]:
    """Each (workload, setting, condition) case once per round, all cases interleaved."""
    loads = workloads(quick)
    records: dict[str, list[dict]] = {}

    def case(workload: str, setting: str, condition: str):
        key = f"{workload} | {setting} | {condition}"
        records[key] = []

        def once() -> float:
            row = run_hyco([*loads[workload], f"data_dir={data_dir}"], out_dir, child_env(settings[setting]),
                           contended=condition == CONTENDED)[0]
            records[key].append(row)
            print(f"  {key:<62} train {row['train_s']:7.2f} s  wall {row['wall_s']:7.2f} s  "
                  f"other processes {row['other_cores'] or 0:.2f} cores  load {row['load_average']:.1f}", flush=True)
            return row["train_s"]

        return key, once

    timed = interleaved(dict(case(*c) for c in cases), repeats=repeats, warmup=0)
    result = {}
    for key, rows in records.items():
        workload, setting, condition = key.split(" | ")
        result.setdefault(workload, {}).setdefault(setting, {})[condition] = {
            "train_s": timed["cases"][key], "wall_s": summarize([r["wall_s"] for r in rows]),
            "other_cores": summarize([r["other_cores"] or 0.0 for r in rows]),
            "load_average": summarize([r["load_average"] for r in rows])}
    return result


def slowdown(cases: Mapping[str, Any], setting: str, measure: str = "train_s") -> float | None:
    s = cases.get(setting, {})
    if QUIET not in s or CONTENDED not in s:
        return None
    return s[CONTENDED][measure]["median"] / s[QUIET][measure]["median"]


def contention(data_dir: Path, out_dir: Path, quick: bool, repeats: int) -> dict[str, Any]:
    conditions = [(NEW, QUIET), (NEW, CONTENDED), (BEFORE, QUIET)] + ([] if quick else [(BEFORE, CONTENDED)])
    cases = [(w, s, c) for w in workloads(quick) for s, c in conditions]
    return measure_cases(cases, SETTINGS, data_dir, out_dir, quick, repeats)


def explore(data_dir: Path, out_dir: Path, quick: bool, repeats: int) -> dict[str, Any]:
    cases = [(w, s, c) for w in workloads(quick) for s in EXPLORE for c in (QUIET, CONTENDED)]
    return measure_cases(cases, EXPLORE, data_dir, out_dir, quick, repeats)


def pair(data_dir: Path, out_dir: Path, repeats: int) -> dict[str, Any]:
    """Two `hyco run experiment=burgers_2d_quick` at once against one alone, interleaved."""
    args = ["run", "experiment=burgers_2d_quick", f"data_dir={data_dir}"]
    env = child_env({})
    solo, together = [], []
    for _ in range(repeats):
        solo += run_hyco(args, out_dir, env)
        print(f"  solo           wall {solo[-1]['wall_s']:7.2f} s  other processes {solo[-1]['other_cores'] or 0:.2f} "
              f"cores  load {solo[-1]['load_average']:.1f}", flush=True)
        rows = run_hyco(args, out_dir, env, together=2)
        together.append(rows)
        print(f"  two at once    wall {rows[0]['wall_s']:7.2f} s and {rows[1]['wall_s']:7.2f} s  other processes "
              f"{rows[0]['other_cores'] or 0:.2f} cores  load {rows[0]['load_average']:.1f}", flush=True)
    solo_median = summarize([r["wall_s"] for r in solo])["median"]
    slower = [max(r["wall_s"] for r in rows) / solo_median for rows in together]
    return {"solo": solo, "together": together, "solo_wall_s": summarize([r["wall_s"] for r in solo]),
            "slower_of_two_over_solo": summarize(slower)}


# ---------------------------------------------------------------------------- the benchmark
def run(quick: bool = True, sections: tuple[str, ...] | None = None, repeats: int | None = None) -> dict[str, Any]:
    sections = sections or (("contention",) if quick else ("contention", "pair"))
    repeats = repeats or (1 if quick else 3)
    result: dict[str, Any] = {"benchmark": "threads", "quick": quick, "repeats": repeats, "cpus": len(
        os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(), "sections": list(sections)}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir, out_dir = Path(tmp) / "data", Path(tmp) / "runs"
        out_dir.mkdir()
        experiments = ([[]] if {"contention", "explore"} & set(sections) else []) + (
            [["experiment=burgers_2d_quick"]] if "pair" in sections else [])
        for i, experiment in enumerate(experiments):  # the datasets, once, before anything is timed
            subprocess.run([sys.executable, "-m", "hyco", "generate", *experiment, f"data_dir={data_dir}",
                            f"output_dir={out_dir}/generate{i}"], env=child_env({}), cwd=out_dir, check=True,
                           capture_output=True)
        if "contention" in sections:
            print("contention: training quiet and beside one CPU-bound process (interleaved)", flush=True)
            result["contention"] = contention(data_dir, out_dir, quick, repeats)
        if "explore" in sections:
            print("explore: other thread settings (interleaved)", flush=True)
            result["explore"] = explore(data_dir, out_dir, quick, repeats)
        if "pair" in sections:
            print("pair: two `hyco run experiment=burgers_2d_quick` at once vs one alone (interleaved)", flush=True)
            result["pair"] = pair(data_dir, out_dir, repeats)
    result["machine"] = machine()
    result["figures"] = figures(result)
    print(table(result))
    print(f"wrote {write_json('threads', result)}")
    return result


def figures(result: Mapping[str, Any]) -> list[dict]:
    out = []
    for workload, cases in result.get("contention", {}).items():
        load = cases[NEW][CONTENDED]["other_cores"]["median"]
        out.append(figure(f"{workload} training, contended / quiet, new default", slowdown(cases, NEW), 2.5,
                          higher_is_better=False, unit="x",
                          note=f"one competitor; other processes used {load:.2f} cores meanwhile"))
        out.append(figure(f"{workload} training, quiet, new default / threads=off",
                          cases[NEW][QUIET]["train_s"]["median"] / cases[BEFORE][QUIET]["train_s"]["median"], 1.10,
                          higher_is_better=False, unit="x"))
        if slowdown(cases, BEFORE) is not None:
            out.append(figure(f"{workload} training, contended / quiet, threads=off", slowdown(cases, BEFORE),
                              unit="x", note="the settings before the thread budget"))
    for workload, cases in result.get("explore", {}).items():
        for setting in cases:
            out.append(figure(f"{workload} training, contended / quiet, {setting}", slowdown(cases, setting),
                              unit="x"))
    if "pair" in result:
        out.append(figure("two quick `hyco run` at once: slower one / solo", result["pair"][
            "slower_of_two_over_solo"]["median"], 2.5, higher_is_better=False, unit="x",
            note=f"solo {result['pair']['solo_wall_s']['median']:.0f} s"))
    return out


def table(result: Mapping[str, Any]) -> str:
    lines = [f"Threads under contention ({result['cpus']} CPUs, {result['repeats']} interleaved repeats, medians "
             "[min-max]; 'other' = cores used by processes outside this benchmark)"]
    for section in ("contention", "explore"):
        for workload, cases in result.get(section, {}).items():
            lines.append(f"{workload} ({section}):")
            for setting, conditions in cases.items():
                for condition, c in conditions.items():
                    t, w = c["train_s"], c["wall_s"]
                    lines.append(f"  {setting:<36}{condition:<10} train {t['median']:7.2f} s "
                                 f"[{t['min']:.2f}-{t['max']:.2f}]  wall {w['median']:7.2f} s  "
                                 f"other {c['other_cores']['median']:.2f} cores")
                ratio, wall_ratio = slowdown(cases, setting), slowdown(cases, setting, "wall_s")
                if ratio is not None:
                    lines.append(f"  {setting:<36}slowdown contended/quiet: training {ratio:.2f}x, "
                                 f"whole command {wall_ratio:.2f}x")
            if section == "contention":
                new, old = cases[NEW][QUIET], cases[BEFORE][QUIET]
                lines.append(f"  quiet cost of the new default vs threads=off: training "
                             f"{new['train_s']['median'] / old['train_s']['median']:.2f}x, whole command "
                             f"{new['wall_s']['median'] / old['wall_s']['median']:.2f}x")
    if "pair" in result:
        p = result["pair"]
        lines.append(f"two quick runs at once: solo {p['solo_wall_s']['median']:.1f} s, slower of the two / solo "
                     f"{p['slower_of_two_over_solo']['median']:.2f}x (each pair: "
                     f"{', '.join(f'{v:.2f}x' for v in p['slower_of_two_over_solo']['values'])})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter trainings, 1 repeat, contention only")
    parser.add_argument("--repeats", type=int, help="interleaved rounds (default: 1 with --quick, else 3)")
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, help="what to measure (default: contention, "
                        "and pair unless --quick)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the competitor, remove the temporary files
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    run(quick=args.quick, sections=tuple(args.sections) if args.sections else None, repeats=args.repeats)


if __name__ == "__main__":
    main(sys.argv[1:])
