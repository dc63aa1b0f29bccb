"""The main job end to end on a quick experiment, and the tasks alone on its run directory."""

import json
import subprocess
import sys

import pytest


def hyco(*args, cwd):
    return subprocess.run([sys.executable, "-m", "hyco", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    run_dir = root / "run"
    result = hyco("run", "experiment=burgers_1d_quick", "trainer.hybrid.matched_baseline=true", f"output_dir={run_dir}",
                  f"data_dir={root}/data", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, run_dir, result


def test_run_writes_metrics_and_report(quick_run):
    root, run_dir, result = quick_run
    assert result.stdout.strip().splitlines()[-1] == str(run_dir / "report.html")  # the report's path, last
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["experiment"] == "burgers_1d_quick"
    assert set(metrics["runs"]) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic", "synthetic_matched"}
    assert set(metrics["model_floor"]["coefficients"]) == {"viscosity"}  # the solver on the full, noise-free data
    for key, run in metrics["runs"].items():
        assert set(run["rollout"]) >= {"rel_l2", "rmse", "corr_time"}
        assert run["rollout"]["rel_l2"] is None or run["rollout"]["rel_l2"] >= 0
        assert run["train_seconds"] > 0
        assert ("coefficients" in run) == key.endswith("physical")
    assert metrics["runs"]["physical"]["coefficients"]["viscosity"]["rel_error"] < 1.0
    fitted = {k: r.get("fitted_on") for k, r in metrics["runs"].items()}  # what the solver's data term covered
    # states hidden: shooting from frame 0, itself known only where observed (burgers_1d: observation.initial=observed)
    whole = "whole trajectories (9 frames) rolled out from frame 0 (filled where hidden)"
    assert fitted == {"physical": whole, "synthetic": None, "hyco_physical": whole, "hyco_synthetic": None,
                      "synthetic_matched": None}
    assert f"The solver's data term: physical only: {whole}" in (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert html.count("<img") >= 5 and "physical only" in html and "HYCO (network)" in html
    assert (run_dir / "report.md").exists() and (run_dir / "hyco.log").exists()
    assert not (run_dir / "cache" / "generated").exists()


@pytest.mark.slow  # about 35-65 s
def test_evaluate_and_report_alone_on_the_run_directory(quick_run):
    root, run_dir, _ = quick_run
    before = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "report.html").unlink()
    common = ["experiment=burgers_1d_quick", f"output_dir={run_dir}", f"data_dir={root}/data"]
    assert hyco("evaluate", *common, cwd=root).returncode == 0
    after = json.loads((run_dir / "metrics.json").read_text())
    assert after["runs"]["physical"]["rollout"] == before["runs"]["physical"]["rollout"]
    result = hyco("report", *common, cwd=root)
    assert result.returncode == 0 and (run_dir / "report.html").exists()


def test_training_again_without_resume_is_refused(quick_run):
    root, run_dir, _ = quick_run
    result = hyco("train", "mode=physical", "experiment=burgers_1d_quick", f"output_dir={run_dir}",
                  f"data_dir={root}/data", cwd=root)
    assert result.returncode == 2
    assert "already exists" in result.stderr and "resume=true" in result.stderr
    assert result.stderr.count("\n") <= 3  # a warning line at most, then the one-line error, no traceback
    assert "Traceback" not in result.stderr


def test_report_without_evaluation_names_the_missing_file(tmp_path):
    result = hyco("report", "experiment=burgers_1d_quick", f"output_dir={tmp_path}/empty", cwd=tmp_path)
    assert result.returncode == 2
    assert "metrics.json: not found" in result.stderr and "hyco evaluate" in result.stderr


@pytest.mark.slow  # about 20-35 s
def test_multirun_sweep_runs_one_job_per_value(tmp_path):
    result = hyco("train", "-m", "mode=physical", "experiment=burgers_1d_quick", "trainer.physical.epochs=1",
                  "trainer.physical.optimizer=lbfgsb,adam", f"output_dir={tmp_path}/sweep",
                  f"data_dir={tmp_path}/data", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    for job in ("job_0", "job_1"):
        summary = json.loads((tmp_path / "sweep" / job / "physical" / "summary.json").read_text())
        assert summary["epochs"] == 1
        assert (tmp_path / "sweep" / job / "hyco.log").exists()
    optimizers = {(tmp_path / "sweep" / job / ".hydra" / "overrides.yaml").read_text().count("adam")
                  for job in ("job_0", "job_1")}
    assert optimizers == {0, 1}  # one job per swept value
