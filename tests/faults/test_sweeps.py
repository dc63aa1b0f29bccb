"""The long fault-injection sweeps (slow): kill -9 at random moments of every task, SIGTERM at random
moments of cached HYCO cycles, byte flips spread over a real dataset, and whole runs with read-only data
or redirected library caches. Each prints its figures (run with `-s` to see them)."""

from __future__ import annotations

import random
import shutil
import signal
import time

import numpy as np
import pytest

from hyco.data.store import TrajectoryStore

from .harness import (
    QUICK,
    Hyco,
    differences,
    final_state,
    kill_at,
    leftovers,
    metrics,
    metrics_problems,
    run,
)
from .test_dataset_corruption import flip_sweep, global_heap_free_space

pytestmark = pytest.mark.slow
STARTED = r"INFO +hyco: task "
MODES = {"physical": ["mode=physical"], "synthetic": ["mode=synthetic"], "hybrid": ["mode=hybrid"]}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep-data")
    code, output = run(["generate", *QUICK, f"data_dir={root}", f"output_dir={root}/generate"], root / "log")
    assert code == 0, output[-2000:]
    return root


def _reference(root, data_dir, mode, extra=()):
    """An uninterrupted run: its directory, and the seconds from the task's start to its end."""
    run_dir = root / f"reference-{mode}"
    process = Hyco(["train", *MODES[mode], *QUICK, *extra, f"data_dir={data_dir}", f"output_dir={run_dir}"],
                   root / f"reference-{mode}.log")
    process.wait_for(STARTED)
    start = time.monotonic()
    assert process.wait() == 0, process.text()[-3000:]
    return run_dir, time.monotonic() - start


def _check_resumed(run_dir, reference, mode) -> list[str]:
    """What differs between a resumed run and the uninterrupted one."""
    problems = [f"state differs: {differences(final_state(run_dir, mode), final_state(reference, mode))[:5]}"]
    if problems[0].endswith("[]"):
        problems = []
    problems += metrics_problems(run_dir, mode)

    if metrics(run_dir, mode) != metrics(reference, mode):
        problems.append("metrics values differ from the uninterrupted run")
    stray = leftovers(run_dir)
    if stray:
        problems.append(f"leftovers after the resumed run: {stray}")
    return problems


def test_kill_9_at_random_moments_resumes_bit_identical(tmp_path, data_dir):
    rng = random.Random(20250101)
    figures = {"trials": 0, "bit_identical": 0, "metrics_consistent": 0, "leftovers_seen": 0,
               "leftover_lines": 0}
    failures = []
    for mode, wanted in (("physical", 6), ("synthetic", 6), ("hybrid", 6)):
        extra = ["trainer.hybrid.strategy=cache"] if mode == "hybrid" else []
        reference, seconds = _reference(tmp_path, data_dir, mode, extra)
        killed_here = 0
        for trial in range(3 * wanted):
            if killed_here == wanted:
                break
            run_dir = tmp_path / f"{mode}-{trial}"
            args = ["train", *MODES[mode], *QUICK, *extra, f"data_dir={data_dir}", f"output_dir={run_dir}"]
            delay = rng.uniform(0.0, 0.8 * seconds)
            code, output, lasted = kill_at(args, tmp_path / f"{mode}-{trial}.log", STARTED, delay, signal.SIGKILL)
            killed = code == -signal.SIGKILL
            killed_here += killed
            if not killed:  # it ended first (the machine is shared, so durations vary): aim earlier
                seconds = min(seconds, lasted)
            figures["leftovers_seen"] += bool(leftovers(run_dir))
            code, output = run([*args, "resume=true"], tmp_path / f"{mode}-{trial}-resume.log")
            assert code == 0, output[-3000:]
            figures["leftover_lines"] += "removed what an interrupted run left" in output
            problems = _check_resumed(run_dir, reference, mode)
            figures["trials"] += killed
            figures["bit_identical"] += killed and not any(p.startswith("state") for p in problems)
            figures["metrics_consistent"] += killed and not any("steps" in p or "metrics" in p for p in problems)
            if problems:
                failures.append((mode, trial, f"{delay:.2f} s", problems))
            print(f"kill -9 {mode} #{trial} after {delay:.2f} s of {seconds:.1f} s: killed={killed} "
                  f"problems={problems}")
    for trial in range(5):  # generation: killed, then run again into the same data_dir
        root = tmp_path / f"generate-{trial}"
        args = ["generate", *QUICK, f"data_dir={root}/data", f"output_dir={root}/out"]
        code, _, _ = kill_at(args, tmp_path / f"generate-{trial}.log", r"generating .*\.h5", rng.uniform(0.0, 1.5),
                             signal.SIGKILL)
        killed = code == -signal.SIGKILL
        code, output = run(args, tmp_path / f"generate-{trial}-again.log")
        assert code == 0, output[-3000:]
        path = next((root / "data").glob("*.h5"))
        same = all(np.array_equal(TrajectoryStore(path).trajectories(s), TrajectoryStore(
            next(data_dir.glob("*.h5"))).trajectories(s)) for s in ("train", "val", "test"))
        stray = [p for p in (root / "data").iterdir() if ".tmp" in p.name]
        figures["trials"] += killed
        figures["bit_identical"] += killed and same
        figures["metrics_consistent"] += killed
        if not same or stray:
            failures.append(("generate", trial, same, stray))
        print(f"kill -9 generate #{trial}: killed={killed} same data={same} stray={stray}")
    print("kill -9 sweep:", figures)
    assert failures == []
    assert figures["trials"] >= 20 and figures["bit_identical"] == figures["trials"]


def test_sigterm_mid_cycle_with_the_cache_strategy_at_10_moments(tmp_path, data_dir):
    rng = random.Random(7)
    extra = ["trainer.hybrid.strategy=cache", "trainer.hybrid.cycles=3"]
    reference, _ = _reference(tmp_path, data_dir, "hybrid", extra)
    figures = {"trials": 0, "clean_exits": 0, "files_left_in_cache": 0, "tmp_files_left": 0, "bit_identical": 0}
    failures = []
    for trial in range(10):
        run_dir = tmp_path / f"term-{trial}"
        args = ["train", "mode=hybrid", *QUICK, *extra, f"data_dir={data_dir}", f"output_dir={run_dir}"]
        process = Hyco(args, tmp_path / f"term-{trial}.log")
        cycle = rng.randint(1, 3)
        process.wait_for(rf"cycle {cycle}/3: ")
        time.sleep(rng.uniform(0.0, 1.5))
        process.signal(signal.SIGTERM)
        code = process.wait()
        output = process.text()
        figures["trials"] += 1
        last = output.strip().splitlines()[-1]
        clean = (code == 128 + signal.SIGTERM and "Traceback" not in output and "resume=true" in last) or code == 0
        figures["clean_exits"] += clean
        cache_files = [p for p in (run_dir / "cache").rglob("*") if p.is_file()] if (run_dir / "cache").exists() else []
        tmp_files = [p for p in run_dir.rglob("*") if ".tmp" in p.name]
        figures["files_left_in_cache"] += len(cache_files)
        figures["tmp_files_left"] += len(tmp_files)
        code, resumed = run([*args, "resume=true"], tmp_path / f"term-{trial}-resume.log")
        assert code == 0, resumed[-3000:]
        problems = _check_resumed(run_dir, reference, "hybrid")
        figures["bit_identical"] += not problems
        if not clean or cache_files or tmp_files or problems:
            failures.append((trial, code, last, cache_files, tmp_files, problems))
        print(f"SIGTERM #{trial} in cycle {cycle}: exit {process.process.returncode}, last line {last[-120:]!r}, "
              f"cache files {len(cache_files)}, tmp files {len(tmp_files)}, resume problems {problems}")
    print("SIGTERM sweep:", figures)
    assert failures == []


def test_byte_flips_over_a_real_dataset(tmp_path, data_dir):
    path = next(data_dir.glob("*.h5"))
    raw = path.read_bytes()
    offsets = sorted(set(np.linspace(0, len(raw) - 1, 400).astype(int).tolist()) |
                     set(random.Random(3).sample(range(len(raw)), 100)))
    outcome = flip_sweep(path, raw, offsets, tmp_path / "damaged.h5")
    free = global_heap_free_space(raw)
    in_free = sum(any(lo <= o < hi for lo, hi in free) for o in outcome["harmless"])
    print(f"byte flips over {path.name} ({len(raw)} bytes): {len(offsets)} offsets, "
          f"{len(outcome['detected'])} detected, {len(outcome['harmless'])} harmless "
          f"({in_free} of them in the global heap's free space), {len(outcome['silent'])} silent")
    assert outcome["silent"] == [] and len(offsets) >= 50


def test_training_from_a_read_only_data_directory(tmp_path, data_dir, read_only):
    copy = tmp_path / "shared"
    copy.mkdir()
    for dataset in data_dir.glob("*.h5"):
        shutil.copy(dataset, copy / dataset.name)
    view = read_only(copy)
    code, output = run(["train", "mode=physical", *QUICK, f"data_dir={view}", f"output_dir={tmp_path}/run"],
                       tmp_path / "log")
    assert code == 0, output[-3000:]
    assert "from a read-only data_dir" in output
    assert sorted(p.name for p in view.iterdir()) == sorted(p.name for p in data_dir.glob("*.h5"))


def test_a_run_writes_nothing_in_home_or_the_temp_dir_with_the_cache_variables_set(tmp_path, data_dir):
    home, temp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temp.mkdir()
    env = {"HOME": str(home), "TMPDIR": str(temp), "MPLCONFIGDIR": str(tmp_path / "run" / "mpl"),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "run" / "inductor")}
    process = Hyco(["run", *QUICK, f"data_dir={data_dir}", f"output_dir={tmp_path}/run"], tmp_path / "log", env=env)
    assert process.wait() == 0, process.text()[-3000:]
    assert list(home.rglob("*")) == [] and list(temp.rglob("*")) == []
