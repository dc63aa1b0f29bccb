"""The benchmark suite's timing helper and command line (no timing assertions: only arithmetic)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks import common

ROOT = Path(__file__).resolve().parents[1]


class FakeClock:
    """A clock that advances by a scripted duration each time a measured function runs."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def work(self, duration: float):
        def fn():
            self.now += duration
        return fn


def test_summarize_min_median_max():
    s = common.summarize([3.0, 1.0, 2.0, 10.0])
    assert (s["min"], s["median"], s["max"]) == (1.0, 2.5, 10.0)
    assert s["values"] == [3.0, 1.0, 2.0, 10.0]
    with pytest.raises(ValueError):
        common.summarize([])


def test_rate_and_seconds_use_the_clock():
    clock = FakeClock()
    assert common.rate(100, clock.work(0.5), clock=clock)() == pytest.approx(200.0)
    assert common.seconds(clock.work(0.25), clock=clock)() == pytest.approx(0.25)


def test_interleaved_alternates_cases_and_computes_ratios():
    clock = FakeClock()
    order = []
    durations = {"ref": iter([9.0, 1.0, 2.0, 4.0]), "case": iter([9.0, 2.0, 8.0, 4.0])}  # first = warm-up

    def case(name):
        def fn():
            order.append(name)
            clock.now += next(durations[name])
        return common.rate(8.0, fn, clock=clock)

    out = common.interleaved({"ref": case("ref"), "case": case("case")}, repeats=3, warmup=1, reference="ref")
    assert order == ["ref", "case"] + ["ref", "case"] * 3  # warm-up, then round-robin
    ref, measured = out["cases"]["ref"], out["cases"]["case"]
    assert (ref["min"], ref["median"], ref["max"]) == (2.0, 4.0, 8.0)  # rates 8/1, 8/2, 8/4
    assert (measured["min"], measured["median"], measured["max"]) == (1.0, 2.0, 4.0)
    assert out["ratio"] == {"ref": 1.0, "case": 0.5}
    assert out["repeats"] == 3 and out["warmup"] == 1
    assert len(out["machine"]["load_average"]) == 3 and out["machine"]["torch_threads"] >= 1


def test_interleaved_rejects_bad_arguments():
    with pytest.raises(ValueError):
        common.interleaved({"a": lambda: 1.0}, repeats=0)
    with pytest.raises(ValueError):
        common.interleaved({"a": lambda: 1.0}, repeats=1, reference="b")


def test_figure_status_never_hides_a_miss():
    assert common.figure("x", 0.79, 0.8)["status"] == common.BELOW
    assert common.figure("x", 0.8, 0.8)["status"] == common.OK
    assert common.figure("mem", 1.5, 1.0, higher_is_better=False)["status"] == common.ABOVE
    assert common.figure("x", 3.0)["status"] == common.INFO
    assert common.figure("x", None, 0.8)["status"] == common.INFO


def test_write_json_names_the_file_with_a_timestamp(tmp_path):
    path = common.write_json("demo", {"a": 1}, directory=tmp_path)
    assert path.parent == tmp_path and path.name.startswith("demo_") and path.suffix == ".json"
    assert json.loads(path.read_text()) == {"a": 1}
    assert not common.write_json(None, {}, directory=tmp_path).name.startswith("_")


def test_command_line_help():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "--only" in done.stdout


def test_summary_table_shows_misses_skips_and_errors():
    from benchmarks.__main__ import summary_table

    modules = {
        "a": {"status": "ran", "figures": [common.figure("speed ratio", 0.5, 0.8), common.figure("seconds", 2.0)]},
        "b": {"status": "skipped", "note": "benchmarks/b.py is not present", "figures": []},
        "c": {"status": "error", "error": "RuntimeError: boom", "figures": []},
    }
    table = summary_table(modules)
    assert "BELOW TARGET" in table and ">= 0.8" in table
    assert "SKIPPED" in table and "ERROR" in table and "RuntimeError: boom" in table


def test_physics_rollout_figures_are_wrapper_over_bare_ratios():
    from benchmarks.__main__ import collect_figures

    result = {"models": [{"config": "heat_2d", "resolution": [32, 32], "mode": "forward", "overhead": 0.25}]}
    (fig,) = collect_figures("physics_rollout", object(), result)
    assert fig["value"] == pytest.approx(0.75) and fig["status"] == common.BELOW


def test_linear_fit_recovers_slope_and_intercept():
    from benchmarks.scaling import linear_fit

    slope, intercept = linear_fit([1.0, 2.0, 4.0, 8.0], [0.5 + 0.25 * n for n in (1, 2, 4, 8)])
    assert slope == pytest.approx(0.25) and intercept == pytest.approx(0.5)
    assert linear_fit([2.0], [1.0]) == (0.0, 1.0)


def test_threads_figures_are_contended_over_quiet_and_new_over_before():
    from benchmarks.threads import BEFORE, CONTENDED, NEW, QUIET, figures, table

    def case(train, wall):
        return {"train_s": common.summarize([train]), "wall_s": common.summarize([wall]),
                "other_cores": common.summarize([0.1]), "load_average": common.summarize([1.0])}

    result = {"cpus": 2, "repeats": 1, "contention": {"synthetic": {
        NEW: {QUIET: case(10.0, 20.0), CONTENDED: case(30.0, 50.0)},
        BEFORE: {QUIET: case(10.5, 21.0), CONTENDED: case(120.0, 130.0)}}},
        "pair": {"solo_wall_s": common.summarize([40.0]), "slower_of_two_over_solo": common.summarize([1.9])}}
    by_name = {f["name"]: f for f in figures(result)}
    slow = by_name["synthetic training, contended / quiet, new default"]
    assert slow["value"] == pytest.approx(3.0) and slow["status"] == common.ABOVE  # 30 / 10 > 2.5
    quiet = by_name["synthetic training, quiet, new default / threads=off"]
    assert quiet["value"] == pytest.approx(10.0 / 10.5) and quiet["status"] == common.OK
    assert by_name["synthetic training, contended / quiet, threads=off"]["value"] == pytest.approx(120.0 / 10.5)
    assert by_name["two quick `hyco run` at once: slower one / solo"]["status"] == common.OK
    assert "training 3.00x, whole command 2.50x" in table(result)


def _fake_study_run(name, overrides, root, data_dir):
    """A fabricated `hyco run` result whose figures depend on the seed override (no process is started)."""
    seed = int(next(o for o in overrides if o.startswith("seed=")).split("=")[1])
    if seed == 99:
        return {"case": name, "overrides": overrides, "error": "boom", "wall_s": 1.0}
    def run(rel_l2, coef=None):
        return {"rel_l2": rel_l2, "corr_time": 10.0, "train_seconds": 5.0 + seed, "selected": "epoch 1",
                "coefficients": {} if coef is None else {"diffusivity": {"rel_error": coef}}, "fields": {}}
    hyco_error = {1: 0.01, 2: 0.2, 3: 0.03}[seed]  # one outlier seed: the median meets the 5 % rule
    return {"case": name, "overrides": overrides, "wall_s": 2.0, "observation": "full", "trust": [],
            "runs": {"physical": run(1e-3, 1e-6), "synthetic": run(0.06), "hyco_physical": run(0.01, hyco_error),
                     "hyco_synthetic": run(0.05 + seed / 100)}}


def test_study_over_seeds_judges_the_medians_and_keeps_every_seed(tmp_path, monkeypatch, capsys):
    from benchmarks import hyco_study

    monkeypatch.setattr(hyco_study, "run_case", _fake_study_run)
    out = tmp_path / "study.json"
    assert hyco_study.main(["--cases", "heat_through_network", "--seeds", "1", "2", "3", "--out", str(out),
                            "--workdir", str(tmp_path)]) == 0
    result = json.loads(out.read_text())["heat_through_network"]
    assert sorted(result["seeds"]) == ["1", "2", "3"]
    assert result["seeds"]["2"]["overrides"][-1] == "seed=2"
    runs = result["runs"]
    assert runs["hyco_physical"]["coefficients"]["diffusivity"]["rel_error"] == pytest.approx(0.03)
    assert runs["hyco_synthetic"]["rel_l2"] == pytest.approx(0.07) and runs["physical"]["train_seconds"] == 7.0
    assert hyco_study.spread(result)["hyco_physical"]["coef err"] == (0.01, 0.2)
    printed = capsys.readouterr().out
    assert "[    met] heat_through_network" in printed and "coef err 0.01–0.2" in printed


def test_study_over_seeds_reports_a_failed_seed_instead_of_a_median(tmp_path, monkeypatch, capsys):
    from benchmarks import hyco_study

    monkeypatch.setattr(hyco_study, "run_case", _fake_study_run)
    out = tmp_path / "study.json"
    hyco_study.main(["--cases", "heat_through_network", "--seeds", "1", "99", "--out", str(out),
                     "--workdir", str(tmp_path)])
    result = json.loads(out.read_text())["heat_through_network"]
    assert "runs" not in result and "seed(s) [99] failed: boom" in result["error"]
    assert "ERROR seed(s) [99] failed" in capsys.readouterr().out


def test_network_step_counts_a_convolutions_training_flops_as_torch_does():
    import torch
    from benchmarks.network_step import conv_training_flops
    from torch.utils.flop_counter import FlopCounterMode

    conv = torch.nn.Conv2d(8, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 8, 12, 12, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    assert counter.get_total_flops() == conv_training_flops(2, 8, 12)


def test_network_step_measures_three_runtimes_against_the_roof():
    from benchmarks.network_step import run

    result = run(quick=True)
    assert set(result["over_baseline"]) == {"baseline", "new", "bf16"}
    assert result["over_baseline"]["baseline"] == 1.0
    assert result["gflop_per_step"] > 0 and all(0 < v < 1 for v in result["conv_share_of_step"].values())
    # the floor is the step's FLOPs at the bare convolution's rate, as a share of the baseline's step
    seconds = result["step_cpu_seconds"]["baseline"]["median"]
    for precision, rate in result["bare_conv_gflop_per_second"].items():
        assert result["floor_over_baseline"][precision] == pytest.approx(result["gflop_per_step"] / rate / seconds)


@pytest.mark.slow
def test_every_module_of_the_suite_runs_in_its_quick_form(tmp_path, monkeypatch):
    """`python -m benchmarks --quick`, module by module, on today's code (about 2 minutes): a change of the
    store or the observations once broke `synthetic_training` for weeks without a test noticing."""
    from benchmarks import physics_rollout
    from benchmarks.__main__ import MODULES, run_module

    monkeypatch.setattr(physics_rollout, "RESULTS", tmp_path / "physics_rollout.json")  # tests write to tmp only
    outcomes = {name: run_module(name, quick=True) for name in MODULES}
    failed = {name: out.get("error", out["status"]) for name, out in outcomes.items()
              if out["status"] != "ran" or not out["figures"]}
    assert not failed
