"""Field <-> tensor conversion: exact round trips, the documented layout, zero-copy where promised."""

import pytest
import torch
from phi import math
from phi.field import CenteredGrid, StaggeredGrid
from phi.geom import Box
from phiml.math import batch, extrapolation

from hyco.physics.convert import field_to_tensor, fields_to_tensor, tensor_to_field, tensor_to_fields

RES = {"x": 5, "y": 4}  # non-square so that swapped axes fail
BOX = Box(x=1.0, y=2.0)


def centered(channels: int, bc=extrapolation.PERIODIC):
    values = 0 if channels == 1 else math.zeros(math.channel(vector="x,y"))
    return CenteredGrid(values, bc, bounds=BOX, **RES)


def staggered(bc):
    return StaggeredGrid(0, bc, bounds=BOX, **RES)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [1, 2])
def test_centered_round_trip_is_exact_and_zero_copy(dtype, channels):
    t = torch.randn(3, channels, 4, 5, dtype=dtype)
    field = tensor_to_field(t, centered(channels))
    back = field_to_tensor(field)
    assert back.dtype == dtype and torch.equal(back, t)
    assert back.data_ptr() == t.data_ptr()  # no copy either way
    again = tensor_to_field(back, centered(channels))
    assert math.equal(again.values, field.values)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bc", [extrapolation.PERIODIC, extrapolation.ZERO], ids=["periodic", "closed"])
def test_staggered_round_trip_is_exact(dtype, bc):
    t = torch.randn(2, 2, 4, 5, dtype=dtype)
    if bc == extrapolation.ZERO:  # closed box: the lower boundary faces carry zero normal velocity
        t[:, 0, :, 0] = 0
        t[:, 1, 0, :] = 0
    field = tensor_to_field(t, staggered(bc))
    assert field.is_staggered
    back = field_to_tensor(field)
    assert back.dtype == dtype and torch.equal(back, t)
    assert math.equal(tensor_to_field(back, staggered(bc)).values, field.values)
    if bc == extrapolation.PERIODIC:
        assert back.data_ptr() == t.data_ptr()


def test_staggered_component_lives_on_the_lower_face():
    """Component d of cell i is the face at coordinate i * dx_d (contract), for both boundaries."""
    for bc in (extrapolation.PERIODIC, extrapolation.ZERO):
        grid = StaggeredGrid(lambda pos: pos, bc, bounds=BOX, **RES)  # each face stores its own position
        t = field_to_tensor(grid)  # [1, 2, y, x]
        x_faces = torch.arange(5, dtype=t.dtype) * 0.2
        y_faces = torch.arange(4, dtype=t.dtype) * 0.5
        assert torch.allclose(t[0, 0], x_faces.expand(4, 5), atol=1e-6)  # x component: varies along the last axis
        assert torch.allclose(t[0, 1], y_faces[:, None].expand(4, 5), atol=1e-6)


def test_layout_channels_x_first_and_last_axis_is_x():
    grid = CenteredGrid(lambda pos: pos, extrapolation.PERIODIC, bounds=BOX, **RES)  # vector field (x, y)
    t = field_to_tensor(grid)
    assert t.shape == (1, 2, 4, 5)
    assert torch.allclose(t[0, 0, 0], (torch.arange(5) + 0.5) * 0.2)  # channel 0 = x, along the last axis
    assert torch.allclose(t[0, 1, :, 0], (torch.arange(4) + 0.5) * 0.5)


def test_one_dimensional_fields():
    template = CenteredGrid(math.zeros(math.channel(vector="x")), extrapolation.PERIODIC, x=6)
    t = torch.randn(2, 1, 6)
    assert torch.equal(field_to_tensor(tensor_to_field(t, template)), t)


def test_several_fields_concatenate_and_split():
    templates = [staggered(extrapolation.PERIODIC), centered(1), centered(2)]
    t = torch.randn(2, 5, 4, 5)
    fields = tensor_to_fields(t, templates)
    assert [f.is_staggered for f in fields] == [True, False, False]
    assert torch.equal(fields_to_tensor(fields), t)


def test_autograd_flows_through_the_converter():
    t = torch.randn(2, 2, 4, 5, requires_grad=True)
    field = tensor_to_field(t, centered(2))
    out = field_to_tensor(field * 3.0)
    (grad,) = torch.autograd.grad(out.sum(), t)
    assert torch.allclose(grad, torch.full_like(t, 3.0))


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        tensor_to_field(torch.zeros(2, 2, 5, 4), centered(2))  # axes swapped
    with pytest.raises(ValueError, match="channels"):
        tensor_to_fields(torch.zeros(2, 4, 4, 5), [centered(1), centered(2)])


def test_field_without_batch_gets_batch_one():
    grid = CenteredGrid(1.0, extrapolation.PERIODIC, **RES)
    assert field_to_tensor(grid).shape == (1, 1, 4, 5)
    assert batch(tensor_to_field(torch.zeros(3, 1, 4, 5), grid).values).volume == 3
