"""`hyco compare`: runs grouped by every override except the seeds, statistics checked by hand, bad input in
one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from hyco.errors import HycoError
from hyco.evaluation.sweep_stats import RunResult, group_runs, is_seed
from hyco.tasks.compare import compare, find_runs


def _metrics(experiment: str, errors: dict[str, list[float]], coefficient: dict[str, float] = ()) -> dict:
    runs = {}
    for model, per_sim in errors.items():
        run = {"rollout": {"rel_l2": float(np.mean(per_sim)), "per_sim": {"rel_l2": per_sim}}}
        if model in dict(coefficient):
            run["coefficients"] = {"nu": {"rel_error": dict(coefficient)[model]}}
        runs[model] = run
    return {"experiment": experiment, "num_sims": len(next(iter(errors.values()))), "runs": runs}


def _write_run(directory, overrides: list[str], metrics: dict) -> None:
    (directory / ".hydra").mkdir(parents=True)
    (directory / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (directory / "metrics.json").write_text(json.dumps(metrics))


ALONE = [0.30, 0.32, 0.28, 0.31]
HYCO = {  # per (alpha, seed): the HYCO solver's error per test simulation
    ("0.1", "0"): [0.20, 0.21, 0.19, 0.22], ("0.1", "1"): [0.24, 0.23, 0.25, 0.22],
    ("0.5", "0"): [0.29, 0.33, 0.27, 0.32], ("0.5", "1"): [0.30, 0.31, 0.29, 0.30],
}


@pytest.fixture
def sweep(tmp_path):
    root = tmp_path / "sweep"
    for (alpha, seed), hyco in HYCO.items():
        metrics = _metrics("heat", {"physical": ALONE, "hyco_physical": hyco},
                           {"physical": 0.1 * (1 + int(seed)), "hyco_physical": 0.05 * (1 + int(seed))})
        _write_run(root / f"seed={seed},trainer.hybrid.alpha={alpha}",
                   ["experiment=heat", f"trainer.hybrid.alpha={alpha}", f"seed={seed}", f"output_dir={root}",
                    f"data.seed={seed}"], metrics)
    return root


def test_seed_keys_are_seed_and_every_key_ending_in_dot_seed():
    assert [k for k in ("seed", "data.seed", "observation.seed", "seeds", "trainer.hybrid.alpha") if is_seed(k)] == \
        ["seed", "data.seed", "observation.seed"]


def test_runs_are_grouped_by_everything_but_the_seeds_with_hand_checked_statistics(sweep, tmp_path):
    result, path = compare([sweep], out_dir=tmp_path / "out")
    assert [g.label for g in result.groups] == ["trainer.hybrid.alpha=0.1", "trainer.hybrid.alpha=0.5"]
    assert result.differing == ["trainer.hybrid.alpha"]  # output_dir, a place, is no setting
    low = result.groups[0].figures["hyco_physical"]["rollout_rel_l2"]
    means = [np.mean(HYCO[("0.1", "0")]), np.mean(HYCO[("0.1", "1")])]
    assert low.values == pytest.approx(means) and low.median() == pytest.approx(np.mean(means))
    assert low.mean_std()[1] == pytest.approx(np.std(means, ddof=1))
    assert result.groups[0].figures["hyco_physical"]["nu_rel_error"].range() == pytest.approx((0.05, 0.10))
    # HYCO − alone over the 8 (seed, simulation) pairs of alpha=0.1: Student's t by hand
    d = np.array(HYCO[("0.1", "0")] + HYCO[("0.1", "1")]) - np.array(ALONE + ALONE)
    half = stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    first = result.paired[0]
    assert (first.group, first.first, first.second, first.pairs) == ("trainer.hybrid.alpha=0.1", "hyco_physical",
                                                                       "physical", 8)
    assert (first.mean, first.low, first.high) == pytest.approx((d.mean(), d.mean() - half, d.mean() + half))
    assert first.verdict == "hyco_physical lower"
    assert result.paired[1].verdict == "tie"  # alpha=0.5: HYCO within the spread of the model alone
    assert result.best["hyco_physical"].best == "trainer.hybrid.alpha=0.1"
    assert result.best["hyco_physical"].significant
    assert not result.best["physical"].significant  # the same runs alone in both groups: a tie, no best
    text = path.read_text()
    assert "| trainer.hybrid.alpha=0.1 | HYCO solver | 2 |" in text and "no best group" in text
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert saved["groups"][0]["models"]["hyco_physical"]["rollout_rel_l2"]["median"] == pytest.approx(np.mean(means))
    assert "<table>" in (tmp_path / "out" / "compare.html").read_text()
    assert (tmp_path / "out" / "compare.png").stat().st_size > 1000


def test_the_python_api_gives_the_same_comparison(sweep, tmp_path):
    import hyco

    result = hyco.compare(sweep, out_dir=tmp_path / "api")
    assert [len(g.runs) for g in result.groups] == [2, 2] and (tmp_path / "api" / "compare.md").is_file()


def test_a_single_run_directory_is_a_run_and_its_files_go_there(sweep):
    run = sweep / "seed=0,trainer.hybrid.alpha=0.5"
    assert [r.name for r in find_runs([run])] == [run.name]
    result, path = compare([run])
    assert path == run / "compare.md" and [len(g.runs) for g in result.groups] == [1]
    assert (result.paired[0].pairs, result.paired[0].verdict) == (4, "tie")  # differences -0.01, 0.01, -0.01, 0.01


def test_mixed_experiments_are_refused_unless_allowed(sweep, tmp_path):
    other = tmp_path / "other" / "run"
    _write_run(other, ["experiment=burgers"], _metrics("burgers", {"physical": [0.1, 0.2, 0.3]}))
    with pytest.raises(HycoError, match=r"runs of different experiments: burgers \(1 run\), heat \(4 runs\); "
                                        r"compare one experiment at a time, or pass --allow-mixed"):
        compare([sweep, other.parent])
    result, _ = compare([sweep, other.parent], allow_mixed=True, out_dir=tmp_path / "mixed")
    assert "experiment" in result.differing and len(result.groups) == 3


def test_group_runs_counts_a_diverged_seed_apart():
    runs = [RunResult("a", {"seed": "0"}, _metrics("x", {"physical": [0.1, 0.2, 0.3]})),
            RunResult("b", {"seed": "1"}, {"experiment": "x", "runs": {"physical": {"rollout": {"rel_l2": None}}}})]
    summary = group_runs(runs).groups[0].figures["physical"]["rollout_rel_l2"]
    assert summary.values == pytest.approx((0.2,)) and summary.diverged == 1


@pytest.mark.parametrize("setup, message", [
    ("empty", "compare: no runs in {d}: expected directories holding metrics.json"),
    ("missing", "compare: {d}/nowhere: expected a run or sweep directory, found nothing"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, setup, message):
    target = tmp_path / "nowhere" if setup == "missing" else tmp_path
    result = subprocess.run([sys.executable, "-m", "hyco", "compare", str(target)], capture_output=True, text=True,
                            timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith("hyco: error: " + message.format(d=tmp_path))
