"""The report's figures: coincident curves stay visible, the observed region is outlined, no text runs into
another, every figure of a 2D and a 1D report is drawn (also in parallel)."""

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from matplotlib.patches import PathPatch

from hyco.evaluation import plots
from hyco.evaluation.field_maps import outline_region
from hyco.evaluation.figure_style import (
    integer_ticks,
    new_figure,
    power_of_ten,
    recorded_overlaps,
    run_label,
    run_style,
    save,
)
from hyco.evaluation.report_figures import Rollouts, Training, make_figures


def _pixels_of(image: np.ndarray, color: str, tolerance: float = 0.12) -> int:
    return int((np.abs(image[..., :3] - np.asarray(to_rgb(color))).max(axis=-1) < tolerance).sum())


def test_two_identical_runs_both_stay_visible():
    values = np.geomspace(0.01, 0.1, 12)
    fig = new_figure(5, 3.5)
    ax = fig.subplots()
    first, second = plots.draw_error_curves(ax, {"physical": values, "hyco_physical": values.copy()}, dt=0.1)
    assert first.get_linestyle() != second.get_linestyle() and first.get_marker() != second.get_marker()
    assert first.get_linewidth() > second.get_linewidth()  # the earlier one frames the later one
    fig.canvas.draw()
    image = np.asarray(fig.canvas.buffer_rgba(), dtype=float) / 255
    blue, orange = _pixels_of(image, first.get_color()), _pixels_of(image, second.get_color())
    assert blue > 300 and orange > 300, (blue, orange)  # both colours show along the whole curve
    # alone, the second would cover about as many pixels as it does on top of the first
    solo = new_figure(5, 3.5)
    plots.draw_error_curves(solo.subplots(), {"hyco_physical": values}, dt=0.1)
    solo.canvas.draw()
    alone = _pixels_of(np.asarray(solo.canvas.buffer_rgba(), dtype=float) / 255, second.get_color())
    assert orange > 0.5 * alone


def test_runs_have_readers_names_and_distinct_styles():
    keys = ["physical", "synthetic", "synthetic_matched", "hyco_physical", "hyco_synthetic", "my_run"]
    assert [run_label(k) for k in keys] == ["solver alone", "network alone", "network alone, compute-matched",
                                            "HYCO solver", "HYCO network", "my_run"]
    styles = [run_style(k, keys) for k in keys]
    for attribute in ("color", "linestyle", "marker"):
        assert len({str(s[attribute]) for s in styles}) == len(keys), attribute


def test_observed_region_outline_follows_the_cell_edges():
    fig = new_figure(3, 3)
    ax = fig.subplots()
    mask = np.zeros((8, 8), bool)
    mask[2:6, 1:4] = True  # 4 rows x 3 columns of cells
    assert outline_region(ax, mask, [0.0, 8.0, 0.0, 8.0])
    (patch,) = [p for p in ax.patches if isinstance(p, PathPatch)]
    segments = patch.get_path().vertices.reshape(-1, 2, 2)
    assert len(segments) == 2 * (4 + 3)  # the perimeter, one segment per cell edge
    xs, ys = segments[..., 0], segments[..., 1]
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (1.0, 4.0, 2.0, 6.0)
    assert not outline_region(ax, np.ones((8, 8), bool), [0, 8, 0, 8])  # all observed: nothing to outline
    assert not outline_region(ax, None, [0, 8, 0, 8])


def test_snapshot_times_are_evenly_spaced_and_end_at_the_last_step():
    assert plots.snapshot_steps(7, 4) == [1, 3, 5, 7]
    assert plots.snapshot_steps(8, 4) == [0, 2, 4, 6, 8]
    assert plots.snapshot_steps(7, 3) == [1, 4, 7]
    assert plots.snapshot_steps(23, 4) == [5, 11, 17, 23]


def test_epoch_ticks_are_integers_and_log_ticks_plain_text():
    fig = new_figure(3, 3)
    ax = fig.subplots()
    ax.plot([1, 2], [0.5, 0.4])
    integer_ticks(ax.xaxis)
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 2]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert [power_of_ten(v) for v in (1e-5, 2e-4, 0.05, 1.0, 1e3)] == ["10⁻⁵", "2×10⁻⁴", "0.05", "1", "10³"]


def test_the_text_check_finds_overlapping_titles(tmp_path):
    fig = new_figure(3, 2, layout=None)
    left = fig.add_axes([0.1, 0.1, 0.4, 0.6])
    right = fig.add_axes([0.45, 0.1, 0.4, 0.6])  # panels overlap: so do their long titles
    left.set_title("a long title on the left panel")
    right.set_title("a long title on the right panel")
    path = save(fig, tmp_path / "bad.png")
    assert any("title 'a long title on the left panel'" in o for o in recorded_overlaps(path))


def _field_run(ndim: int, num_sims: int = 3):
    rng = np.random.default_rng(0)
    space = (12, 16) if ndim == 2 else (24,)
    truth = rng.standard_normal((6, 1, *space)).cumsum(axis=0)
    predictions = {"physical": truth[1:] + 0.05, "synthetic": truth[1:] * 0.9, "hyco_physical": truth[1:] + 0.05,
                   "hyco_synthetic": truth[1:] * 0.92}
    observed = np.zeros((1, *space), np.float32)
    observed[(0, *(slice(n // 4, 3 * n // 4) for n in space))] = 1
    curve = list(np.geomspace(0.01, 0.1, 5))
    quantiles = {"rel_l2": {"q10": [v * 0.8 for v in curve], "q50": curve, "q90": [v * 1.2 for v in curve]}}
    truth_kappa = rng.uniform(0.5, 1.0, space)
    runs = {k: {"rollout": {"rel_l2": 0.05, "per_step": {"rel_l2": curve}, "per_step_quantiles": quantiles}}
            for k in predictions}
    for k in ("physical", "hyco_physical"):
        runs[k]["coefficients"] = {"kappa": {"rel_error": 0.1}, "nu": {"rel_error": 0.02, "std": 0.001}}
    metrics = {"dt": 0.1, "num_sims": num_sims, "num_steps": 5, "runs": runs,
               "true_coefficients": {"kappa": truth_kappa.tolist(), "nu": 0.1},
               "initial_coefficients": {"kappa": 0.75, "nu": 0.5},
               "learned_coefficients": {k: {"kappa": (truth_kappa * 1.1).tolist(), "nu": 0.102}
                                        for k in ("physical", "hyco_physical")},
               "model_floor": {"coefficients": {"kappa": 0.05, "nu": 0.01}, "how": "reference data"}}
    rollouts = Rollouts(sim=0, truth=truth, predictions=predictions,
                        fields=[{"name": "u", "channels": 1, "dynamic": True}], observed_space=observed,
                        observed_frames=np.ones(6), domain={"origin": [0.0] * ndim, "bounds": [2.0, 1.5][:ndim]})
    records = [{"epoch": e, "loss": 1.0 / e, "nu": 0.5 / e} for e in (1, 2, 3)]
    training = Training({"physical": records, "synthetic": [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 2.0 / e}
                                                            for e in (1, 2)],
                         "hyco": [{"cycle": c, "physical_loss": 1.0 / c, "synthetic_loss": 0.5 / c,
                                   "physical_val_loss": 0.1, "synthetic_val_loss": 0.2, "kappa_rel_error": 0.2 / c,
                                   "physical_interaction_weight": 0.5} for c in (1, 2)],
                         "hyco/physical": records},
                        {"physical": {"val_losses": [0.3, 0.2, 0.1]}, "hyco": {"best_physical_cycle": 2}})
    return metrics, rollouts, training


@pytest.mark.parametrize("ndim", [2, 1])
def test_every_figure_of_a_report_is_drawn_with_the_outline_and_without_overlaps(tmp_path, ndim):
    metrics, rollouts, training = _field_run(ndim)
    figures = make_figures(metrics, rollouts, training, tmp_path, plot_times=3, animation=True)
    keys = [f.key for f in figures]
    assert keys == ["observation", "error_curves", "snapshots", "error_maps", "coefficient_maps",
                    "coefficient_values", "cycles", "training_curves", "animation"]
    by_key = {f.key: f for f in figures}
    for key in ("snapshots", "error_maps", "coefficient_maps"):
        assert by_key[key].outline == "drawn"
    caption = by_key["coefficient_values"].caption
    assert "model floor" in caption and "95 % intervals" in caption
    for figure in figures:
        assert figure.path.exists()
        if figure.path.suffix == ".png":
            assert recorded_overlaps(figure.path) == [], figure.title


def test_drawing_in_processes_writes_the_same_figures(tmp_path):
    metrics, rollouts, training = _field_run(2)
    serial = make_figures(metrics, rollouts, training, tmp_path / "serial", animation=False)
    parallel = make_figures(metrics, rollouts, training, tmp_path / "parallel", animation=False, workers=2)
    assert [f.path.name for f in serial] == [f.path.name for f in parallel]
    for a, b in zip(serial, parallel):
        assert a.path.read_bytes() == b.path.read_bytes(), a.path.name
