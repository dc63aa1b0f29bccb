"""`torchrun` with 2 CPU ranks (gloo) against 1 process with the same global batch: same weights, steps and
files. The fast test drives hyco's loader and trainer directly; the slow ones run the `hyco` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from . import ddp_worker

HERE = Path(__file__).parent
QUICK = ["experiment=burgers_2d_quick", "device=cpu"]


def torchrun(args: list[str], cwd: Path, nproc: int = 2, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


def hyco(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "hyco", *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout)


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def test_two_ranks_train_like_one_process_with_the_same_global_batch(tmp_path):
    result = torchrun([str(HERE / "ddp_worker.py"), str(tmp_path)], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    single = ddp_worker.train(tmp_path / "single")

    assert max_difference(ranks[0]["weights"], single["weights"]) < 1e-5
    assert max_difference(ranks[0]["weights"], ranks[1]["weights"]) == 0.0  # DDP keeps the ranks identical
    assert ranks[0]["steps"] == ranks[1]["steps"] == single["steps"] == 3 * 3  # ceil(10 / 4) steps per epoch
    assert ranks[0]["samples"] == single["samples"] == 10 and ranks[0]["loss"] == pytest.approx(single["loss"], 1e-6)
    # each rank read half of every epoch (5 windows, reshuffled per epoch); together exactly one process's windows
    seen = [r["seen"] for r in ranks]
    assert len(seen[0]) == len(seen[1]) == 15
    for epoch in range(3):
        halves = [set(s[5 * epoch:5 * epoch + 5]) for s in seen]
        assert halves[0] | halves[1] == set(range(10)) and not halves[0] & halves[1]
        assert halves[0] | halves[1] == set(single["seen"][10 * epoch:10 * epoch + 10])
    assert seen[0][:5] != seen[0][5:10]  # a new order every epoch
    # one writer: rank 0's log has one line per epoch, and there is one run directory's worth of files
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt", "metrics.jsonl", "tensorboard"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 3
    # HYCO's partner windows: chunk k made by rank k mod 2 alone, every rank then holds all of them
    reference = ddp_worker.generate_chunks()
    assert ranks[0]["made"] == [0, 2, 4] and ranks[1]["made"] == [1, 3] and reference["made"] == [0, 1, 2, 3, 4]
    for rank in ranks:
        assert all(torch.equal(x, y) for a, b in zip(rank["held"], reference["held"]) for x, y in zip(a, b))


# ------------------------------------------------------------------------------ the `hyco` command (slow)
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("torchrun-data")
    result = hyco(["generate", *QUICK, f"data_dir={root}", f"output_dir={root}/generate"], cwd=root)
    assert result.returncode == 0, result.stderr[-2000:]
    return root


def files(run_dir: Path) -> list[str]:
    """The run directory's files, without the names that differ between any two runs (event files)."""
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*")
                  if p.is_file() and "tfevents" not in p.name and p.name != ".hyco.lock")


def both(tmp_path, data_dir, args: list[str]) -> tuple[Path, Path]:
    one, two = tmp_path / "one", tmp_path / "two"
    common = [*QUICK, f"data_dir={data_dir}"]
    ranks = torchrun(["-m", "hyco", *args, *common, f"output_dir={two}"], cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    single = hyco([*args, *common, f"output_dir={one}"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    assert files(one) == files(two)  # one set of output files, written once
    return one, two


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def coefficients(run_dir: Path) -> dict:
    return json.loads(run_dir.read_text())["coefficients"] if run_dir.is_file() else {}


def assert_same_coefficients(one: Path, two: Path, summary: str, rtol: float) -> None:
    """The learned coefficients in `summary` (relative to each run directory) agree within `rtol`."""
    a, b = (coefficients(d / summary) for d in (one, two))
    assert a.keys() == b.keys() and a
    for name in a:
        assert np.allclose(a[name], b[name], rtol=rtol, atol=0)


def hybrid_networks(one: Path, two: Path) -> tuple[dict, dict]:
    """The HYCO network checkpoints of both runs, after checking they agree within 1e-5 at the same epoch."""
    x, y = (torch.load(d / "hyco" / "synthetic" / "last.pt", weights_only=True) for d in (one, two))
    assert max_difference(x["model"], y["model"]) < 1e-5 and x["epoch"] == y["epoch"]
    return x, y


@pytest.mark.slow
def test_synthetic_under_torchrun_equals_one_process(tmp_path, data_dir):
    one, two = both(tmp_path, data_dir, ["train", "mode=synthetic"])
    a, b = (torch.load(d / "synthetic" / "last.pt", weights_only=True) for d in (one, two))
    assert max_difference(a["model"], b["model"]) < 1e-5
    assert a["epoch"] == b["epoch"] == 4
    assert [r["samples"] for r in lines(one / "synthetic/metrics.jsonl")] == \
        [r["samples"] for r in lines(two / "synthetic/metrics.jsonl")]


@pytest.mark.slow
def test_physical_under_torchrun_equals_one_process(tmp_path, data_dir):
    one, two = both(tmp_path, data_dir, ["train", "mode=physical"])
    assert_same_coefficients(one, two, "physical/summary.json", rtol=1e-6)
    assert [r["windows"] for r in lines(one / "physical/metrics.jsonl")] == \
        [r["windows"] for r in lines(two / "physical/metrics.jsonl")]


@pytest.mark.slow
def test_hybrid_under_torchrun_equals_one_process(tmp_path, data_dir):
    """A sparse observation: partner windows are generated, hidden input states completed, masks differ.

    The solver's coefficient equals the 1-process one within 1e-6 as long as it hears no network (cycle 1).
    Once it hears the network, the objective depends on the network's predictions, which DDP's reduction
    order changes in the last digits (the network's loss by about 1e-5 relative), and the few L-BFGS-B
    iterations of a cycle on that nearly flat float32 objective then end at a viscosity about 1e-4 apart
    (measured 2026-12-02: 0.0200458 against 0.0200437, the objective's value equal within 2e-7). So the
    later cycles are held to the objective's value within 1e-6 and the coefficient within 1e-3."""
    one, two = both(tmp_path, data_dir, ["train", "mode=hybrid", "observation=centre"])
    cycles = [lines(d / "hyco/metrics.jsonl") for d in (one, two)]
    assert len(cycles[0]) == len(cycles[1]) == 2
    assert cycles[0][0]["physical_interaction_weight"] == cycles[1][0]["physical_interaction_weight"] == 0.0
    assert cycles[0][0]["viscosity"] == pytest.approx(cycles[1][0]["viscosity"], rel=1e-6)
    for a, b in zip(*cycles):
        assert a["physical_loss"] == pytest.approx(b["physical_loss"], rel=1e-6)
    assert_same_coefficients(one, two, "hyco/summary.json", rtol=1e-3)
    hybrid_networks(one, two)
    generated = [[c["num_generated_physical"] for c in run] for run in cycles]
    assert generated[0] == generated[1] == [6, 6]


@pytest.mark.slow
def test_hybrid_under_torchrun_in_float64_equals_one_process_in_every_cycle(tmp_path, data_dir):
    """The same run as above in float64: with the float32 rounding of the network's reduction order and of the
    flat objective out of the way, the 2-process solver equals the 1-process one within 1e-6 in EVERY cycle,
    also after it has heard the network (measured 2026-12-02: equal to the last digit). So the 1e-4 of
    float32 is rounding amplified by a flat objective, not a difference in what the ranks compute."""
    one, two = both(tmp_path, data_dir, ["train", "mode=hybrid", "observation=centre", "dtype=float64"])
    cycles = [lines(d / "hyco/metrics.jsonl") for d in (one, two)]
    assert len(cycles[0]) == len(cycles[1]) == 2
    assert cycles[0][1]["physical_interaction_weight"] > 0.0  # cycle 2: the solver hears the network
    for a, b in zip(*cycles):
        assert a["viscosity"] == pytest.approx(b["viscosity"], rel=1e-6)
        assert a["physical_loss"] == pytest.approx(b["physical_loss"], rel=1e-6)
    assert_same_coefficients(one, two, "hyco/summary.json", rtol=1e-6)
    x, _ = hybrid_networks(one, two)
    assert x["model"][next(iter(x["model"]))].dtype == torch.float64


@pytest.mark.slow
@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_with_another_number_of_ranks(tmp_path, data_dir, first, then):
    args = ["train", "mode=synthetic", *QUICK, f"data_dir={data_dir}", "trainer.synthetic.scheduler=none"]

    def start(ranks: int, extra: list[str]) -> None:
        result = (torchrun(["-m", "hyco", *args, *extra], cwd=tmp_path) if ranks == 2
                  else hyco([*args, *extra], cwd=tmp_path))
        assert result.returncode == 0, result.stderr[-3000:]

    start(first, ["trainer.synthetic.epochs=2", f"output_dir={tmp_path}/run"])
    start(then, ["trainer.synthetic.epochs=4", "resume=true", f"output_dir={tmp_path}/run"])
    start(1, ["trainer.synthetic.epochs=4", f"output_dir={tmp_path}/straight"])
    a, b = (torch.load(tmp_path / d / "synthetic" / "last.pt", weights_only=True) for d in ("run", "straight"))
    assert a["epoch"] == b["epoch"] == 4 and max_difference(a["model"], b["model"]) < 1e-5
    assert [r["epoch"] for r in lines(tmp_path / "run/synthetic/metrics.jsonl")] == [1, 2, 3, 4]


@pytest.mark.slow
def test_more_ranks_than_windows_fails_on_every_rank_in_one_line(tmp_path):
    tiny = ["data.num_train=1", "data.num_val=1", "data.num_test=1", "data.num_frames=3", "data.rollout_steps=2"]
    result = torchrun(["-m", "hyco", "train", "mode=synthetic", *QUICK, *tiny, f"data_dir={tmp_path}/data",
                       f"output_dir={tmp_path}/run"], cwd=tmp_path)
    assert result.returncode != 0
    message = ("hyco: error: 1 window(s) cannot be shared by 2 ranks: lower --nproc_per_node to at most 1 "
               "or give the experiment more data\n")
    assert result.stderr.count(message) == 2, result.stderr[-3000:]  # one whole line from each rank
    assert "exitcode  : 2" in result.stderr  # each rank ended with hyco's bad-input code; torchrun reports it
    assert not list((tmp_path / "run").rglob("*.pt"))


@pytest.mark.slow
def test_generate_under_torchrun_writes_the_one_process_file(tmp_path):
    args = ["generate", *QUICK, "data.generation_batch=1"]  # 4 chunks: each rank simulates 2
    ranks = torchrun(["-m", "hyco", *args, f"data_dir={tmp_path}/two", f"output_dir={tmp_path}/two/run"],
                     cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert ranks.stdout.count(".h5") == 1  # the path printed once
    single = hyco([*args, f"data_dir={tmp_path}/one", f"output_dir={tmp_path}/one/run"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    (a,), (b,) = (list((tmp_path / d).glob("*.h5")) for d in ("one", "two"))
    assert a.name == b.name

    def datasets(path):
        out = {}
        with h5py.File(path) as file:
            file.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset)
                            else None)
        return out

    x, y = datasets(a), datasets(b)
    assert x.keys() == y.keys() and "trajectories" in x
    assert all(np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x)  # bit for bit


@pytest.mark.slow
def test_run_under_torchrun_trains_on_two_ranks_and_reports_once(tmp_path, data_dir):
    """`hyco run`: all three trainings on 2 ranks, then rank 0 evaluates and reports alone."""
    result = torchrun(["-m", "hyco", "run", *QUICK, f"data_dir={data_dir}", f"output_dir={tmp_path}/run"],
                      cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert (run / "metrics.json").is_file() and (run / "report.html").is_file()
    assert result.stdout.count("report.html") == 1  # one rank prints
    assert (run / "hyco" / "summary.json").is_file() and (run / "physical" / "summary.json").is_file()


@pytest.mark.slow
def test_burgers_1d_quick_physical_finds_the_same_viscosity_with_one_and_two_ranks(tmp_path):
    """The bar's own check: its 3 whole trajectories do not divide between 2 ranks (once, one of them was
    counted twice and 2 ranks found another viscosity: 0.00505 against 0.00520). Now both minimise the same sum;
    float32 round-off of that sum is the only difference left (measured: none)."""
    one, two = tmp_path / "one", tmp_path / "two"
    # as measured for issue 33: noise-free data, frame 0 known (the shipped 1 % noise and observed frame 0 make a
    # flatter objective, on which the two ranks' round-off ended 3.3e-6 apart)
    args = ["train", "mode=physical", "experiment=burgers_1d_quick", "observation.noise_level=0",
            "observation.initial=full", "device=cpu", f"data_dir={tmp_path}/data"]
    single = hyco([*args, f"output_dir={one}"], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]
    ranks = torchrun(["-m", "hyco", *args, f"output_dir={two}"], cwd=tmp_path)
    assert ranks.returncode == 0, ranks.stderr[-3000:]
    assert_same_coefficients(one, two, "physical/summary.json", rtol=1e-6)
    logs = [lines(d / "physical/metrics.jsonl") for d in (one, two)]
    assert [r["windows"] for r in logs[0]] == [r["windows"] for r in logs[1]] == [3] * len(logs[0])
    for a, b in zip(*logs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["noise_floor"] == pytest.approx(b["noise_floor"], rel=1e-5)
