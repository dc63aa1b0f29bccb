"""The one place where tests build batches and trainers for the behaviour tests of issue 36.

Batches are the typed `hyco.data.batch.Batch` (issue 29: inputs, targets, mask, term by name), and loss weights
reach a trainer as the argument of `train(source, epochs, weights)` (hyco.training.protocol); both were positional
tuples and a `loss_weights` attribute when these tests were written, and this file was the one edit. Tests call
these helpers instead of building batches or calling the trainers' protocol themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hyco.config.schema import HybridTrainerConfig, PhysicalTrainerConfig, SyntheticTrainerConfig
from hyco.data.batch import DATA, INTERACTION, Batch
from hyco.networks.surrogate import build_network
from hyco.training.hybrid import HybridTrainer
from hyco.training.physical import PhysicalTrainer
from hyco.training.synthetic import SyntheticTrainer

TINY_NET = {"name": "convnet", "width": 4, "depth": 1}


# ------------------------------------------------------------------------------------------------ batches
def data_batch(inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> Batch:
    """Real windows (the DATA term): `inputs [B, C, *s]`, `targets [B, R, C, *s]`, `mask` broadcastable to
    `[B, R, 1|C, *s]` (1 = observed) or None (everything observed)."""
    if mask is None:
        return Batch(inputs, targets)
    mask = mask.to(targets.dtype).expand(targets.shape[0], targets.shape[1], *mask.shape[2:])
    return Batch(inputs, targets, mask, torch.full((inputs.shape[0],), DATA, dtype=torch.long))


def partner_batch(inputs: torch.Tensor, predictions: torch.Tensor, region: torch.Tensor | None = None) -> Batch:
    """A partner's predictions (the INTERACTION term) over `region` (1 = where the partner is heard; None:
    everywhere)."""
    if region is None:
        region = torch.ones_like(predictions[:, :, :1])
    region = region.to(predictions.dtype).expand(predictions.shape[0], predictions.shape[1], *region.shape[2:])
    return Batch(inputs, predictions, region, torch.full((inputs.shape[0],), INTERACTION, dtype=torch.long))


def joined(*batches: Batch) -> Batch:
    """Several batches of one rollout length as one (every batch carries a mask and terms)."""
    return Batch.cat(batches)


def validation_data(inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> Batch:
    """What an observer has of a validation split: initial states, later frames, their mask (or None)."""
    return Batch(inputs, targets, mask)


def trajectories(model, sims: int, frames: int, coefficients: dict | None = None, seed: int = 0) -> torch.Tensor:
    """`[sims, frames, C, *s]`: frame 0 from the model's initial states, then its rollout with `coefficients`
    (default: the model's truth)."""
    state = model.initial_state(sims, seed)
    with torch.no_grad():
        rolled = model.rollout(state, coefficients or model.true_coefficients(), frames - 1)
    return torch.cat([state[:, None], rolled], dim=1)


def sliding_windows(traj: torch.Tensor, rollout: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every window of `rollout` steps of `traj [N, T, C, *s]`: (inputs [B, C, *s], targets [B, R, C, *s])."""
    starts = range(traj.shape[1] - rollout)
    return (torch.cat([traj[:, t] for t in starts]), torch.cat([traj[:, t + 1:t + 1 + rollout] for t in starts]))


class RealWindows:
    """Real windows held in memory, in the WindowDataset interface that HybridTrainer and the loaders read."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None):
        self.inputs, self.targets, self.mask = inputs, targets, mask
        self.rollout_steps = targets.shape[1]
        self.spatial_shape, self.num_channels = tuple(inputs.shape[2:]), inputs.shape[1]
        self.has_mask = mask is not None

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, indices) -> Batch:
        i = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if self.mask is None:
            return Batch(self.inputs[i], self.targets[i])
        return Batch(self.inputs[i], self.targets[i], self.mask.expand(len(self.inputs), *self.mask.shape[1:])[i])

    def __getitem__(self, index: int) -> Batch:
        return self.batch([int(index)])


# ------------------------------------------------------------------------------------------------ trainers
def physical_trainer(model, **config) -> PhysicalTrainer:
    return PhysicalTrainer(PhysicalTrainerConfig(**config), model, true_coefficients=model.true_coefficients())


def train_physical(trainer: PhysicalTrainer, batches: Sequence[Batch], epochs: int = 1,
                   weights: tuple[float, float] = (1.0, 1.0)) -> dict:
    """`epochs` epochs of `trainer` on `batches` with loss weights (data, interaction)."""
    return trainer.train(list(batches), epochs, tuple(weights))


def tiny_network(channels: int = 1, ndim: int = 1, seed: int = 0, dtype: torch.dtype = torch.float32):
    torch.manual_seed(seed)
    return build_network(dict(TINY_NET), channels, list(range(channels)), ndim).to(dtype)


def synthetic_trainer(network, **config) -> SyntheticTrainer:
    config = {"epochs": 1, "batch_size": 4, **config}
    return SyntheticTrainer(SyntheticTrainerConfig(**config), network, progress=False)


def hybrid_trainer(network_trainer: SyntheticTrainer, solver_trainer: PhysicalTrainer, tmp_path,
                   validation: Batch | None = None, **config) -> HybridTrainer:
    """A HybridTrainer over the two trainers; `config` are HybridTrainerConfig's keys."""
    return HybridTrainer(HybridTrainerConfig(**config), network_trainer, solver_trainer, cache_dir=tmp_path / "cache",
                         validation=validation, batch_size=4)
