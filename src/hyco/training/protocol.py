"""What every trainer offers, in the same words (the physical, the synthetic and the HYCO trainer):

- `train(source, epochs, weights)`: `epochs` more epochs on the `Batch`es of `source` (any re-iterable), with the
  loss weights `(data_weight, interaction_weight)` of hyco.training.loss; returns the last epoch's metrics and
  `history`. A trainer keeps its model, optimiser and counters between calls but no data, and is given its
  weights with each call: the HYCO trainer composes two trainers and hands each its data and weights.
- `validate(data=None)`: observed validation (hyco.training.validation) on `data`, or on the data given to
  `set_validation`;
- `state_dict()` / `load_state_dict(state, source)`: all a run needs to continue exactly; `save(path)` /
  `load(path)` the same through a checkpoint file;
- `resume()`: continue from the last checkpoint in the trainer's run directory, when there is one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from hyco.data.batch import Batch
from hyco.training import checkpoint as ckpt
from hyco.training.loss import LossWeights
from hyco.training.validation import validation_batch

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS: LossWeights = (1.0, 1.0)


class Trainer:
    """The shared part of the protocol (see the module docstring); subclasses train, validate and say what
    their state is. `last_checkpoint` names the file in `run_dir` that `resume` continues from."""

    last_checkpoint = "last.pt"
    run_dir: Path | None = None
    validation: Batch | None = None

    def train(self, source: Iterable, epochs: int, weights: LossWeights = DEFAULT_WEIGHTS) -> dict[str, Any]:
        raise NotImplementedError

    def validate(self, data: Batch | tuple | torch.Tensor | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any], source: str = "checkpoint") -> Any:
        raise NotImplementedError

    def spatial_ndim(self) -> int:
        """Spatial axes of the model's states (to read validation trajectories)."""
        raise NotImplementedError

    def set_validation(self, data: Batch | tuple | torch.Tensor | None) -> None:
        """The observed validation data `validate()` uses by default: what an observer of the validation split
        has, frame 0 of each simulation and the observed values of later frames (a Batch), or whole
        trajectories `[N, T, C, *space]` (all observed)."""
        self.validation = None if data is None else self._validation_batch(data)

    def _validation_batch(self, data: Batch | tuple | torch.Tensor | None) -> Batch:
        if data is None:
            if self.validation is None:
                raise ValueError(f"{type(self).__name__}.validate: no validation data (call set_validation)")
            return self.validation
        return validation_batch(data, self.spatial_ndim() if isinstance(data, torch.Tensor) else None)

    def save(self, path: str | Path | None = None) -> Path:
        """Write `state_dict()` atomically to `path` (default: the last checkpoint in `run_dir`)."""
        return ckpt.save_checkpoint(self.state_dict(), self._last_path() if path is None else path)

    def load(self, path: str | Path) -> Any:
        return self.load_state_dict(ckpt.load_checkpoint(path), source=str(path))

    def resume(self) -> bool:
        """Continue from the last checkpoint in `run_dir` if it exists; True when it did."""
        path = self._last_path() if self.run_dir is not None else None
        if path is None or not path.is_file():
            return False
        self.load(path)
        log.info("resumed %s from %s", type(self).__name__, path)
        return True

    def _last_path(self) -> Path:
        if self.run_dir is None:
            raise ValueError(f"{type(self).__name__}: no run_dir, so no default checkpoint path")
        return Path(self.run_dir) / self.last_checkpoint
