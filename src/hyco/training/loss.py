"""The one loss both trainers use: MSE over the observed values only."""

from __future__ import annotations

import torch


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error over observed values.

    `mask` (1 = observed) broadcasts against `prediction`, typically `[B, R, 1, *space]` for a
    `[B, R, C, *space]` rollout. The sum is divided by the number of observed VALUES (mask entries
    times the channels they cover), so a sparse mask does not shrink the loss and a mask shared by
    all channels does not inflate it by the channel count. Without a mask this is the plain MSE.
    """
    diff2 = (prediction - target) ** 2
    if mask is None:
        return diff2.mean()
    mask = mask.to(dtype=diff2.dtype)
    weights = torch.broadcast_to(mask, diff2.shape)
    observed = weights.sum()
    return (diff2 * weights).sum() / observed.clamp_min(1.0)
