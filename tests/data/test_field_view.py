"""The PhiFlow field view of window batches, for centered and staggered (closed box) grids."""

import pytest
import torch

pytest.importorskip("hyco.physics.convert", reason="needs the physics branch's Field <-> tensor converter")

from phi.flow import Box, CenteredGrid, Noise, StaggeredGrid, extrapolation  # noqa: E402
from phiml.math import batch  # noqa: E402

from hyco.data.batch import Batch  # noqa: E402
from hyco.data.field_view import window_fields  # noqa: E402
from hyco.physics.convert import field_to_tensor, fields_to_tensor  # noqa: E402


@pytest.mark.parametrize("boundary", [extrapolation.PERIODIC, extrapolation.ZERO])
def test_staggered_and_centered_windows_round_trip(boundary):
    box = Box(x=1, y=1)
    templates = (StaggeredGrid(0, boundary, bounds=box, x=8, y=6), CenteredGrid(0, boundary, bounds=box, x=8, y=6))
    samples = (StaggeredGrid(Noise(batch(b=9)), boundary, bounds=box, x=8, y=6),
               CenteredGrid(Noise(batch(b=9)), boundary, bounds=box, x=8, y=6))
    frames = fields_to_tensor(samples).reshape(3, 3, 3, 6, 8)  # 3 windows x (input + 2 targets), C = 2 + 1
    inputs, targets = frames[:, 0], frames[:, 1:]
    mask = torch.rand(3, 2, 1, 6, 8).round()
    in_fields, target_fields, mask_tensor = window_fields(Batch(inputs, targets, mask), templates)
    assert torch.equal(fields_to_tensor(in_fields), inputs)
    for r in range(2):
        assert torch.equal(field_to_tensor(target_fields[0][{"time": r}]), targets[:, r, :2])
        assert torch.equal(field_to_tensor(target_fields[1][{"time": r}]), targets[:, r, 2:])
    assert torch.equal(mask_tensor.native(["b", "time", "y", "x"]), mask[:, :, 0])
