"""Learning-rate schedules as per-epoch factors, spanning the whole planned run.

`EpochSchedule` is a plain object with only numbers and strings in its `__dict__`, so
`LambdaLR.state_dict()` saves it completely and a resumed run continues the same curve.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "step", "none")


class EpochSchedule:
    """Factor on the base learning rate for epoch `e` (0-based) of a run of `total_epochs`.

    Past the planned end the factor stays at its last value instead of restarting or reaching zero.
    """

    def __init__(self, kind: str, total_epochs: int, step_size: int = 10, gamma: float = 0.5):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {kind!r}")
        self.kind = kind
        self.total_epochs = int(total_epochs)
        self.step_size = int(step_size)
        self.gamma = float(gamma)

    def __call__(self, epoch: int) -> float:
        if self.kind == "none":
            return 1.0
        if self.kind == "step":
            return self.gamma ** (epoch // self.step_size)
        total = max(self.total_epochs, 1)
        e = min(epoch, total - 1)
        return 0.5 * (1.0 + math.cos(math.pi * e / total))


def curriculum_steps(curriculum: list[int], epoch: int, total_epochs: int) -> int | None:
    """Rollout length of epoch `epoch` (0-based): the stages are spread evenly over the whole run and
    the last stage holds past its end. None when there is no curriculum."""
    if not curriculum:
        return None
    if total_epochs <= 0:
        return curriculum[-1]
    stage = min(len(curriculum) - 1, epoch * len(curriculum) // total_epochs)
    return curriculum[stage]
