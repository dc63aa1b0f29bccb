"""Metrics against values computed by hand on tiny arrays."""

import math

import pytest
import torch

from hyco.evaluation.metrics import (
    channel_errors,
    coefficient_error,
    correlation_time,
    field_rollout_metrics,
    finite_or_none,
    per_step_errors,
    rollout_metrics,
)


def test_per_step_errors_by_hand():
    truth = torch.tensor([[[[1.0, 2.0, 3.0, 4.0]]]])  # [N=1, S=1, C=1, x=4]
    pred = torch.tensor([[[[1.0, 2.0, 3.0, 6.0]]]])
    e = per_step_errors(pred, truth)
    assert e["rel_l2"].item() == pytest.approx(2.0 / math.sqrt(30.0))
    assert e["rmse"].item() == pytest.approx(math.sqrt(4.0 / 4.0))
    assert e["mae"].item() == pytest.approx(0.5)
    # Pearson r of (1,2,3,6) and (1,2,3,4): cov / (sd sd), by hand
    p, t = [1, 2, 3, 6], [1, 2, 3, 4]
    mp, mt = sum(p) / 4, sum(t) / 4
    cov = sum((a - mp) * (b - mt) for a, b in zip(p, t))
    r = cov / math.sqrt(sum((a - mp) ** 2 for a in p) * sum((b - mt) ** 2 for b in t))
    assert e["corr"].item() == pytest.approx(r)


def test_perfect_prediction_and_sign_flip():
    truth = torch.randn(3, 5, 2, 8, 8)
    e = per_step_errors(truth.clone(), truth)
    assert torch.all(e["rel_l2"] == 0) and torch.allclose(e["corr"], torch.ones(3, 5, dtype=torch.float64))
    e = per_step_errors(-truth, truth)
    assert torch.allclose(e["rel_l2"], torch.full((3, 5), 2.0, dtype=torch.float64))
    assert torch.allclose(e["corr"], -torch.ones(3, 5, dtype=torch.float64))


def test_a_correlation_at_the_threshold_still_counts_and_the_default_is_0_8():
    corr = torch.tensor([[0.9, 0.8, 0.5], [0.85, 0.79, 0.9]], dtype=torch.float64)
    assert correlation_time(corr).tolist() == [2.0, 1.0]  # "at or above 0.8"
    assert correlation_time(corr, 0.85).tolist() == [1.0, 1.0]


def test_correlation_time_counts_leading_steps_above_threshold():
    corr = torch.tensor([[0.99, 0.9, 0.85, 0.7, 0.9],   # drops at step index 3 -> 3 steps
                         [0.5, 0.99, 0.99, 0.99, 0.99],  # below at once -> 0
                         [0.95, 0.95, 0.95, 0.95, 0.95]])  # never -> 5
    assert correlation_time(corr, 0.8).tolist() == [3.0, 0.0, 5.0]


def test_rollout_metrics_summary():
    truth = torch.ones(2, 4, 1, 3)
    pred = truth * 1.1
    m = rollout_metrics(pred, truth)
    assert m["rel_l2"] == pytest.approx(0.1)
    assert m["rmse"] == pytest.approx(0.1)
    assert len(m["per_step"]["rel_l2"]) == 4 and m["num_sims"] == 2 and m["num_steps"] == 4


def test_coefficient_error_scalar_and_field():
    assert coefficient_error(torch.tensor(0.11), torch.tensor(0.1)) == pytest.approx(0.1)
    true = torch.tensor([[1.0, 2.0], [2.0, 1.0]])
    learned = true + torch.tensor([[0.1, 0.0], [0.0, -0.1]])
    assert coefficient_error(learned, true) == pytest.approx(math.sqrt(0.02) / math.sqrt(10.0))
    # a constant guess against a field truth is compared everywhere
    assert coefficient_error(torch.tensor(1.5), true) == pytest.approx(1.0 / math.sqrt(10.0))
    with pytest.raises(ValueError, match="shapes differ"):
        coefficient_error(torch.ones(3), true)


def test_nrmse_and_vrmse_by_hand_per_channel():
    # one simulation, one step, two channels of four grid points
    truth = torch.tensor([[[[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 6.0]]]])
    pred = torch.tensor([[[[1.0, 2.0, 3.0, 6.0], [2.0, 3.0, 2.0, 6.0]]]])
    e = channel_errors(pred, truth)
    mse = [4.0 / 4, 1.0 / 4]
    mean_square = [(1 + 4 + 9 + 16) / 4, (4 + 4 + 4 + 36) / 4]
    variance = [((1 - 2.5) ** 2 + (2 - 2.5) ** 2 + (3 - 2.5) ** 2 + (4 - 2.5) ** 2) / 3,  # Bessel, as The Well
                ((2 - 3) ** 2 * 3 + (6 - 3) ** 2) / 3]
    for c in range(2):
        assert e["nrmse"][0, 0, c].item() == pytest.approx(math.sqrt(mse[c] / (mean_square[c] + 1e-7)))
        assert e["vrmse"][0, 0, c].item() == pytest.approx(math.sqrt(mse[c] / (variance[c] + 1e-7)))
    # the pooled figure is the mean over channels, not one norm over both
    pooled = per_step_errors(pred, truth)
    assert pooled["vrmse"].item() == pytest.approx((e["vrmse"][0, 0, 0].item() + e["vrmse"][0, 0, 1].item()) / 2)


def test_vrmse_of_the_spatial_mean_is_about_one_and_nrmse_of_a_scalar_field_is_rel_l2():
    torch.manual_seed(0)
    truth = torch.randn(2, 3, 1, 50, 50) + 5.0
    mean = truth.mean(dim=(-2, -1), keepdim=True).expand_as(truth)
    e = per_step_errors(mean, truth)
    assert torch.allclose(e["vrmse"], torch.ones_like(e["vrmse"]), atol=0.01)  # sqrt((n-1)/n) off 1
    assert e["nrmse"].max().item() < 0.25  # the mean hides the field's variations from nRMSE
    pred = truth + 0.1 * torch.randn_like(truth)
    e = per_step_errors(pred, truth)
    assert torch.allclose(e["nrmse"], e["rel_l2"], rtol=1e-6)


def test_rollout_metrics_keep_each_simulation_and_the_spread_over_simulations():
    truth = torch.arange(1.0, 5.0).expand(3, 2, 1, 4)
    pred = truth * torch.tensor([1.1, 1.2, 1.4]).reshape(3, 1, 1, 1)  # sims 10 %, 20 %, 40 % off
    m = rollout_metrics(pred, truth)
    assert m["per_sim"]["rel_l2"] == pytest.approx([0.1, 0.2, 0.4])
    assert m["per_sim"]["corr_time"] == [2.0, 2.0, 2.0]  # scaled frames correlate perfectly: never below
    assert m["per_step_quantiles"]["rel_l2"]["q50"] == pytest.approx([0.2, 0.2])
    assert m["per_step_quantiles"]["rel_l2"]["q10"] == pytest.approx([0.1 + 0.2 * (0.2 - 0.1)] * 2)
    assert m["per_step_quantiles"]["rel_l2"]["q90"] == pytest.approx([0.2 + 0.8 * (0.4 - 0.2)] * 2)


def _drifting(steps=5):
    """A truth and a prediction whose correlation falls step by step: 1, then lower and lower."""
    g = torch.Generator().manual_seed(0)
    truth = torch.randn(1, steps, 1, 64, generator=g, dtype=torch.float64)
    noise = torch.randn(1, steps, 1, 64, generator=g, dtype=torch.float64)
    weight = torch.linspace(0.0, 2.0, steps, dtype=torch.float64).reshape(1, steps, 1, 1)
    return truth + weight * noise, truth


def test_the_correlation_threshold_reaches_the_correlation_time():
    prediction, truth = _drifting()
    corr = per_step_errors(prediction, truth)["corr"][0].tolist()
    by_hand = {t: next((k for k, c in enumerate(corr) if c < t), len(corr)) for t in (0.5, 0.8, 0.95)}
    assert len(set(by_hand.values())) == 3  # three thresholds, three different answers
    for threshold, steps in by_hand.items():
        assert rollout_metrics(prediction, truth, threshold)["corr_time"] == steps
    assert rollout_metrics(prediction, truth)["corr_time"] == by_hand[0.8]  # the default
    fields = [{"name": "u", "channels": 1, "dynamic": True}]
    assert field_rollout_metrics(prediction, truth, fields, 0.5)["u"]["corr_time"] == by_hand[0.5]
    assert field_rollout_metrics(prediction, truth, fields)["u"]["corr_time"] == by_hand[0.8]


def test_a_diverged_field_is_reported_as_null_and_without_its_curves():
    truth = torch.ones(1, 3, 2, 4, dtype=torch.float64)
    prediction = truth.clone()
    prediction[:, 1:, 1] = math.inf  # the second field blew up after one step
    fields = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "v", "channels": 1, "dynamic": True}]
    out = field_rollout_metrics(prediction, truth, fields)
    assert out["u"]["rel_l2"] == 0.0 and out["v"]["rel_l2"] is None and out["v"]["rmse"] is None
    assert out["v"]["per_step_rel_l2"] == [0.0, None, None]
    assert "per_step" not in out["u"] and out["u"]["num_steps"] == 3
    assert finite_or_none(math.inf) is None and finite_or_none(math.nan) is None and finite_or_none(2.5) == 2.5
