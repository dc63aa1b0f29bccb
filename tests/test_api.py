"""The public Python API (`from hyco import ...`): a quick experiment run through it, checked by its numbers."""

import json
import os
import subprocess
import sys

import pytest
import torch

import hyco
from hyco.utils.run_lock import RunLock

# frame 0 known in full: from frame 0 seen only in the centre quarter (heat_2d's `observation.initial=observed`)
# no model forecasts the rest of the domain, and these checks of the API's numbers need models that can
QUICK = ["experiment=heat_2d_quick", "observation.initial=full", "evaluation.animation=false"]


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    """generate -> physical, synthetic, HYCO -> evaluate, through the API."""
    root = tmp_path_factory.mktemp("api")
    run = hyco.Run(hyco.compose(QUICK, output_dir=root / "run", data_dir=root / "data"))
    dataset = run.generate()
    results = {mode: run.train(mode) for mode in ("physical", "synthetic", "hybrid")}
    metrics = run.evaluate()
    return root, run, dataset, results, metrics


def test_import_hyco_loads_no_torch_and_offers_the_api_names():
    code = ("import sys, hyco; assert 'torch' not in sys.modules, 'torch'; "
            "names = [hyco.compose, hyco.Run, hyco.run, hyco.HycoConfig, hyco.HycoError]; "
            "assert {'compose', 'Run', 'run'} <= set(dir(hyco)); print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
    assert set(hyco.__all__) == {"__version__", *hyco._LAZY}
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        hyco.nothing  # noqa: B018


def test_compose_sets_the_thread_budget_before_torch_starts(tmp_path):
    """In a fresh process (a notebook), `threads=` decides torch's thread pool, as on the command line."""
    code = ("import os, hyco; hyco.compose(['experiment=heat_2d_quick'], threads=2, output_dir=os.environ['OUT']); "
            "import torch; print(torch.get_num_threads(), os.environ['OMP_WAIT_POLICY'])")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OUT": str(tmp_path / "run")}
    env.pop("OMP_WAIT_POLICY", None)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [str(min(2, len(os.sched_getaffinity(0)))), "PASSIVE"]


def test_compose_takes_overrides_and_python_values(tmp_path):
    odd = tmp_path / "a dir, with=odd 'chars'"
    cfg = hyco.compose(["experiment=burgers_1d_quick", "trainer.physical.epochs=3"], output_dir=odd, seed=7,
                       resume=False, data_dir=tmp_path / "data")
    assert isinstance(cfg, hyco.HycoConfig)
    assert cfg.experiment_name == "burgers_1d_quick" and cfg.trainer.physical.epochs == 3
    assert (cfg.output_dir, cfg.seed, cfg.resume) == (str(odd), 7, False)
    assert cfg.cache_dir == f"{odd}/cache"  # interpolations resolved


def test_compose_refuses_bad_input_in_one_line(tmp_path):
    with pytest.raises(hyco.ConfigError, match=r"^trainer.hybrid.alpha: expected a number in \[0, 1\], got 1.5$"):
        hyco.compose(["trainer.hybrid.alpha=1.5"], output_dir=tmp_path)
    with pytest.raises(hyco.HycoError, match="experiment"):
        hyco.compose(["experiment=no_such_experiment"], output_dir=tmp_path)
    with pytest.raises(hyco.ConfigError, match="^overrides: expected a list"):
        hyco.compose("experiment=heat_2d_quick")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(hyco.ConfigError, match="^output_dir: "):
        hyco.compose(QUICK, output_dir=blocker / "run")


def test_learned_coefficients_beat_the_initial_guess(heat_run):
    _, run, _, results, metrics = heat_run
    errors = run.coefficient_errors()
    initial = errors["initial"]["diffusivity"]
    assert initial > 0.3  # the guess is far from the truth
    for key in ("physical", "hyco_physical"):
        # a field observed in the centre quarter only (outside it the data say nothing): beating the guess is
        # what the data can guarantee (measured 2026-12-07: 0.32 against 0.47)
        assert errors[key]["diffusivity"] < 0.8 * initial, (key, errors)
        assert metrics["runs"][key]["coefficients"]["diffusivity"]["rel_error"] == errors[key]["diffusivity"]
    # no harm: HYCO's solver within 5 % of the solver alone on the same data (measured 0.317 against 0.319)
    assert errors["hyco_physical"]["diffusivity"] <= 1.05 * errors["physical"]["diffusivity"]
    assert results["physical"]["diffusivity_rel_error"] == pytest.approx(errors["physical"]["diffusivity"], rel=1e-3)
    # the initial guess's error, computed by hand from the metrics' fields
    guess = torch.tensor(metrics["initial_coefficients"]["diffusivity"], dtype=torch.float64)
    truth = torch.tensor(metrics["true_coefficients"]["diffusivity"], dtype=torch.float64)
    assert initial == pytest.approx(float((guess - truth).norm() / truth.norm()), rel=1e-9)


def test_coefficients_come_with_how_far_the_data_determine_them(heat_run):
    """Both solvers' diffusivity fields carry a Laplace std map (evaluation/uncertainty.pt) whose means inside and
    outside the observed centre quarter are what metrics.json and `run.coefficients()` report; outside, where
    no data reach, the field is less determined than inside."""
    root, run, _, _, metrics = heat_run
    coefficients = run.coefficients()
    assert set(coefficients) == {"physical", "hyco_physical"}
    maps = torch.load(run.run_dir / "evaluation" / "uncertainty.pt", weights_only=False)
    observed = torch.zeros(16, 16, dtype=torch.bool)
    observed[4:12, 4:12] = True  # centre quarter of 16x16
    for key in ("physical", "hyco_physical"):
        entry = coefficients[key]["diffusivity"]
        assert entry["value"] == metrics["learned_coefficients"][key]["diffusivity"]
        std = torch.as_tensor(maps["runs"][key]["diffusivity"]["std"], dtype=torch.float64)
        assert std.shape == (16, 16)
        assert entry["std_mean_observed"] == pytest.approx(float(std[observed].mean()), rel=1e-5)
        assert entry["std_mean_unobserved"] == pytest.approx(float(std[~observed].mean()), rel=1e-5)
        assert entry["std_mean_unobserved"] > entry["std_mean_observed"]
        assert sum(entry["class_shares"].values()) == pytest.approx(1.0)
        assert metrics["runs"][key]["uncertainty"]["observed_values"] > 0


def test_every_model_rolls_out_and_the_solver_beats_the_network(heat_run):
    _, run, _, _, metrics = heat_run
    rel_l2 = {key: entry["rollout"]["rel_l2"] for key, entry in metrics["runs"].items()}
    assert set(rel_l2) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic"}
    assert all(0 < value < 1 for value in rel_l2.values()), rel_l2
    assert rel_l2["physical"] < rel_l2["synthetic"] and rel_l2["hyco_physical"] < rel_l2["hyco_synthetic"]
    assert run.metrics() == json.loads(json.dumps(metrics))  # the file holds what evaluate() returned
    rollout_table, coefficient_table = run.table().split("\n\n")
    assert len(rollout_table.splitlines()) == 2 + 4 and rollout_table.splitlines()[2].startswith("| solver alone | ")
    # truth, initial guess and the two solvers
    assert [line.split(" | ")[0] for line in coefficient_table.splitlines()[2:]] == [
        "| truth", "| initial guess", "| solver alone", "| HYCO solver"]
    html = run.table()._repr_html_()  # what a notebook shows: the same two tables as HTML
    assert html.count("<table>") == 2 and html.count("<tr>") == (1 + 4) + (1 + 4)
    assert "<td>solver alone</td>" in html
    rollouts = run.rollouts()
    truth = rollouts["truth"]
    assert truth.shape == (8, 1, 16, 16)
    for prediction in rollouts["predictions"].values():
        assert prediction.shape == (7, 1, 16, 16)
    error = (rollouts["predictions"]["physical"] - truth[1:]).norm() / truth[1:].norm()
    assert 0 < float(error) < 1


def test_files_of_the_run_exist(heat_run):
    root, run, dataset, _, _ = heat_run
    assert dataset.parent == root / "data" and dataset.suffix == ".h5" and dataset.exists()
    for relative in ("physical/physical.pt", "physical/summary.json", "synthetic/last.pt", "hyco/hybrid_last.pt",
                     "hyco/physical/physical.pt", "metrics.json", "evaluation/rollouts.pt"):
        assert (run.run_dir / relative).is_file(), relative
    log = (run.run_dir / "hyco.log").read_text()
    assert "=== training hybrid ===" in log and "metrics written to" in log
    assert not (run.run_dir / ".hyco.lock").read_text().strip()  # released after training


def test_report_writes_html_markdown_and_figures(heat_run):
    _, run, _, _, _ = heat_run
    assert run.figures() == []
    report = run.report()
    assert report == run.run_dir / "report.html" and "HYCO network" in report.read_text()
    for table in run.table().split("\n\n"):
        assert table in (run.run_dir / "report.md").read_text()
    names = {p.name for p in run.figures()}
    assert {"snapshots.png", "rollout_error.png", "coefficient_diffusivity.png"} <= names
    assert "rollout.gif" not in names  # evaluation.animation=false


def test_training_again_needs_resume(heat_run):
    _, run, _, _, _ = heat_run
    before = (run.run_dir / "physical" / "physical.pt").read_bytes()
    with pytest.raises(hyco.DataError, match="already exists.*resume=true"):
        run.train("physical")
    run.train("physical", resume=True)  # every epoch is done: nothing left to train, nothing rewritten
    assert (run.run_dir / "physical" / "physical.pt").read_bytes() == before
    with pytest.raises(hyco.ConfigError, match="^mode: expected one of physical, synthetic, hybrid, got 'hyco'$"):
        run.train("hyco")


def test_overwrite_trains_a_mode_again_from_scratch(heat_run):
    """A notebook's cells run twice: with overwrite=True the second training replaces the first, seeded the same."""
    _, run, _, results, _ = heat_run
    again = hyco.Run(run.cfg, overwrite=True)
    (again.mode_dir("physical") / "stale.txt").write_text("from the earlier run")
    repeated = again.train("physical")
    assert repeated["diffusivity_rel_error"] == results["physical"]["diffusivity_rel_error"]
    assert not (again.mode_dir("physical") / "stale.txt").exists()
    assert "overwrite: removed the earlier physical run" in (run.run_dir / "hyco.log").read_text()


def test_a_run_directory_in_use_is_refused(heat_run, tmp_path):
    root, _, _, _, _ = heat_run
    run = hyco.Run(QUICK, output_dir=tmp_path / "busy", data_dir=root / "data")
    with RunLock(tmp_path / "busy"), pytest.raises(hyco.HycoError, match="^output_dir: .* is in use by another"):
        run.train("synthetic")
    assert not (tmp_path / "busy" / "synthetic").exists()
    for read in (run.metrics, run.table, run.rollouts):
        with pytest.raises(hyco.DataError, match=r"(metrics.json|rollouts.pt): not found; call evaluate\(\) first"):
            read()


def test_training_is_seeded_per_call(heat_run, tmp_path):
    """The same training in a fresh run directory, after other work in this process, gives the same network."""
    root, first, _, _, _ = heat_run
    torch.manual_seed(12345)  # whatever the process did before
    torch.rand(10)
    second = hyco.Run(QUICK, output_dir=tmp_path / "again", data_dir=root / "data")
    second.train("synthetic")
    a = torch.load(first.run_dir / "synthetic" / "last.pt", weights_only=False)["model"]
    b = torch.load(second.run_dir / "synthetic" / "last.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_hyco_run_gives_what_the_command_gives(tmp_path):
    """`hyco.run([...])` and `hyco run ...` on the same data: the same models, the same numbers."""
    common = [*QUICK, f"data_dir={tmp_path / 'data'}"]
    api = hyco.run(common, output_dir=tmp_path / "api")
    result = subprocess.run([sys.executable, "-m", "hyco", "run", *common, f"output_dir={tmp_path / 'cli'}"],
                            capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "api" / "report.html").exists() and api.figures()
    ours, theirs = api.metrics(), json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert ours["learned_coefficients"] == theirs["learned_coefficients"]
    for key, entry in ours["runs"].items():
        assert entry["rollout"] == theirs["runs"][key]["rollout"], key
    # the API evaluates what the command trained, to the same numbers
    again = hyco.Run(common, output_dir=tmp_path / "cli").evaluate()
    assert {k: e["rollout"]["rel_l2"] for k, e in again["runs"].items()} == {
        k: e["rollout"]["rel_l2"] for k, e in theirs["runs"].items()}
