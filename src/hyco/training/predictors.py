"""The two models as frozen predictors `(states [B, C, *s], steps) -> frames [B, steps, C, *s]`.

HYCO's generated windows and the completion of partly observed input states both need "the model as it
is now", reproducible later (on-the-fly storage makes chunks again after the model has trained further):
a predictor is a snapshot — the physical model with a copy of its coefficients, or a copy of the network.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence

import torch

Predictor = Callable[[torch.Tensor, int], torch.Tensor]


def physical_predictor(model, coefficients: dict[str, torch.Tensor]) -> Predictor:
    coefficients = {k: v.detach().clone() for k, v in coefficients.items()}

    def predict(states: torch.Tensor, steps: int) -> torch.Tensor:
        with torch.no_grad():
            return model.rollout(states, coefficients, steps)
    return predict


def network_predictor(network: torch.nn.Module, device: torch.device | None = None) -> Predictor:
    frozen = copy.deepcopy(network).eval()
    parameter = next(frozen.parameters(), None)
    device = device or (parameter.device if parameter is not None else torch.device("cpu"))
    dtype = parameter.dtype if parameter is not None else torch.float32

    def predict(states: torch.Tensor, steps: int) -> torch.Tensor:
        with torch.no_grad():
            return frozen.rollout(states.to(device, dtype), steps)
    return predict


def blend(predictors: Sequence[Predictor], weights: Sequence[float]) -> Predictor:
    """The weighted mean of several predictors, one step at a time (an ensemble forecast); predictors with
    a negligible weight are not run."""
    total = float(sum(weights))
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"blend weights must have a positive finite sum, got {list(weights)}")
    kept = [(p, w / total) for p, w in zip(predictors, weights) if w / total > 1e-6]
    if len(kept) == 1:
        return kept[0][0]

    def predict(states: torch.Tensor, steps: int) -> torch.Tensor:
        frames, state = [], states
        for _ in range(steps):
            nxt = sum(w * p(state, 1)[:, 0].to(states.device, states.dtype) for p, w in kept)
            frames.append(nxt)
            state = nxt
        return torch.stack(frames, dim=1)
    return predict


def one_step(predictor: Predictor) -> Callable[[torch.Tensor], torch.Tensor]:
    """`state -> next state` on the state's device (what hyco.data.completion steps with)."""
    return lambda state: predictor(state, 1)[:, 0].to(state.device)
