"""The PhiFlow field view of a batch of windows, for code that works with Fields rather than tensors.

It is built from the tensor batch of the same window indices (via hyco.physics.convert, zero-copy where
PhiFlow allows), so the two views always hold the same windows in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from phiml import math
from phiml.math import batch, spatial

from hyco.data.batch import Batch
from hyco.physics.convert import BATCH_DIM, tensor_axes, tensor_to_fields

TIME_DIM = "time"


def window_fields(windows: Batch, templates: Sequence[Any]) -> tuple[Any, ...]:
    """(inputs, targets[, masks]) of a Batch as PhiFlow objects.

    inputs: one Field per model field with batch dim ``b``; targets: one Field per model field with
    batch dims ``b`` and ``time`` (the R target frames); masks: a PhiML tensor (``b``, ``time``, space).
    """
    inputs, targets = windows.inputs, windows.targets
    num, steps = targets.shape[:2]
    input_fields = tensor_to_fields(inputs, templates)
    if all(t.values.shape.is_uniform for t in templates):  # one conversion, then split b into (b, time)
        flat = tensor_to_fields(targets.reshape(num * steps, *targets.shape[2:]), templates)
        shape = batch(**{BATCH_DIM: num, TIME_DIM: steps})
        target_fields = tuple(math.unpack_dim(f, BATCH_DIM, shape) for f in flat)
    else:  # staggered grids in a closed box hold non-uniform values: convert each step, stack along time
        per_step = [tensor_to_fields(targets[:, r], templates) for r in range(steps)]
        target_fields = tuple(math.stack([step[i] for step in per_step], batch(TIME_DIM))
                              for i in range(len(templates)))
    if windows.mask is None:
        return input_fields, target_fields
    mask = windows.mask
    axes = tensor_axes(mask.dim() - 3)
    mask_tensor = math.wrap(mask[:, :, 0], batch(BATCH_DIM), batch(TIME_DIM), spatial(*axes))
    return input_fields, target_fields, mask_tensor
