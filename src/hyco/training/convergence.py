"""When fitting the coefficients further finds nothing the data can resolve: the noise floor of a loss and the
early-stop rule of `trainer.physical.early_stop`.

The noise floor is the standard error of the loss: each term's mean over its values has the standard error
sqrt(var / n) of the squared errors it averages, and the weighted loss adds them in quadrature. On noisy data
the loss levels off at the noise variance and its changes sink below this floor: further iterations then fit
the noise, not the coefficients.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

import torch

from hyco.data.batch import Batch
from hyco.utils.distributed import all_gather_objects

log = logging.getLogger(__name__)

Moments = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # per term: sums of squared errors, of their squares, counts


def noise_floor(moments: Moments | None, weights: Sequence[float]) -> float:
    """The standard error of the weighted loss whose per-term `moments` these are (0 before any)."""
    if moments is None:
        return 0.0
    sums, fourth, counts = (t.double().cpu() for t in moments)
    n = counts.clamp_min(1.0)
    mean = sums / n
    variance = (fourth / n - mean**2).clamp_min(0.0)
    w = torch.tensor(list(weights), dtype=torch.float64)
    present = (counts > 0).double()
    return float(torch.sqrt((present * w**2 * variance / n).sum()))


class EarlyStop:
    """The rule of `trainer.physical.early_stop`: an epoch whose loss fell by less than the noise floor (at the
    epoch's end) found nothing the data can resolve, and another epoch on the same objective from the same
    coefficients would not either. The rest of the `train` call is skipped, and a later epoch is skipped as long
    as its objective (the same windows, loss weights and coefficients) is that one: e.g. the next HYCO cycle's,
    when every value is observed (no partner windows)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.converged = False  # the last epoch ended at the noise floor
        self._on: tuple | None = None  # (objective's fingerprint, loss weights, coefficient versions) then

    def check(self, start: float, loss: float, floor: float, *, fingerprint: str | None, weights: Sequence[float],
              raw: dict[str, torch.Tensor], epoch: int) -> None:
        """Judge an epoch that went from loss `start` to `loss` with the noise floor `floor` at its end."""
        improvement = start - loss
        self._on = None
        if not self.enabled or not math.isfinite(improvement):
            return
        if improvement < floor:
            self.converged = True
            self._on = (fingerprint, tuple(weights), _versions(raw))
            log.info("physical epoch %d: the loss fell by %.3g, less than its noise floor %.3g (standard error of "
                     "the loss over the observed values): no further epochs on this objective "
                     "(trainer.physical.early_stop)", epoch, improvement, floor)

    def skips(self, fingerprint: str | None, weights: Sequence[float], raw: dict[str, torch.Tensor]) -> bool:
        """Whether this objective is the one the coefficients, unchanged since, converged on."""
        if self._on is None or fingerprint is None:
            return False
        then, then_weights, tensors = self._on
        return then == fingerprint and then_weights == tuple(weights) and _unchanged(tensors, raw)

    def state_dict(self, raw: dict[str, torch.Tensor]) -> list | None:
        """The objective the coefficients as they are now have converged on, if any (for a checkpoint)."""
        if self._on is None or not _unchanged(self._on[2], raw):
            return None
        return list(self._on[:2])

    def load_state_dict(self, state: list | None, raw: dict[str, torch.Tensor]) -> None:
        self._on = None if state is None else (state[0], tuple(state[1]), _versions(raw))


def fingerprint(groups: Sequence[Batch]) -> str:
    """What an objective is, whatever order its windows come in and however the ranks share them: a hash of,
    per rollout length, the sorted per-window sums of every tensor (inputs, targets, mask, term) and of the
    targets' squares, over the windows of every rank (one gather)."""
    digest = hashlib.sha256()
    mine = {}
    for group in groups:
        group = group.with_defaults().expanded()  # one form on every rank, whatever its windows
        columns = [t.detach().reshape(group.size, -1).double().sum(dim=1) for t in group.tensors()]
        columns[2] = columns[2] / group.mask.shape[2]  # a mask shared by the channels or one per channel alike
        if group.has_sensors:  # what the sensors read, and where
            columns += [t.detach().reshape(group.size, -1).double().sum(dim=1)
                        for t in (group.sensor_values, group.sensor_weight, group.sensor_index)]
        columns.append(group.targets.detach().reshape(group.size, -1).double().square().sum(dim=1))
        mine[repr(tuple(group.targets.shape[1:]))] = torch.stack(columns, dim=1).cpu()
    pooled: dict[str, list[torch.Tensor]] = {}
    for rank_groups in all_gather_objects(mine):  # the objective of all ranks
        for shape, rows in rank_groups.items():
            pooled.setdefault(shape, []).append(rows)
    parts = []
    for shape, pieces in pooled.items():
        rows = torch.cat(pieces)
        order = sorted(range(rows.shape[0]), key=lambda i: tuple(rows[i].tolist()))
        parts.append(shape.encode() + rows[order].numpy().tobytes())
    for part in sorted(parts):
        digest.update(part)
    return digest.hexdigest()


def _versions(raw: dict[str, torch.Tensor]) -> tuple:
    """Each coefficient tensor with its count of in-place writes: the same tensor, the same count = unchanged."""
    return tuple((name, t, t._version) for name, t in sorted(raw.items()))


def _unchanged(tensors: Any, raw: dict[str, torch.Tensor]) -> bool:
    same = [(n, t, v) for n, t, v in tensors if raw.get(n) is t and t._version == v]
    return len(same) == len(raw) == len(tensors)
