"""The typed Batch: its tuple form, selection, defaults and joining (the mask and term rules by hand)."""

import pytest
import torch

from hyco.data.batch import DATA, INTERACTION, Batch


def windows(count: int, channels: int = 2, steps: int = 3, start: float = 0.0) -> Batch:
    """`count` windows on a 4-cell line whose values say which window and step they are."""
    inputs = start + torch.arange(count, dtype=torch.float32)[:, None, None].expand(count, channels, 4).clone()
    targets = inputs[:, None] + torch.arange(1, steps + 1, dtype=torch.float32)[None, :, None, None]
    return Batch(inputs, targets)


def test_the_tuple_form_round_trips_and_nothing_else_is_a_batch():
    batch = windows(3)
    mask = torch.ones(3, 3, 1, 4)
    full = Batch(batch.inputs, batch.targets, mask, torch.tensor([DATA, INTERACTION, DATA]))
    for original in (batch, full):
        again = Batch.of(original.tensors())
        assert [t is u for t, u in zip(again.tensors(), original.tensors())] == [True] * len(original.tensors())
    assert Batch.of(full) is full
    assert len(Batch(batch.inputs, batch.targets, term=full.term).tensors()) == 4  # a term gets a mask of ones
    with pytest.raises(TypeError, match="a batch is a hyco.data.batch.Batch or a tuple"):
        Batch.of((batch.inputs,))
    with pytest.raises(TypeError, match="got dict"):
        Batch.of({"inputs": batch.inputs})
    assert (batch.size, batch.steps) == (3, 3)


def test_trajectories_start_from_frame_zero():
    trajectories = torch.arange(2 * 5 * 1 * 3, dtype=torch.float32).reshape(2, 5, 1, 3)
    batch = Batch.from_trajectories(trajectories)
    assert torch.equal(batch.inputs, trajectories[:, 0]) and torch.equal(batch.targets, trajectories[:, 1:])
    assert batch.mask is None and batch.steps == 4


def test_rows_keep_a_mask_shared_by_every_window():
    batch = windows(4)
    shared = Batch(batch.inputs, batch.targets, torch.ones(1, 3, 1, 4))
    picked = shared.rows(torch.tensor([3, 1]))
    assert picked.inputs[:, 0, 0].tolist() == [3.0, 1.0] and picked.mask.shape == (1, 3, 1, 4)
    first = shared.head(2)  # the shared mask is expanded: every tensor has the same rows
    assert first.size == 2 and first.mask.shape == (2, 3, 1, 4)


def test_defaults_make_mask_and_term_explicit_and_keep_what_is_there():
    batch = windows(2)
    complete = batch.with_defaults(INTERACTION)
    assert complete.mask.shape == (2, 3, 1, 4) and bool(complete.mask.all())
    assert complete.term.tolist() == [INTERACTION, INTERACTION]
    mask = torch.zeros(2, 3, 2, 4)
    kept = Batch(batch.inputs, batch.targets, mask, torch.tensor([DATA, INTERACTION])).with_defaults(INTERACTION)
    assert kept.mask is mask and kept.term.tolist() == [DATA, INTERACTION]


def test_the_dynamic_mask_selects_channels_of_a_per_channel_mask_only():
    per_channel = torch.stack([torch.zeros(3, 4), torch.ones(3, 4), torch.full((3, 4), 2.0)], dim=1)[None]
    batch = Batch(torch.zeros(1, 3, 4), torch.zeros(1, 3, 3, 4), per_channel)
    assert batch.dynamic_mask(torch.tensor([2, 0]))[0, :, 0].tolist() == [[2.0] * 4] * 3
    shared = Batch(batch.inputs, batch.targets, torch.ones(1, 3, 1, 4))
    assert shared.dynamic_mask(torch.tensor([2])) is shared.mask
    assert Batch(batch.inputs, batch.targets).dynamic_mask(torch.tensor([0])) is None


def test_cat_joins_alike_batches_as_they_are_and_completes_mixed_ones():
    plain = Batch.cat([windows(2), windows(1, start=10.0)])
    assert plain.inputs[:, 0, 0].tolist() == [0.0, 1.0, 10.0] and plain.mask is None and plain.term is None
    generated = windows(2, start=20.0)
    region = torch.zeros(2, 3, 2, 4)  # per channel: channel 1 only
    region[:, :, 1] = 1.0
    mixed = Batch.cat([windows(1), Batch(generated.inputs, generated.targets, region,
                                         torch.full((2,), INTERACTION))])
    assert mixed.term.tolist() == [DATA, INTERACTION, INTERACTION]
    assert mixed.mask.shape == (3, 3, 2, 4)  # the 1-channel default mask widened to both channels
    assert mixed.mask[0].sum().item() == 3 * 2 * 4 and mixed.mask[1:].sum().item() == 2 * 3 * 4


def test_placed_puts_each_part_at_its_rows():
    real = windows(2).with_defaults(DATA)
    generated = windows(2, start=7.0)
    region = torch.zeros(2, 3, 2, 4, dtype=torch.bool)
    region[1] = True
    partner = Batch(generated.inputs, generated.targets, region, torch.full((2,), INTERACTION))
    joined = Batch.placed([(torch.tensor([0, 3]), real), (torch.tensor([2, 1]), partner)], 4)
    assert joined.inputs[:, 0, 0].tolist() == [0.0, 8.0, 7.0, 1.0]
    assert joined.term.tolist() == [DATA, INTERACTION, INTERACTION, DATA]
    assert joined.mask.dtype == real.mask.dtype and joined.mask.shape == (4, 3, 2, 4)
    assert [joined.mask[i].sum().item() for i in range(4)] == [24.0, 24.0, 0.0, 24.0]


def test_moving_changes_the_dtype_of_values_not_of_terms():
    batch = windows(2).with_defaults().to("cpu", torch.float64)
    assert batch.inputs.dtype == batch.targets.dtype == batch.mask.dtype == torch.float64
    assert batch.term.dtype == torch.long


def test_a_tuple_of_five_is_refused_like_a_tuple_of_one():
    batch = windows(2)
    with pytest.raises(TypeError, match=r"got tuple of 5 items$"):
        Batch.of((batch.inputs, batch.targets, None, None, None))


def test_moving_to_a_device_moves_every_tensor_and_defaults_follow_the_inputs():
    """The meta device (shapes without storage) stands for an accelerator on a machine without one."""
    moved = windows(2).with_defaults().to("meta")
    assert [t.device.type for t in moved.tensors()] == ["meta"] * 4 and moved.term.dtype == torch.long
    assert moved.to("meta", torch.float64).inputs.dtype == torch.float64
    completed = windows(2).to("meta").with_defaults()  # a mask and terms made where the windows are
    assert completed.mask.device.type == completed.term.device.type == "meta"


def test_pinning_pins_every_tensor_the_batch_has(monkeypatch):
    """Page-locked memory needs an accelerator: the call each tensor gets is recorded instead."""
    pinned = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda t: pinned.append(tuple(t.shape)) or t.clone())
    batch = windows(2).with_defaults()
    out = batch.pin_memory()
    assert pinned == [tuple(t.shape) for t in batch.tensors()]
    assert all(torch.equal(a, b) for a, b in zip(out.tensors(), batch.tensors()))
    assert windows(2).pin_memory().mask is None


def test_cat_widens_one_channel_masks_next_to_per_channel_masks():
    """Both batches carry a mask and terms: only the masks' channel counts differ."""
    real = windows(1).with_defaults(DATA)  # mask [1, 3, 1, 4]
    generated = windows(2, start=20.0)
    region = torch.zeros(2, 3, 2, 4)  # per channel: channel 1 only
    region[:, :, 1] = 1.0
    joined = Batch.cat([real, Batch(generated.inputs, generated.targets, region, torch.full((2,), INTERACTION))])
    assert joined.mask.shape == (3, 3, 2, 4) and joined.term.tolist() == [DATA, INTERACTION, INTERACTION]
    assert joined.mask[0].sum().item() == 3 * 2 * 4 and joined.mask[1:].sum().item() == 2 * 3 * 4


def test_placed_keeps_a_missing_mask_missing_and_the_terms_after_it():
    first, second = windows(2), windows(1, start=5.0)
    plain = Batch.placed([(torch.tensor([0, 2]), first), (torch.tensor([1]), second)], 3)
    assert plain.inputs[:, 0, 0].tolist() == [0.0, 5.0, 1.0] and plain.mask is None and plain.term is None
    first = Batch(first.inputs, first.targets, term=torch.tensor([DATA, INTERACTION]))
    second = Batch(second.inputs, second.targets, term=torch.tensor([INTERACTION]))
    termed = Batch.placed([(torch.tensor([1, 0]), first), (torch.tensor([2]), second)], 3)
    assert termed.mask is None and termed.term.tolist() == [INTERACTION, DATA, INTERACTION]
    assert torch.equal(termed.targets[2], second.targets[0])
