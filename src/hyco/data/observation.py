"""What the trainers may see of the REAL data: a spatial mask, a temporal mask, additive noise.

HYCO exists for sparse, noisy observations, and this module is where the data become sparse and noisy:

- **Spatial masks** (the same for every frame, 1 = observed): ``full``; ``box`` (the cells whose centres
  lie in ``[box_lower, box_upper)``, fractions of the domain, one entry per axis, **x first** like the
  domain bounds); ``centre`` (a centred box covering ``centre_fraction`` of the domain's volume, the same
  fraction of cells along every axis); ``random_points`` (``point_fraction`` of the grid points, drawn once
  from ``observation.seed``).
- **Temporal masks** over the stored frames: ``all``; ``every_k`` (frames 0, k, 2k, ...); ``first_last``.
- **Noise**: Gaussian, added to the dynamic channels with a standard deviation of ``noise_level`` times
  the channel's standard deviation over the train split (stored in the dataset file). Static channels
  (known inputs such as a prescribed velocity) stay clean. The noise of a frame is drawn from a seed
  derived from (``observation.seed``, split, simulation), so it is the same in every epoch, in every
  window that contains the frame, and whether or not the simulation was evicted from a cache meanwhile.

Masks and noise apply to real data only; generated (augmentation) data are complete fields.

Inputs versus targets. Each window's mask ``[R, 1, *space]`` covers its TARGET frames only (spatial mask
times the temporal mask of frames t+1..t+R). The INPUT of a window is the full noisy state at t: both
models need a complete state to take a step, and filling unobserved regions of the input (data
assimilation) is a different problem than the one HYCO addresses. Only the loss sees the mask, which is
what makes the comparison physical vs synthetic vs HYCO fair: all three start from the same states and
are judged on the same observed values, and what the network learns about unobserved regions comes
from the physics model's predictions (the interaction term), not from hidden ground truth.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from hyco.config.errors import ConfigError
from hyco.config.schema import ObservationConfig

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def _generator(*key: int) -> torch.Generator:
    seed = np.random.SeedSequence(entropy=int(key[0]), spawn_key=tuple(int(k) for k in key[1:])).generate_state(2)
    return torch.Generator().manual_seed(int(seed[0]) << 32 | int(seed[1]))


def spatial_mask(config: ObservationConfig, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Float32 mask [1, *space] (1 = observed), space in tensor order (x last)."""
    shape = tuple(int(n) for n in spatial_shape)
    ndim = len(shape)
    if config.spatial == "full":
        return torch.ones((1, *shape))
    if config.spatial == "box":
        if len(config.box_lower) != ndim:
            raise ConfigError("observation.box_lower", f"{ndim} entries (one per spatial axis, x first)",
                              list(config.box_lower))
        mask = torch.ones(shape)
        # config is x first; tensor axes are (..., y, x)
        for axis, (lo, hi) in enumerate(zip(reversed(config.box_lower), reversed(config.box_upper))):
            n = shape[axis]
            centres = (torch.arange(n) + 0.5) / n
            inside = ((centres >= lo) & (centres < hi)).float()
            mask = mask * inside.reshape([n if a == axis else 1 for a in range(ndim)])
        if mask.sum() == 0:
            raise ConfigError("observation.box_lower", "a box containing at least one grid cell centre",
                              [list(config.box_lower), list(config.box_upper)])
        return mask[None]
    if config.spatial == "centre":
        side = config.centre_fraction ** (1.0 / ndim)
        mask = torch.zeros(shape)
        index = []
        for n in shape:
            k = min(n, max(1, round(n * side)))
            start = (n - k) // 2
            index.append(slice(start, start + k))
        mask[tuple(index)] = 1.0
        return mask[None]
    if config.spatial == "random_points":
        total = math.prod(shape)
        count = min(total, max(1, round(config.point_fraction * total)))
        chosen = torch.randperm(total, generator=_generator(config.seed, 99))[:count]
        mask = torch.zeros(total)
        mask[chosen] = 1.0
        return mask.reshape(1, *shape)
    raise ConfigError("observation.spatial", "one of full, box, centre, random_points", config.spatial)


def temporal_mask(config: ObservationConfig, num_frames: int) -> torch.Tensor:
    """Bool [T]: which stored frames are observed."""
    frames = torch.arange(num_frames)
    if config.temporal == "all":
        return torch.ones(num_frames, dtype=torch.bool)
    if config.temporal == "every_k":
        return frames % config.every_k == 0
    if config.temporal == "first_last":
        return (frames == 0) | (frames == num_frames - 1)
    raise ConfigError("observation.temporal", "one of all, every_k, first_last", config.temporal)


class Observation:
    """The observation operator of one dataset: masks for windows and noise for whole simulations."""

    def __init__(self, config: ObservationConfig, spatial_shape: Sequence[int], num_frames: int,
                 channel_std: torch.Tensor, dynamic_channels: Sequence[int]):
        self.config = config
        self.spatial = spatial_mask(config, spatial_shape)
        self.temporal = temporal_mask(config, num_frames)
        self.has_mask = config.spatial != "full" or config.temporal != "all"
        sigma = torch.zeros(len(channel_std))
        dynamic = torch.as_tensor(list(dynamic_channels), dtype=torch.long)
        sigma[dynamic] = config.noise_level * channel_std.float()[dynamic]
        self.noise_std = sigma  # [C]
        self._ndim = len(spatial_shape)

    @classmethod
    def from_store(cls, config: ObservationConfig, store) -> Observation:
        return cls(config, store.spatial_shape, store.num_frames, store.channel_std, store.dynamic_channels)

    @property
    def has_noise(self) -> bool:
        return bool(self.noise_std.gt(0).any())

    @property
    def spatial_fraction(self) -> float:
        return float(self.spatial.mean())

    @property
    def temporal_fraction(self) -> float:
        return float(self.temporal.float().mean())

    def window_masks(self, starts: torch.Tensor, steps: int) -> torch.Tensor:
        """Masks [B, R, 1, *space] of the target frames t+1..t+R of windows starting at `starts` [B].

        Read-only: when every frame is observed the result is a broadcast view of the spatial mask
        (no copy per batch)."""
        if self.config.temporal == "all":
            return self.spatial.expand(starts.shape[0], steps, *self.spatial.shape)
        frames = starts[:, None] + 1 + torch.arange(steps)
        observed = self.temporal[frames].to(self.spatial.dtype)  # [B, R]
        return observed.reshape(*observed.shape, 1, *([1] * self._ndim)) * self.spatial

    def add_noise_(self, trajectory: torch.Tensor, split: str, index: int) -> torch.Tensor:
        """Add this simulation's noise to `trajectory` [T, C, *space] in place (and return it)."""
        if not self.has_noise:
            return trajectory
        noise = torch.randn(trajectory.shape, generator=_generator(self.config.seed, SPLIT_IDS[split], index))
        scale = self.noise_std.reshape(1, -1, *([1] * self._ndim))
        trajectory += (noise * scale).to(trajectory.dtype)
        return trajectory

    def describe(self) -> str:
        parts = [f"spatial={self.config.spatial} ({self.spatial_fraction:.1%} of the grid)",
                 f"temporal={self.config.temporal} ({self.temporal_fraction:.1%} of the frames)"]
        if self.has_noise:
            parts.append(f"noise={self.config.noise_level:g} x channel std")
        return ", ".join(parts)
