"""Per-channel normalisation statistics of a training split.

The network sees inputs of unit scale and predicts outputs of unit scale whatever the physical units;
the statistics travel with the model (buffers of `Surrogate`), so a checkpoint is self-contained.
They are accumulated one simulation at a time (float64 sums), so a split of any size fits in memory.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# Below this a channel is treated as constant: dividing by its tiny std would blow up noise.
MIN_STD = 1e-6


class _Moments:
    """Running per-channel count, sum and sum of squares of `[N, C, *space]` blocks (optionally masked)."""

    def __init__(self, channels: int):
        self.count = torch.zeros(channels, dtype=torch.float64)
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sumsq = torch.zeros(channels, dtype=torch.float64)

    def add(self, x: torch.Tensor, known: torch.Tensor | None = None) -> None:
        flat = x.detach().to(torch.float64).transpose(0, 1).reshape(x.shape[1], -1)
        if known is None:
            self.count += flat.shape[1]
        else:
            weight = torch.broadcast_to(known, x.shape).transpose(0, 1).reshape(x.shape[1], -1).to(torch.float64)
            flat = flat * weight
            self.count += weight.sum(dim=1)
        self.sum += flat.sum(dim=1)
        self.sumsq += (flat * flat).sum(dim=1)

    def result(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Per-channel mean and std; a channel without any value gets mean 0 and std 1 (None: no channel
        has a value)."""
        seen = self.count > 0
        if not bool(seen.any()):
            return None
        count = self.count.clamp_min(1.0)
        mean = self.sum / count
        std = (self.sumsq / count - mean * mean).clamp_min(0.0).sqrt().clamp_min(MIN_STD)
        return torch.where(seen, mean, 0.0).float(), torch.where(seen, std, 1.0).float()


class StatsAccumulator:
    """Add trajectories `[T, C, *space]` one by one, then `result()`."""

    def __init__(self, num_channels: int, dynamic_channels: Sequence[int]):
        self.dynamic = list(dynamic_channels)
        self.frames = _Moments(num_channels)
        self.deltas = _Moments(len(self.dynamic))

    def add(self, trajectory: torch.Tensor, known: torch.Tensor | None = None) -> StatsAccumulator:
        """One trajectory `[T, C, *space]`; with `known` (bool, broadcastable to it) only its known values
        count (an increment needs both of its frames known)."""
        if trajectory.dim() < 3 or trajectory.shape[1] != self.frames.sum.numel():
            raise ValueError(f"trajectory: expected [T, {self.frames.sum.numel()}, *space], "
                             f"got shape {tuple(trajectory.shape)}")
        self.frames.add(trajectory, known)
        if trajectory.shape[0] > 1:
            both = None
            if known is not None:
                full = torch.broadcast_to(known, trajectory.shape)
                both = (full[1:] & full[:-1])[:, self.dynamic]
            self.deltas.add((trajectory[1:] - trajectory[:-1])[:, self.dynamic], both)
        return self

    def result(self) -> dict[str, torch.Tensor]:
        """`mean`, `std` per channel (all C: the input scale) and `delta_mean`, `delta_std` per DYNAMIC
        channel of the one-frame increments `x[t+1] - x[t]` (the output scale of a residual surrogate).
        Without any increment (single frames, or none observed) the increments are taken as zero-mean,
        unit-scale."""
        frames = self.frames.result()
        if frames is None:
            raise ValueError("normalisation statistics: no data was added")
        deltas = self.deltas.result() or (torch.zeros(len(self.dynamic)), torch.ones(len(self.dynamic)))
        return {"mean": frames[0], "std": frames[1], "delta_mean": deltas[0], "delta_std": deltas[1]}


def compute_stats(trajectories: torch.Tensor, dynamic_channels: Sequence[int]) -> dict[str, torch.Tensor]:
    """Statistics of trajectories `[N, T, C, *space]` (see `StatsAccumulator.result`)."""
    if trajectories.dim() < 4:
        raise ValueError(f"trajectories: expected [N, T, C, *space], got shape {tuple(trajectories.shape)}")
    acc = StatsAccumulator(trajectories.shape[2], dynamic_channels)
    for trajectory in trajectories:
        acc.add(trajectory)
    return acc.result()


def store_stats(store, split: str = "train") -> dict[str, torch.Tensor]:
    """Statistics of one split of a `TrajectoryStore`, read one simulation at a time (bounded memory)."""
    acc = StatsAccumulator(store.num_channels, store.dynamic_channels)
    for index in range(store.num_sims(split)):
        acc.add(torch.from_numpy(store.read_simulation(split, index)))
    return acc.result()


def observed_stats(windows) -> dict[str, torch.Tensor]:
    """Statistics of what an observer of a WindowDataset's split has (noisy values; with hidden states only
    the known ones), read one simulation at a time: a model's normalisation never sees the hidden truth."""
    acc = StatsAccumulator(windows.num_channels, windows.dynamic_channels)
    observation = windows.observation
    known = observation.known if observation is not None else None
    for index in range(windows.num_sims):
        acc.add(windows.observed_trajectories([index])[0], known)
        if observation is not None and observation.sensors:
            _add_sensor_increments(acc, observation.sensor_set, windows.split, index)
    return acc.result()


def _add_sensor_increments(acc: StatsAccumulator, sensors, split: str, index: int) -> None:
    """Point sensors know no grid value after frame 0, so no grid increment: a sensor that stays where it is
    between two observed frames measures the increment at its point instead (moving sensors measure none)."""
    readings = sensors.readings(split, index)[:, acc.dynamic]  # [T, Cd, K]
    stencil_index, weight = sensors.stencil(split, index)
    stays = (stencil_index[1:] == stencil_index[:-1]).all(-1) & (weight[1:] == weight[:-1]).all(-1) & \
        (weight[1:].sum(-1) > 0) & (weight[:-1].sum(-1) > 0)  # [T-1, K]
    acc.deltas.add(readings[1:] - readings[:-1], stays[:, None])


def identity_stats(num_channels: int, num_dynamic: int) -> dict[str, torch.Tensor]:
    """No normalisation (used before statistics are known, e.g. when a checkpoint will provide them)."""
    return {"mean": torch.zeros(num_channels), "std": torch.ones(num_channels),
            "delta_mean": torch.zeros(num_dynamic), "delta_std": torch.ones(num_dynamic)}
