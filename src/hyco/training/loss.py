"""HYCO's loss of predicted frames against a Batch, what both trainers minimise: `batch_sums` gives each term's
summed squared errors and value counts, `weighted_loss` weighs the terms' means (the physical trainer pools
the sums of several groups of windows first, the synthetic trainer the counts of every rank).

For each model, HYCO's loss has two terms (arXiv 2509.14123, with hyco's normalisation):

    loss = data_weight * L_data + interaction_weight * L_int

    L_data = sum_{observed values v of real windows}    (prediction_v - observation_v)^2 / #observed values
    L_int  = sum_{values v in the interaction region}   (prediction_v - partner_v)^2     / #values in the region

Each term is the mean over its own values, pooled over windows, rollout steps and the dynamic channels:
a sparse mask does not shrink `L_data`, the number of real windows does not change `L_int`, and a mask
shared by the channels counts once per channel. A window belongs to one term (`Batch.term`: DATA or
INTERACTION); without terms every window is DATA, and the loss is the plain observed MSE. A term
without any value in a batch contributes nothing. Mask values other than 0/1 act as weights on the
values they cover (they are still counted once). Point sensors (`Batch.sensor_*`, hyco.data.sensors) add their
samples to the DATA term: the predicted frames read at each sensor by linear interpolation, against what the
sensor read; each (sensor, frame, dynamic channel) counts as one observed value.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hyco.data.batch import NUM_TERMS, Batch
from hyco.data.sensors import sample

LossWeights = tuple[float, float]  # (data_weight, interaction_weight)


def term_sums(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
              terms: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per term, the masked sum of squared errors and the number of values it covers: two `[NUM_TERMS]`
    tensors. `prediction`/`target` `[B, ...]`; `mask` broadcasts against them; `terms` `[B]`."""
    diff2 = (prediction - target) ** 2
    dims = tuple(range(1, diff2.dim()))
    if mask is None:
        sums = diff2.sum(dim=dims)
        counts = torch.full_like(sums, float(diff2[0].numel()) if diff2.shape[0] else 0.0)
    else:
        weights = mask.to(dtype=diff2.dtype)
        sums = (diff2 * weights).sum(dim=dims)
        # how many values each sample has observed: mask entries times the channels they broadcast over
        spread = diff2[0].numel() / max(1, weights[0].numel()) if weights.shape[0] == diff2.shape[0] else None
        if spread is not None and float(spread).is_integer():
            counts = (weights != 0).sum(dim=tuple(range(1, weights.dim()))).to(diff2.dtype) * spread
        else:
            counts = torch.broadcast_to(weights != 0, diff2.shape).sum(dim=dims).to(diff2.dtype)
    if terms is None:
        zeros = sums.new_zeros(())
        return torch.stack([sums.sum(), zeros]), torch.stack([counts.sum(), zeros.detach()])
    onehot = torch.nn.functional.one_hot(terms.to(sums.device).long(), NUM_TERMS).to(sums.dtype)  # [B, terms]
    return sums @ onehot, counts @ onehot


def weighted_loss(sums: torch.Tensor, counts: torch.Tensor, weights: Sequence[float] | None = None) -> torch.Tensor:
    """sum_k weight_k * sums_k / counts_k over the terms with values (weights default to 1 each)."""
    w = sums.new_tensor(list(weights) if weights is not None else [1.0] * NUM_TERMS)
    present = counts > 0
    means = torch.where(present, sums / counts.clamp_min(1.0), torch.zeros_like(sums))
    return (w * means).sum()


def batch_sums(frames: torch.Tensor, batch: Batch, dynamic: torch.Tensor, *, fourth_powers: bool = False
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """`term_sums` of predicted `frames` `[B, S, C, *s]` against the first S target frames of `batch`, on the
    `dynamic` channels (indices, a long tensor on the frames' device). With `fourth_powers`, the sums of the
    squared errors' squares instead (the spread of the loss, for its standard error)."""
    steps = frames.shape[1]
    mask = batch.dynamic_mask(dynamic)
    if mask is not None and mask.shape[1] > 1:
        mask = mask[:, :steps]
    prediction, target = frames.index_select(2, dynamic), batch.targets[:, :steps].index_select(2, dynamic)
    if fourth_powers:
        prediction, target = (prediction - target) ** 2, torch.zeros_like(target)
    sums, counts = term_sums(prediction, target, mask, batch.term)
    if batch.has_sensors:
        more = sensor_sums(frames, batch, dynamic, fourth_powers=fourth_powers)
        sums, counts = sums + more[0], counts + more[1]
    return sums, counts


def sensor_samples(frames: torch.Tensor, batch: Batch, dynamic: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Predicted `frames` `[B, S, C, *s]` read at the sensors of the first S target frames of `batch`, on the
    `dynamic` channels: (samples `[B, S, Cd, K]`, what the sensors read there, which sensors read `[B, S, 1, K]`)."""
    steps = frames.shape[1]
    index, weight = batch.sensor_index[:, :steps], batch.sensor_weight[:, :steps]
    predicted = sample(frames.index_select(2, dynamic), index, weight)
    observed = batch.sensor_values[:, :steps].index_select(2, dynamic).to(predicted.dtype)
    active = (weight.sum(-1) > 0)[:, :, None].to(predicted.dtype)
    return predicted, observed, active


def sensor_sums(frames: torch.Tensor, batch: Batch, dynamic: torch.Tensor, *, fourth_powers: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """`term_sums` over the sensor samples of `batch` (every dynamic channel of an active sensor counts once)."""
    predicted, observed, active = sensor_samples(frames, batch, dynamic)
    if fourth_powers:
        predicted, observed = (predicted - observed) ** 2, torch.zeros_like(observed)
    return term_sums(predicted, observed, active, batch.term)
