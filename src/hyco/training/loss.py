"""The one loss both trainers use: MSE over the observed values only, every sample weighing the same."""

from __future__ import annotations

import torch


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over samples of each sample's MSE over its observed values.

    `mask` (1 = observed, 0 = not) broadcasts against `prediction`, e.g. `[B, R, 1, *space]` for a
    `[B, R, C, *space]` rollout; dimension 0 is the sample. Each sample's squared errors are summed over
    its observed values and divided by how many there are (mask entries times the channels they cover),
    so a sparse mask does not shrink the loss and a mask shared by the channels does not inflate it.
    Samples then count equally, whatever their coverage: a complete generated window weighs as much as a
    real window observed on a quarter of the domain (HYCO's count-based alpha relies on this). Samples
    without any observed value are left out. Mask values other than 0/1 act as weights on top
    (`trainer.hybrid.generated_weight`). Without a mask this is the plain MSE.
    """
    diff2 = (prediction - target) ** 2
    if mask is None:
        return diff2.mean()
    weights = torch.broadcast_to(mask.to(dtype=diff2.dtype), diff2.shape)
    dims = tuple(range(1, diff2.dim()))
    observed = (weights != 0).sum(dim=dims).to(diff2.dtype)
    per_sample = (diff2 * weights).sum(dim=dims) / observed.clamp_min(1.0)
    has_data = (observed > 0).to(diff2.dtype)
    return (per_sample * has_data).sum() / has_data.sum().clamp_min(1.0)
