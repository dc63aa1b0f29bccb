"""Identifiability on the shipped cases (issue 30's acceptance), through the public pipeline: generate, train
physical, evaluate."""

import pytest

import hyco


def physical_run(tmp_path, experiment: str, *overrides: str) -> dict:
    cfg = hyco.compose([f"experiment={experiment}", "evaluation.animation=false", *overrides],
                       output_dir=tmp_path / "run", data_dir=tmp_path / "data")
    run = hyco.Run(cfg)
    run.generate()
    run.train("physical")
    run.evaluate()
    return run.coefficients()["physical"]


def test_heat_paper_quick_the_unobserved_bump_is_not_determined_the_observed_one_is(tmp_path):
    """A quarter observed: the bump inside it (heights[0], centers[0]) is determined; the bump outside it
    (heights[1], centers[1]) is not, or only weakly (measured: height not determined, centre weakly)."""
    entry = physical_run(tmp_path, "heat_paper_quick")["diffusivity"]
    classes = entry["parameter_class"]
    assert classes["heights"][0] == "determined"
    assert classes["centers"][:2] == ["determined", "determined"]
    assert classes["heights"][1] in ("weakly determined", "not determined by the data")
    assert set(classes["centers"][2:]) <= {"weakly determined", "not determined by the data"}
    assert "not determined by these observations" in entry["identifiability"]
    # the intervals are the numbers' own: the learned value inside, the bounds around
    lows, highs = entry["parameter_interval"]["heights"]
    for value, low, high in zip(entry["parameters"]["heights"], lows, highs):
        assert low <= value <= high


@pytest.mark.slow  # 28 s alone, minutes under load: 8 trajectories of 24 frames, a dense 1024-cell posterior
def test_heat_2d_the_field_is_five_times_less_determined_outside_the_observed_box(tmp_path):
    """heat_2d's reference data and noise, frame 0 known in full: the solver explains the observed data to the
    noise (misfit 1.03), and the posterior says where the data reach. Measured 2026-12-07: mean std 0.0185
    outside the centre box, 0.00246 inside (7.5 x), every cell's interval holding the truth.

    As shipped (frame 0 observed only in the box, its rest inpainted) the solver misfits instead: residuals 134 x
    what the noise explains, a field error of 1.09 (worse than its guess), and the widened posterior's ratio 3.0;
    the report says the solver misfits (hyco.training.laplace.MISFIT_LIMIT), which tests/training/test_laplace.py
    checks."""
    entry = physical_run(tmp_path, "heat_2d", "observation.initial=full")["diffusivity"]
    assert "misfit" not in entry
    assert entry["std_mean_unobserved"] >= 5 * entry["std_mean_observed"]
    assert entry["inside_interval"] >= 0.9
