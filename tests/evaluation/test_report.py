"""The report's tables, verdict and page from constructed metrics: numbers, marks and layout."""

import re

import numpy as np
from PIL import Image

from hyco.evaluation import plots
from hyco.evaluation.comparison import coefficient_table, comparison_markdown, rollout_table
from hyco.evaluation.report import Figure, Section, write_report
from hyco.evaluation.verdict import setting_lines, verdict


def _run(per_sim, corr_time=(3.0, 3.0, 3.0), train=1.0, **extra):
    per_sim = list(per_sim)
    mean = float(np.mean(per_sim))
    rollout = {"rel_l2": mean, "nrmse": mean, "vrmse": 2 * mean, "corr_time": float(np.mean(corr_time)),
               "per_sim": {"rel_l2": per_sim, "nrmse": per_sim, "vrmse": [2 * v for v in per_sim],
                           "corr_time": list(corr_time)}}
    return {"rollout": rollout, "train_seconds": train, **extra}


METRICS = {
    "experiment": "tiny", "num_sims": 1, "num_steps": 3, "dt": 0.1, "corr_threshold": 0.8,
    "runs": {
        "physical": {"rollout": {"rel_l2": 0.5, "rmse": 0.1, "nrmse": 0.5, "vrmse": 0.7, "corr_time": 3.0,
                                 "per_sim": {"rel_l2": [0.5], "nrmse": [0.5], "vrmse": [0.7], "corr_time": [3.0]}},
                     "coefficients": {"viscosity": {"rel_error": 0.2}}, "train_seconds": 1.5},
        "synthetic": {"rollout": {"rel_l2": None, "rmse": 0.2, "nrmse": None, "vrmse": None, "corr_time": 1.0,
                                  "per_sim": {"rel_l2": [None], "nrmse": [None], "vrmse": [None],
                                              "corr_time": [1.0]}},
                      "train_seconds": 2.0},
    },
    "true_coefficients": {"viscosity": 0.1}, "initial_coefficients": {"viscosity": 0.5},
    "learned_coefficients": {"physical": {"viscosity": 0.12}},
}


def test_rollout_table_spread_units_and_a_lower_bound_correlation_time():
    metrics = {"num_sims": 3, "num_steps": 4, "dt": 0.5, "corr_threshold": 0.8, "runs": {
        "physical": _run([0.1, 0.2, 0.3], corr_time=(4, 2, 3)),
        "hyco_physical": _run([0.1, 0.2, 0.3], corr_time=(2, 2, 3))}}
    table = rollout_table(metrics)
    assert table.header == ["run", "rel. L2", "nRMSE", "VRMSE", "corr. time", "train s"]
    assert [row[0] for row in table.rows] == ["solver alone", "HYCO solver"]
    assert table.rows[0][1] == "0.2 ± 0.1"  # mean ± sample standard deviation over the simulations
    assert table.rows[0][3] == "0.4 ± 0.2"
    # corr. time in time units (steps x dt); one simulation lasted to the end (4 steps): a lower bound
    assert table.rows[0][4] == "≥ 1.5 ± 0.5" and table.rows[1][4] == "1.167 ± 0.29"
    assert not table.best  # identical errors: a tie, nothing marked
    assert any(note.startswith("rel. L2: solver alone and HYCO solver tie") for note in table.notes)


def test_the_best_is_marked_only_when_significant():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.5, 6)
    clear = {"num_sims": 6, "num_steps": 3, "dt": 1.0, "runs": {
        "physical": _run(base + 0.05, corr_time=[3.0] * 6),
        "hyco_physical": _run(base, corr_time=[3.0] * 6),
        "synthetic": _run(base + 0.4, corr_time=[1.0] * 6)}}
    table = rollout_table(clear)
    assert (1, 1) in table.best and (1, 2) in table.best  # HYCO solver, rel. L2 and nRMSE
    assert "**" + table.rows[1][1] + "**" in table.markdown()
    # corr. time: two runs tie at the rollout's length
    assert not any(c == 4 for _, c in table.best)
    swing = np.array([0.05, -0.05] * 3)
    tie = {"num_sims": 6, "num_steps": 3, "dt": 1.0,
           "runs": {"physical": _run(base + swing), "hyco_physical": _run(base - swing)}}
    assert not rollout_table(tie).best


def test_one_test_simulation_marks_nothing_and_says_why():
    table = rollout_table(METRICS)
    assert table.rows[0][1] == "0.5" and table.rows[1][1] == "diverged"  # one simulation: no ± spread
    assert not table.best
    assert any("1 test simulation cannot tell the models apart" in note for note in table.notes)


def test_coefficient_table_against_truth_initial_guess_floor_and_interval():
    metrics = {**METRICS, "runs": {**METRICS["runs"], "hyco_physical": {
        **METRICS["runs"]["physical"], "coefficients": {"viscosity": {"rel_error": 0.05, "std": 0.002}}}},
        "learned_coefficients": {"physical": {"viscosity": 0.12}, "hyco_physical": {"viscosity": 0.105}},
        "model_floor": {"coefficients": {"viscosity": 0.01}, "how": "fitted to the reference data"}}
    table = coefficient_table(metrics)
    assert table.header == ["", "viscosity", "viscosity 95 % interval", "viscosity rel. error"]
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["truth"] == ["0.1", "–", "0"]
    assert rows["initial guess"] == ["0.5", "–", "4"]  # |0.5 - 0.1| / 0.1
    assert rows["solver alone"] == ["0.12", "–", "0.2"]
    assert rows["HYCO solver"] == ["0.105", "0.1011 to 0.1089", "0.05"]  # ±1.96 std
    assert rows["model floor"] == ["–", "–", "0.01"]
    assert any("fitted to the reference data" in note for note in table.notes)


def test_coefficient_table_of_fields_regions_parameters_known_and_unknown():
    runs = {"physical": {"rollout": {}, "coefficients": {
        "kappa": {"rel_error": 0.3, "rel_error_observed": 0.01, "rel_error_unobserved": 0.45,
                  "parameter_rel_error": 0.2},
        "f": {"rel_error": 0.0, "known": True}, "b": {"rel_error": None, "truth": "unknown"}}}}
    metrics = {"runs": runs, "true_coefficients": {"kappa": [[1.0, 2.0], [2.0, 1.0]], "f": 1.0},
               "unknown_coefficients": ["b"], "initial_coefficients": {"kappa": 1.5, "b": 0.0},
               "learned_coefficients": {"physical": {"kappa": [[1.0, 2.0], [2.0, 2.0]], "b": 0.3}}}
    table = coefficient_table(metrics)
    assert table.header == ["", "kappa rel. error", "kappa parameters rel. error", "kappa observed region",
                            "kappa unobserved region", "b", "b rel. error"]  # f is known: no column
    rows = {row[0]: row[1:] for row in table.rows}
    assert rows["solver alone"] == ["0.3", "0.2", "0.01", "0.45", "0.3", "unknown"]
    assert rows["initial guess"][0] == f"{1.0 / np.sqrt(10):.4g}"  # a number guessed for the whole field
    assert rows["truth"][4:] == ["unknown", "unknown"]
    assert "model floor" not in rows


def test_verdict_names_the_best_model_per_purpose_with_numbers():
    base = np.linspace(0.1, 0.4, 5)
    metrics = {"experiment": "x", "num_sims": 5, "num_steps": 10, "dt": 0.01, "split": "test", "runs": {
        "physical": _run(base + 0.01, corr_time=[10.0] * 5, coefficients={"nu": {"rel_error": 0.02}}),
        "synthetic": _run(base + 0.5, corr_time=[10.0] * 5),
        "hyco_physical": _run(base, corr_time=[10.0] * 5, coefficients={"nu": {"rel_error": 0.01}}),
        "hyco_synthetic": _run(base + 0.3, corr_time=[10.0] * 5)},
        "true_coefficients": {"nu": 0.1}, "model_floor": {"coefficients": {"nu": 0.009}}}
    text = verdict(metrics)
    assert "To forecast the state (up to t = 0.1), HYCO solver is best: relative L2 error 0.25" in text
    assert "next solver alone with 0.26; the lead holds over the 5 test simulations" in text
    assert "The coefficient nu is closest to the truth with HYCO solver: relative error 0.01 (against solver " \
           "alone 0.02); the model floor is 0.009, so this is as close as the solver's discretisation allows" in text
    assert "HYCO moves the solver's rollout error from 0.26 to 0.25 (-3.8%, significant)" in text
    assert "the network's rollout error from 0.75 to 0.55 (-26.7%, significant)" in text
    assert "solver alone is best: relative L2 error 0.5 (VRMSE 0.7); network alone diverged." in verdict(METRICS)
    one = {**metrics, "num_sims": 1, "runs": {k: _run([0.1 * i], corr_time=[10.0])
                                               for i, k in enumerate(metrics["runs"], start=1)}}
    assert "solver alone has the lowest error: relative L2 error 0.1" in verdict(one)  # not called best
    assert "next network alone with 0.2; with 1 test simulation the ranking is not established (a verdict needs 3), " \
           "so no model is best" in verdict(one)
    # the issue's case: 0.0459 against 0.0461, the order flipping between simulations: a tie, nobody best
    tie = {**metrics, "runs": {"physical": _run([0.0459, 0.0470, 0.0448, 0.0461, 0.0457]),
                               "hyco_physical": _run([0.0461, 0.0466, 0.0452, 0.0458, 0.0460])}}
    text = verdict(tie)
    assert "solver is best" not in text and "solver alone is best" not in text and "has the lowest error" in text
    assert "over 5 test simulations the two are not told apart: a tie, no model is best" in text


def test_page_is_self_contained_plain_text_with_the_configuration_folded(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((6, 8, 8))
    observed = np.zeros((8, 8), bool)
    observed[2:6, 2:6] = True
    snap = plots.plot_snapshots(truth, {"physical": truth + 0.1}, [0, 5], tmp_path / "figures" / "snapshots.png",
                                dt=0.1, observed=observed)
    gif = plots.animate(truth, {"physical": truth * 0.9}, tmp_path / "figures" / "movie.gif")
    figures = [Figure("Snapshots", snap, "truth vs `models`", key="snapshots", outline="drawn"),
               Figure("Animation", gif, key="animation"), Figure("Missing", tmp_path / "x.png")]
    tables = [Section("Rollout errors", rollout_table(METRICS)), Section("Coefficients", coefficient_table(METRICS))]
    md, html = write_report(tmp_path, METRICS, figures, "seed: 0\n", summary=["Experiment `tiny`: 1 simulation."],
                            timings={"data": 1.0, "report": 0.5}, verdict="The solver `wins`.", tables=tables)
    text = html.read_text()
    assert text.count("<img") == 2  # the missing figure is left out, the others embedded
    assert "data:image/png;base64," in text and "data:image/gif;base64," in text
    assert not re.search(r"src='(?!data:)", text)  # nothing refers to an outside file
    assert "`" not in text.replace("<pre>seed: 0\n</pre>", "")  # no raw markdown: code spans are <code>
    assert "<code>wins</code>" in text and "<code>tiny</code>" in text
    assert re.search(r"<details id='configuration'><summary>[^<]+</summary>\s*<pre>seed: 0", text)  # folded
    assert "data-figure='snapshots' data-observed-outline='drawn' data-text-overlaps='0'" in text
    assert "alt='Snapshots; observed region outlined'" in text
    assert text.index("Verdict") < text.index("Rollout errors") < text.index("Snapshots") < text.index("Timings")
    md_text = md.read_text()
    assert "](figures/snapshots.png)" in md_text and "| solver alone | 0.5 |" in md_text
    for table in comparison_markdown(METRICS).split("\n\n"):  # what Run.table() returns is what the page shows
        assert table in md_text
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["report.html", "report.md"]
    with Image.open(snap) as image:
        assert image.format == "PNG"


def test_setting_lines_are_plain_and_count_simulations():
    lines = setting_lines({**METRICS, "split": "test", "observation": {"description": "spatial=centre"},
                           "runs": {"physical": {"fitted_on": "whole trajectories", "selected": "epoch 2"}}})
    assert lines[0] == "Experiment tiny: 1 test simulation (held-out test split) of 3 steps, dt = 0.1."
    assert "The solver's data term: solver alone: whole trajectories." in lines


def test_setting_lines_name_the_data_source_the_floor_and_the_matched_baseline():
    """Issue 28: the report says what simulated the data, the model floor, and how the network alone compares in
    samples with HYCO's network (matched, or the note that it had fewer)."""
    hyco_runs = {"synthetic": {}, "hyco_synthetic": {}}
    floor = {"coefficients": {"viscosity": 0.01234, "kappa": None}, "how": "full, noise-free reference data"}
    lines = setting_lines({**METRICS, "runs": hyco_runs, "reference": "a 2x finer grid", "model_floor": floor})
    assert "Data simulated on: a 2x finer grid." in lines
    assert "Model floor: viscosity 0.0123, the solver's coefficient error on full, noise-free reference data." in lines
    assert any(line.startswith("HYCO's network trained on (1 + alpha) x the samples") for line in lines)
    matched = {**hyco_runs, "synthetic_matched": {"matched": "30 epochs over 8 real windows"}}
    lines = setting_lines({**METRICS, "runs": matched})
    assert "network alone, compute-matched: 30 epochs over 8 real windows." in lines
    assert not any(line.startswith("HYCO's network trained on") for line in lines)
    assert not any(line.startswith(("Model floor", "Data simulated")) for line in setting_lines(METRICS))


def test_the_snapshots_say_where_every_rollout_starts():
    from hyco.evaluation.report_figures import start_state

    hidden = {"states": "initial", "initial": "observed", "noise_level": 0.01}
    assert start_state(hidden) == "frame 0 as observed (noisy, its hidden part filled from the observed values)"
    assert start_state({"states": "initial", "initial": "full", "noise_level": 0.0}) == "frame 0 as observed, in full"
    assert start_state({"states": "full", "noise_levels": {"u": 0.02}}) == \
        "frame 0 as observed, in full and with its noise"


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_a_figure_shows_its_data(tmp_path):
    """Not only a PNG that exists: the same data draw the same pixels, other data other pixels, and the picture
    is not blank."""
    curves = {"physical": [0.1, 0.2, 0.4], "HYCO": [0.05, 0.1, 0.2]}
    first = _pixels(plots.plot_error_curves(curves, tmp_path / "a.png"))
    again = _pixels(plots.plot_error_curves(curves, tmp_path / "b.png"))
    other = _pixels(plots.plot_error_curves({**curves, "HYCO": [0.3, 0.01, 0.02]}, tmp_path / "c.png"))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert first.std() > 0
    truth = np.random.default_rng(0).standard_normal((4, 8, 8))
    same = _pixels(plots.plot_snapshots(truth, {"m": truth}, [0, 3], tmp_path / "s1.png", dt=0.1))
    off = _pixels(plots.plot_snapshots(truth, {"m": truth + 1.0}, [0, 3], tmp_path / "s2.png", dt=0.1))
    assert not np.array_equal(same, off)
