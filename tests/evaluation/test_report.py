"""Figures and the report from tiny synthetic results."""

import re

import numpy as np
from PIL import Image

from hyco.evaluation import plots
from hyco.evaluation.report import Figure, comparison_rows, write_report

METRICS = {
    "experiment": "tiny",
    "runs": {
        "physical": {"rollout": {"rel_l2": 0.5, "rmse": 0.1, "mae": 0.05, "corr_time": 3.0},
                     "coefficients": {"viscosity": {"rel_error": 0.2}}, "train_seconds": 1.5},
        "synthetic": {"rollout": {"rel_l2": None, "rmse": 0.2, "mae": 0.1, "corr_time": 1.0},
                      "train_seconds": 2.0},
    },
}


def test_comparison_table_rows():
    header, rows = comparison_rows(METRICS)
    assert header[-2] == "viscosity rel. error"
    assert rows[0][0] == "physical only" and rows[0][1] == "0.5" and rows[0][-2] == "0.2"
    assert rows[1][1] == "diverged" and rows[1][-2] == "–"


def test_figures_and_self_contained_html(tmp_path):
    rng = np.random.default_rng(0)
    truth = rng.standard_normal((6, 8, 8))
    preds = {"physical": truth + 0.1, "HYCO": truth * 0.9}
    snap = plots.plot_snapshots(truth, preds, [0, 2, 5], tmp_path / "figures" / "snapshots.png", dt=0.1)
    curves = plots.plot_error_curves({"a": [0.1, 0.2, 0.4], "b": [0.05, 0.1, 0.2]}, tmp_path / "figures" / "err.png")
    field = plots.plot_field_coefficients(rng.random((8, 8)), {"HYCO": rng.random((8, 8))},
                                          tmp_path / "figures" / "kappa.png", "kappa")
    trace = plots.plot_scalar_traces({"physical": [0.05, 0.08, 0.1]}, 0.1, tmp_path / "figures" / "nu.png", "nu")
    train = plots.plot_training_curves({"synthetic": {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.6]}},
                                       tmp_path / "figures" / "train.png")
    gif = plots.animate(truth, preds, tmp_path / "figures" / "movie.gif")
    one_d = plots.plot_snapshots(truth[:, 0], {"m": truth[:, 0]}, [0], tmp_path / "figures" / "st.png")
    for path in (snap, curves, field, trace, train, one_d):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 100
    with Image.open(gif) as image:
        assert image.format == "GIF" and image.n_frames == 6
    figures = [Figure("Snapshots", snap, "truth vs models"), Figure("Animation", gif),
               Figure("Missing", tmp_path / "x.png")]
    md, html = write_report(tmp_path, METRICS, figures, "seed: 0\n", summary=["a line"], timings={"generate": 1.0})
    text = html.read_text()
    assert text.count("<img") == 2  # the missing figure is left out, the others embedded
    assert "data:image/png;base64," in text and "data:image/gif;base64," in text
    assert not re.search(r"src='(?!data:)", text)  # nothing refers to an outside file
    assert "diverged" in text and "viscosity rel. error" in text
    md_text = md.read_text()
    assert "](figures/snapshots.png)" in md_text and "| physical only | 0.5 |" in md_text
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["report.html", "report.md"]


FIELDS_METRICS = {
    "experiment": "two_fields",
    "runs": {
        "physical": {"rollout": {"rel_l2": 0.1, "rmse": 0.1, "mae": 0.05, "corr_time": 3.0},
                     "fields": {"u": {"rel_l2": 0.05}, "v": {"rel_l2": 0.7}},
                     "coefficients": {"kappa": {"rel_error": 0.3, "rel_error_observed": 0.01,
                                                "rel_error_unobserved": 0.45, "parameter_rel_error": 0.2},
                                      "f": {"rel_error": 0.0, "known": True}}},
        "synthetic": {"rollout": {"rel_l2": 0.2, "rmse": 0.2, "mae": 0.1, "corr_time": 1.0},
                      "fields": {"u": {"rel_l2": 0.1}, "v": {"rel_l2": 0.9}}},
    },
}


def test_table_splits_fields_regions_and_parameters_and_leaves_known_coefficients_out():
    header, rows = comparison_rows(FIELDS_METRICS)
    assert header[5:7] == ["rel. L2 u", "rel. L2 v"]  # a pooled figure can hide the error of one field
    assert header[7:11] == ["kappa parameters rel. error", "kappa rel. error", "kappa observed region",
                            "kappa unobserved region"]
    assert not any(h.startswith("f ") for h in header)  # f is known: no error column
    assert rows[0][5:11] == ["0.05", "0.7", "0.2", "0.3", "0.01", "0.45"]
    assert rows[1][7:11] == ["–"] * 4


def test_observation_cycle_and_parameter_figures(tmp_path):
    space = np.zeros((2, 8, 8))
    space[1, 2:6, 2:6] = 1  # one field observed in a box, the other not at all
    observation = plots.plot_observation(space, np.array([1, 0, 1, 0, 1]), tmp_path / "obs.png", ["u", "v"])
    cycles = plots.plot_cycles({"coefficient error: kappa": [0.5, 0.3, None], "interaction weights: solver": [1e-3, 0.0,
                                0.0]}, tmp_path / "cycles.png", best_cycle=2)
    parameters = plots.plot_parameter_traces({"heights": {"physical only": [[1.0, 2.0], [1.5, 2.4]]}},
                                             {"heights": [3.0, 2.5]}, tmp_path / "p.png", "kappa")
    for path in (observation, cycles, parameters):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 200


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
