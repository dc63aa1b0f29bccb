"""Which state of a model is kept for evaluation: the one with the lowest observed validation loss (never the
hidden truth). Every run keeps its best model through this one class."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any


class BestKeeper:
    """The lowest observed-validation loss offered so far, the step (epoch or cycle) of the model kept for it,
    and the file that model is saved to (None: nothing is written).

    `within_noise`: a later model also replaces the kept one when its loss is higher by less than the loss's
    standard error (`val_loss_se`): a difference that is only noise goes to the more trained model. It is
    compared with the lowest loss seen, so small drifts cannot add up. Without it only a strictly lower loss
    replaces the kept model."""

    def __init__(self, path: str | Path | None = None, *, within_noise: bool = True):
        self.path = Path(path) if path is not None else None
        self.within_noise = within_noise
        self.loss = math.inf
        self.step: int | None = None

    def offer(self, result: dict[str, Any], step: int | None, save: Callable[[Path], Any]) -> bool:
        """Keep the model of `result` (a `validate()` result) when it is the best so far: `save(path)` writes it.
        Returns whether it was kept."""
        loss = float(result["val_loss"])
        if self.within_noise:
            better = loss <= self.loss + float(result.get("val_loss_se", 0.0))
        else:
            better = loss < self.loss
        self.loss = min(self.loss, loss)
        if better:
            self.step = step
            if self.path is not None:
                save(self.path)
        return better

    @property
    def finite_loss(self) -> float | None:
        """The lowest loss, None before any (for JSON summaries)."""
        return self.loss if math.isfinite(self.loss) else None

    def state_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        loss = state.get("loss")
        self.loss = math.inf if loss is None else float(loss)
        self.step = state.get("step")
