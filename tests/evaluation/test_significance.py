"""The best of a column is called better only when the paired interval over the test simulations says so."""

import math

import numpy as np
import pytest
from scipy import stats

from hyco.evaluation.significance import NOTHING, TIE, TOO_FEW, WIN, compare_best, paired_interval


def test_paired_interval_by_hand():
    better, worse = [1.0, 2.0, 3.0, 4.0], [1.5, 2.1, 3.9, 4.2]
    d = [0.5, 0.1, 0.9, 0.2]
    mean = sum(d) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 3)
    half = stats.t.ppf(0.975, 3) * sd / 2  # sqrt(4) = 2
    assert paired_interval(better, worse) == pytest.approx((mean, mean - half, mean + half))


def test_a_clear_win_is_marked():
    # the runner-up is worse on every one of 8 simulations by about 0.1, with simulation-to-simulation spread
    # far larger than the gain: only the pairing shows it
    rng = np.random.default_rng(0)
    base = rng.uniform(0.1, 1.0, 8)
    result = compare_best({"a": base, "b": base + 0.1 + 0.01 * rng.standard_normal(8)})
    assert result.verdict == WIN and result.significant
    assert (result.best, result.runner_up) == ("a", "b")
    assert result.low > 0 and result.difference == pytest.approx(0.1, abs=0.02)
    assert "better than" in result.describe()


def test_a_constructed_tie_is_not_marked():
    # each model wins on half of the simulations by the same amount: mean difference 0
    base = np.linspace(0.2, 0.9, 6)
    swing = np.array([0.05, -0.05] * 3)
    result = compare_best({"a": base + swing, "b": base - swing})
    assert result.verdict == TIE and not result.significant
    assert result.low < 0 < result.high
    # a small but inconsistent lead (one simulation decides it) is a tie too
    result = compare_best({"a": [0.1, 0.5, 0.3, 0.4], "b": [0.1, 0.5, 0.3, 0.6]})
    assert result.best == "a" and result.verdict == TIE


def test_one_or_two_simulations_give_no_verdict():
    for n in (1, 2):
        result = compare_best({"a": [0.1] * n, "b": [0.9] * n})
        assert result.verdict == TOO_FEW and not result.significant and result.best == "a"
        assert "not enough" in result.describe()


def test_higher_is_better_and_diverged_models():
    # correlation time: higher is better
    result = compare_best({"a": [3, 4, 5, 6], "b": [5, 6, 7, 8]}, lower_is_better=False)
    assert result.best == "b" and result.verdict == WIN and result.difference == pytest.approx(2.0)
    # a model with a diverged simulation takes no part; one model left: nothing to compare
    result = compare_best({"a": [0.1, None, 0.1], "b": [0.5, 0.5, 0.5]})
    assert result.verdict == NOTHING and result.best == "b"
    result = compare_best({"a": [0.1, float("nan"), 0.1], "b": [0.5, 0.4, 0.5], "c": [0.6, 0.5, 0.6]})
    assert (result.best, result.runner_up) == ("b", "c")
    with pytest.raises(ValueError, match="different lengths"):
        compare_best({"a": [0.1, 0.2, 0.3], "b": [0.1, 0.2]})
