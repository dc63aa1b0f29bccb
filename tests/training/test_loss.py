"""The loss both trainers use: two separately normalised terms, data over observed values, interaction over its
region, read from a Batch."""

import pytest
import torch

from hyco.data.batch import DATA, INTERACTION, Batch
from hyco.training.loss import batch_sums, term_sums, weighted_loss

CHANNELS = torch.arange(2)  # both channels dynamic


def hyco_loss(pred, target, mask=None, terms=None, weights=None):
    """The loss of predicted frames `pred` against a Batch of `target`s (inputs are not read by the loss)."""
    batch = Batch(torch.zeros_like(target[:, 0]), target, mask, terms)
    return weighted_loss(*batch_sums(pred, batch, CHANNELS), weights)


def _batch(num_real, num_generated, observed_fraction_rows=2):
    """Real windows with error 1 on observed values (and 5 elsewhere), generated ones with error 3."""
    b = num_real + num_generated
    pred = torch.zeros(b, 3, 2, 4, 4)  # [B, R, C, y, x]
    target = torch.full_like(pred, 5.0)
    mask = torch.zeros(b, 3, 1, 4, 4)
    target[:num_real, ..., observed_fraction_rows:, :] = 1.0
    mask[:num_real, ..., observed_fraction_rows:, :] = 1.0
    target[num_real:] = 3.0
    mask[num_real:] = 1.0
    terms = torch.tensor([DATA] * num_real + [INTERACTION] * num_generated)
    return pred, target, mask, terms


def test_a_sparse_mask_does_not_shrink_the_data_term():
    for rows in (0, 2, 3):  # all, half, a quarter of the grid observed
        pred, target, mask, terms = _batch(4, 0, rows)
        assert hyco_loss(pred, target, mask).item() == pytest.approx(1.0)
    pred, target, _, _ = _batch(2, 0)
    assert hyco_loss(pred, target).item() == pytest.approx((25 + 1) / 2)  # no mask: everything counts


def test_interaction_term_does_not_depend_on_how_many_real_windows_there_are():
    for num_real in (1, 4, 16):
        pred, target, mask, terms = _batch(num_real, 3)
        sums, counts = term_sums(pred, target, mask, terms)
        assert (sums / counts).tolist() == pytest.approx([1.0, 9.0])
        assert hyco_loss(pred, target, mask, terms, (1.0, 0.5)).item() == pytest.approx(1.0 + 0.5 * 9.0)
        assert hyco_loss(pred, target, mask, terms, (0.0, 1.0)).item() == pytest.approx(9.0)


def test_a_term_without_values_contributes_nothing_and_channels_count_once_each():
    pred, target, mask, terms = _batch(3, 0)
    assert hyco_loss(pred, target, mask, terms, (1.0, 7.0)).item() == pytest.approx(1.0)
    sums, counts = term_sums(pred, target, mask, terms)
    assert counts.tolist() == [3 * 3 * 2 * 8, 0]  # windows x steps x channels x observed cells
    per_channel = mask.expand(-1, -1, 2, -1, -1).clone()
    per_channel[:, :, 1] = 0  # only channel 0 observed
    sums, counts = term_sums(pred, target, per_channel, terms)
    assert counts.tolist() == [3 * 3 * 8, 0] and (sums[0] / counts[0]).item() == pytest.approx(1.0)


def test_gradient_of_each_term_follows_its_weight():
    pred, target, mask, terms = _batch(2, 2)
    pred.requires_grad_(True)
    hyco_loss(pred, target, mask, terms, (0.0, 1.0)).backward()
    assert pred.grad[:2].abs().sum() == 0 and pred.grad[2:].abs().sum() > 0


def test_the_loss_reads_the_first_frames_and_the_dynamic_channels_only():
    """Frames of a shorter rollout meet the first targets; a static channel's error never counts."""
    pred, target, mask, terms = _batch(2, 0)
    target[:, :, 1] = 100.0  # channel 1 static: its error is not part of the loss
    target[:, 2:] = 100.0  # a third step the rollout does not reach
    batch = Batch(torch.zeros_like(target[:, 0]), target, mask, terms)
    assert weighted_loss(*batch_sums(pred[:, :2], batch, torch.tensor([0]))).item() == pytest.approx(1.0)
