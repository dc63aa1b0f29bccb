"""The loss both trainers use: two separately normalised terms, data over observed values, interaction over its
region, read from a Batch."""

import pytest
import torch

from hyco.data.batch import DATA, INTERACTION, Batch
from hyco.training.loss import batch_sums, term_sums, weighted_loss


def hyco_loss(pred, target, mask=None, terms=None, weights=None):
    """The loss of predicted frames `pred` against a Batch of `target`s (inputs are not read by the loss), every
    channel dynamic: what `hyco_loss` was before the Batch (issue 29), and `observed_mse` without terms."""
    batch = Batch(torch.zeros_like(target[:, 0]), target, mask, terms)
    return weighted_loss(*batch_sums(pred, batch, torch.arange(pred.shape[2])), weights)


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


def test_with_defaults_completes_masks_and_terms():
    inputs, targets = torch.zeros(3, 1, 4), torch.zeros(3, 2, 1, 4)
    completed = Batch(inputs, targets).with_defaults(INTERACTION)
    mask, terms = completed.mask, completed.term
    assert mask.shape == (3, 2, 1, 4) and bool(mask.all()) and terms.tolist() == [1, 1, 1]


def test_a_single_observed_value_is_its_own_mean():
    pred, target = torch.zeros(1, 1, 1, 4), torch.tensor([3.0, 9.0, 9.0, 9.0]).reshape(1, 1, 1, 4)
    mask = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 1, 4)
    assert hyco_loss(pred, target, mask).item() == 9.0  # one value: (0 - 3)^2 / 1
    sums, counts = term_sums(pred, target, mask, torch.tensor([INTERACTION]))
    assert counts.tolist() == [0.0, 1.0] and hyco_loss(pred, target, mask, torch.tensor([INTERACTION])).item() == 9.0


def test_a_mask_per_channel_is_cut_to_the_dynamic_channels():
    mask = torch.arange(2 * 3 * 3 * 4, dtype=torch.float32).reshape(2, 3, 3, 4)  # [B, R, C=3, x]
    inputs, targets = torch.zeros(2, 3, 4), torch.zeros(2, 3, 3, 4)

    def dynamic_mask(mask, dynamic):
        return Batch(inputs, targets, mask).dynamic_mask(dynamic)

    assert torch.equal(dynamic_mask(mask, torch.tensor([0, 2])), mask[:, :, [0, 2]])
    two = mask[:, :, :2]
    assert torch.equal(dynamic_mask(two, torch.tensor([1])), two[:, :, [1]])
    shared = mask[:, :, :1]
    assert dynamic_mask(shared, torch.tensor([0, 2])) is shared  # one channel: shared by all, kept as is
    assert dynamic_mask(None, torch.tensor([0])) is None


def test_with_defaults_keeps_what_a_batch_carries():
    inputs, targets = torch.zeros(3, 2, 4), torch.zeros(3, 5, 2, 4)  # 2 channels, 5 steps
    completed = Batch(inputs, targets).with_defaults()
    mask, terms = completed.mask, completed.term
    assert mask.shape == (3, 5, 1, 4) and terms.dtype == torch.long and terms.tolist() == [DATA] * 3
    given = torch.rand(3, 5, 1, 4)
    completed = Batch(inputs, targets, given).with_defaults(INTERACTION)
    assert completed.mask is given and completed.term.tolist() == [INTERACTION] * 3
    labels = torch.tensor([DATA, INTERACTION, DATA])
    completed = Batch(inputs, targets, given, labels).with_defaults(INTERACTION)
    assert completed.mask is given and completed.term is labels
    assert completed.inputs is inputs and completed.targets is targets


def test_counts_of_one_window_no_window_and_masks_of_other_shapes():
    """The value counts of every mask form a batch can carry, by hand: one window, none, a mask of one value per
    window (whole windows observed or not) and one mask shared by all windows."""
    pred, target = torch.zeros(3, 1, 2, 4), torch.ones(3, 1, 2, 4)  # [B=3, R=1, C=2, x=4], error 1 everywhere
    assert term_sums(pred[:1], target[:1])[1].tolist() == [8.0, 0.0]  # one window: 1 x 2 x 4 values
    sums, counts = term_sums(pred[:0], target[:0])
    assert sums.tolist() == [0.0, 0.0] and counts.tolist() == [0.0, 0.0]  # no window: nothing
    one = torch.ones(1, 1, 1, 4)
    assert term_sums(pred[:1], target[:1], one)[1].tolist() == [8.0, 0.0]
    per_window = torch.tensor([1.0, 0.0, 1.0]).reshape(3, 1, 1, 1)  # windows 0 and 2 observed in full
    assert term_sums(pred, 2 * target, per_window)[0].tolist() == [4.0 * 16, 0.0]
    assert term_sums(pred, target, per_window)[1].tolist() == [16.0, 0.0]
    shared = torch.tensor([1.0, 0.0, 0.0, 0.0]).reshape(1, 1, 1, 4)  # the same cell of every window
    assert term_sums(pred, target, shared)[1].tolist() == [3 * 2 * 1.0, 0.0]
    terms = torch.tensor([DATA, INTERACTION, INTERACTION])
    assert term_sums(pred, target, shared, terms)[1].tolist() == [2.0, 4.0]


def test_a_shorter_rollout_meets_the_mask_of_its_own_steps_on_the_dynamic_channels():
    """Frames of 1 step against windows of 2 with a mask per channel: the first step's mask of the dynamic channel
    alone decides which values count (by hand: cells 0 and 2, errors 1 and 3)."""
    targets = torch.zeros(1, 2, 2, 4)
    targets[0, 0, 0] = torch.tensor([1.0, 5.0, 3.0, 7.0])  # step 1, channel 0 (the dynamic one)
    targets[0, 0, 1] = 100.0  # channel 1 is static
    targets[0, 1] = 50.0  # step 2: the rollout does not reach it
    mask = torch.zeros(1, 2, 2, 4)
    mask[0, 0, 0, [0, 2]] = 1.0
    mask[0, 0, 1] = 1.0  # observed, but static
    mask[0, 1] = 1.0
    batch = Batch(torch.zeros(1, 2, 4), targets, mask, torch.tensor([DATA]))
    sums, counts = batch_sums(torch.zeros(1, 1, 2, 4), batch, torch.tensor([0]))
    assert sums.tolist() == [1.0 + 9.0, 0.0] and counts.tolist() == [2.0, 0.0]
