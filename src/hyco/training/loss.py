"""The one loss both trainers use: where the physical loss (and the network's) comes from.

For each model, HYCO's loss has two terms (arXiv 2509.14123, with hyco's normalisation):

    loss = data_weight * L_data + interaction_weight * L_int

    L_data = sum_{observed values v of real windows}    (prediction_v - observation_v)^2 / #observed values
    L_int  = sum_{values v in the interaction region}   (prediction_v - partner_v)^2     / #values in the region

Each term is the mean over its own values, pooled over windows, rollout steps and the dynamic channels:
a sparse mask does not shrink `L_data`, the number of real windows does not change `L_int`, and a mask
shared by the channels counts once per channel. A window belongs to one term (`terms`, 0 = DATA,
1 = INTERACTION); without terms every window is DATA, and the loss is the plain observed MSE. A term
without any value in a batch contributes nothing. Mask values other than 0/1 act as weights on the
values they cover (they are still counted once).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

DATA = 0
INTERACTION = 1
NUM_TERMS = 2


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


def hyco_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
              terms: torch.Tensor | None = None, weights: Sequence[float] | None = None) -> torch.Tensor:
    """`data_weight * L_data + interaction_weight * L_int` (see the module docstring); `weights` =
    (data_weight, interaction_weight), default (1, 1)."""
    sums, counts = term_sums(prediction, target, mask, terms)
    return weighted_loss(sums, counts, weights)


def observed_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over the observed values (mask != 0), pooled over samples and everything else."""
    return hyco_loss(prediction, target, mask)


def dynamic_mask(mask: torch.Tensor | None, dynamic: torch.Tensor, channel_dim: int = 2) -> torch.Tensor | None:
    """A mask with one entry per channel restricted to the dynamic channels (a channel-shared mask as is)."""
    if mask is None or mask.shape[channel_dim] == 1:
        return mask
    return mask.index_select(channel_dim, dynamic.to(mask.device))


def with_terms(batch: tuple[torch.Tensor, ...], term: int = DATA) -> tuple[torch.Tensor, ...]:
    """`batch` as a 4-tuple `(inputs, targets, masks, terms)`: an all-ones mask where it has none, and
    every window in loss term `term` where it carries no terms."""
    inputs, targets = batch[0], batch[1]
    mask = batch[2] if len(batch) > 2 else torch.ones_like(targets[:, :, :1])
    terms = batch[3] if len(batch) > 3 else torch.full((inputs.shape[0],), term, dtype=torch.long,
                                                        device=inputs.device)
    return inputs, targets, mask, terms
