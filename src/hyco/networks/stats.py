"""Per-channel normalisation statistics of a training split.

The network sees inputs of unit scale and predicts outputs of unit scale whatever the physical units;
the statistics travel with the model (buffers of `Surrogate`), so a checkpoint is self-contained.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Below this a channel is treated as constant: dividing by its tiny std would blow up noise.
MIN_STD = 1e-6


def _channel_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std per channel of `[N, C, *space]` (accumulated in float64)."""
    x = x.detach().to(torch.float64)
    flat = x.transpose(0, 1).reshape(x.shape[1], -1)
    return flat.mean(dim=1), flat.std(dim=1, unbiased=False).clamp_min(MIN_STD)


def compute_stats(trajectories: torch.Tensor, dynamic_channels: Sequence[int]) -> dict[str, torch.Tensor]:
    """Statistics of trajectories `[N, T, C, *space]`.

    Returns float32 tensors: `mean`, `std` per channel (all C, for the input), and `delta_mean`,
    `delta_std` per DYNAMIC channel of the one-frame increments `x[t+1] - x[t]` (the output scale of
    a residual surrogate). With a single frame the increments are taken as zero-mean, unit-scale.
    """
    if trajectories.dim() < 4:
        raise ValueError(f"trajectories: expected [N, T, C, *space], got shape {tuple(trajectories.shape)}")
    n, t, c = trajectories.shape[:3]
    frames = trajectories.reshape(n * t, c, *trajectories.shape[3:])
    mean, std = _channel_moments(frames)
    dyn = list(dynamic_channels)
    if t > 1:
        delta = (trajectories[:, 1:] - trajectories[:, :-1])[:, :, dyn]
        delta_mean, delta_std = _channel_moments(delta.reshape(-1, len(dyn), *trajectories.shape[3:]))
    else:
        delta_mean, delta_std = torch.zeros(len(dyn)), torch.ones(len(dyn))
    return {"mean": mean.float(), "std": std.float(), "delta_mean": delta_mean.float(),
            "delta_std": delta_std.float()}


def identity_stats(num_channels: int, num_dynamic: int) -> dict[str, torch.Tensor]:
    """No normalisation (used before statistics are known, e.g. when a checkpoint will provide them)."""
    return {"mean": torch.zeros(num_channels), "std": torch.ones(num_channels),
            "delta_mean": torch.zeros(num_dynamic), "delta_std": torch.ones(num_dynamic)}
