"""Resume equals uninterrupted, wherever a kill lands (slow): every mode (physical, synthetic, hybrid, generate) is
killed with SIGKILL at ten or more of its writes (tests/faults/killer.py numbers them), among them just after its
last checkpoint and, twice, again during the resume; resumed to the end, its checkpoints, metrics logs and
summaries must be bit-identical to an uninterrupted run's (timings excluded), with no temporary file left.

The physical run is given 4 epochs and stops after 2 at its noise floor: a resume after that stop must train
nothing. Run with `-s` to see the figures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hyco.data.store import TrajectoryStore

from .harness import TIMING, leftovers, metrics

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
QUICK = ["experiment=burgers_1d_quick", "device=cpu"]
MODES = {"physical": ["train", "mode=physical", "trainer.physical.epochs=4"],
         "synthetic": ["train", "mode=synthetic"],
         "hybrid": ["train", "mode=hybrid", "trainer.hybrid.strategy=cache"],
         "generate": ["generate", "data.generation_batch=1", "data.num_train=8"]}
# the checkpoint a resume continues from: a kill just after its last write is one of the moments
LAST_CHECKPOINT = {"physical": "physical.pt", "synthetic": "last.pt", "hybrid": "hybrid_last.pt",
                   "generate": ".h5"}
KILLS, KILLS_IN_RESUME = 10, (2, 5)


def killer(args: list[str], log: Path, *, kill_at: int = 0, events: Path | None = None) -> int:
    """Run `hyco` through the killer (dying at its `kill_at`-th write when given); returns the exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("HYCO_KILL_AT", None)
    if kill_at:
        env["HYCO_KILL_AT"] = str(kill_at)
    if events is not None:
        env["HYCO_EVENTS"] = str(events)
    with open(log, "w") as handle:
        return subprocess.run([sys.executable, "-m", "tests.faults.killer", *args], stdout=handle,
                              stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=600).returncode


def _flatten(value, prefix=""):
    """Every tensor and number of a checkpoint by its path, timings left out."""
    if isinstance(value, torch.Tensor):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not TIMING.search(str(key)):
                yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    elif isinstance(value, (bool, int, float)):
        yield prefix, torch.tensor(float(value), dtype=torch.float64)
    elif value is None or isinstance(value, str):
        yield prefix, value


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def run_problems(run_dir: Path, reference: Path) -> list[str]:
    """How a resumed run directory differs from the uninterrupted one (empty: not at all)."""
    problems = []
    def files(root):
        return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "tensorboard" not in p.parts)
    if files(run_dir) != files(reference):
        problems.append(f"files {sorted(set(files(run_dir)) ^ set(files(reference)))}")
    for path in sorted(reference.rglob("*.pt")):
        other = run_dir / path.relative_to(reference)
        if not other.exists():
            continue
        mine = dict(_flatten(torch.load(other, map_location="cpu", weights_only=True)))
        theirs = dict(_flatten(torch.load(path, map_location="cpu", weights_only=True)))
        differ = sorted(set(mine) ^ set(theirs)) + [k for k in sorted(set(mine) & set(theirs))
                                                   if not _same(mine[k], theirs[k])]
        if differ:
            problems.append(f"{path.relative_to(reference)} differs at {differ[:4]}")
    for path in sorted(reference.rglob("summary.json")):
        other = run_dir / path.relative_to(reference)
        strip = (lambda d: {k: v for k, v in d.items() if not TIMING.search(k)})  # noqa: E731
        if other.exists() and strip(json.loads(other.read_text())) != strip(json.loads(path.read_text())):
            problems.append(f"{path.relative_to(reference)} differs")
    mode = "hybrid" if (reference / "hyco").exists() else "physical" if (reference / "physical").exists() else \
        "synthetic"
    if metrics(run_dir, mode) != metrics(reference, mode):
        problems.append("metrics logs differ")
    stray = leftovers(run_dir)
    if stray:
        problems.append(f"left over: {[str(p.relative_to(run_dir)) for p in stray]}")
    return problems


def dataset_problems(data_dir: Path, reference: Path) -> list[str]:
    """How a dataset made again after a kill differs from the uninterrupted one."""
    made, expected = sorted(data_dir.glob("*.h5")), sorted(reference.glob("*.h5"))
    if [p.name for p in made] != [p.name for p in expected]:
        return [f"datasets {[p.name for p in made]}, expected {[p.name for p in expected]}"]
    problems = []
    with TrajectoryStore(made[0]) as a, TrajectoryStore(expected[0]) as b:
        for split in ("train", "val", "test"):
            if not np.array_equal(a.trajectories(split), b.trajectories(split)) or \
                    not np.array_equal(a.seeds(split), b.seeds(split)):
                problems.append(f"split {split} differs")
        moment = ("versions", "checksums", "created_utc")  # when and with what it was made, not what it holds
        same_attrs = {k: v for k, v in a.attrs.items() if k not in moment} == \
            {k: v for k, v in b.attrs.items() if k not in moment}
        if not same_attrs:
            problems.append("attributes differ")
    stray = [p.name for p in data_dir.iterdir() if ".tmp" in p.name]
    if stray:
        problems.append(f"left over: {stray}")
    return problems


def kill_points(events: list[str], mode: str) -> list[int]:
    """At least KILLS moments spread over the run, and the one just after its last checkpoint."""
    last = max(i for i, e in enumerate(events, 1) if e.startswith("after rename") and
               e.endswith(LAST_CHECKPOINT[mode]))
    spread = {int(round(x)) for x in np.linspace(1, len(events), KILLS)}
    return sorted(spread | {last})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill-sweep-data")
    assert killer(["generate", *QUICK, f"data_dir={root}", f"output_dir={root}/out"], root / "log") == 0
    return root


@pytest.mark.parametrize("mode", list(MODES))
def test_a_kill_at_any_write_then_resume_ends_as_the_uninterrupted_run(tmp_path, data_dir, mode):
    generating = mode == "generate"

    def args(name: str, resume: bool = False) -> list[str]:
        data = tmp_path / name / "data" if generating else data_dir
        return [*MODES[mode], *QUICK, f"data_dir={data}", f"output_dir={tmp_path / name / 'out'}",
                *(["resume=true"] if resume and not generating else [])]

    events_file = tmp_path / "events"
    assert killer(args("reference"), tmp_path / "reference.log", events=events_file) == 0
    events = [line.split(" ", 1)[1] for line in events_file.read_text().splitlines()]
    reference = tmp_path / "reference" / ("data" if generating else "out")
    trials = [(point, None) for point in kill_points(events, mode)]
    trials += [(len(events) // 2, again) for again in KILLS_IN_RESUME]  # killed, resumed, killed in the resume
    figures = {"kills": 0, "kills_in_resume": 0, "identical": 0}
    failures = []
    for number, (point, again) in enumerate(trials):
        name = f"trial{number}"
        code = killer(args(name), tmp_path / f"{name}.log", kill_at=point)
        killed = code == -signal.SIGKILL
        figures["kills"] += killed
        if again is not None:
            code = killer(args(name, resume=True), tmp_path / f"{name}-resume.log", kill_at=again)
            figures["kills_in_resume"] += code == -signal.SIGKILL
        code = killer(args(name, resume=True), tmp_path / f"{name}-final.log")
        assert code == 0, (tmp_path / f"{name}-final.log").read_text()[-3000:]
        problems = (dataset_problems(tmp_path / name / "data", reference) if generating
                    else run_problems(tmp_path / name / "out", reference))
        figures["identical"] += not problems
        if problems or not killed:
            failures.append((point, events[point - 1] if point <= len(events) else "end", again, killed, problems))
        print(f"{mode}: killed at write {point}/{len(events)} ({events[point - 1]})"
              f"{f', again at write {again} of the resume' if again else ''}: killed={killed}, problems={problems}")
    print(f"kill sweep {mode}: {len(events)} writes, {figures}")
    assert failures == []
    assert figures["kills"] >= KILLS and figures["kills_in_resume"] >= 1
    assert figures["identical"] == len(trials)
