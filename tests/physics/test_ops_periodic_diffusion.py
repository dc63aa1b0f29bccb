"""The periodic diffusion's torch.roll fast path computes what the generic pad + slice path computes."""

import pytest
import torch
from phi import math
from phiml.math import batch, channel, spatial

from hyco.physics.ops import PERIODIC, diffusion, padded_diffusion


@pytest.mark.parametrize("field_kappa", [False, True])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_rolled_periodic_diffusion_equals_the_padded_one(ndim, field_kappa):
    gen = torch.Generator().manual_seed(ndim)
    axes = "xyz"[:ndim]
    space = spatial(**dict(zip(axes, [6, 5, 4][:ndim])))
    dx = tuple(1.0 / n for n in space.sizes)
    shape = batch(b=2) & space & channel(vector=",".join(axes))

    def run(fn):
        u = torch.randn(shape.sizes, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        u.requires_grad_(True)
        k = 0.5 + torch.rand(space.sizes, generator=gen.manual_seed(1), dtype=torch.float64) if field_kappa \
            else torch.tensor(0.7, dtype=torch.float64)
        k.requires_grad_(True)
        with math.precision(64):  # as in PhysicalModel.phiml_context for float64 models
            out = fn(math.tensor(u, shape), math.tensor(k, space) if field_kappa else math.tensor(k), dx, PERIODIC)
            native = out.native(shape.names)
            native.square().sum().backward()
        return native.detach(), u.grad, k.grad

    rolled, padded = run(diffusion), run(padded_diffusion)
    assert torch.equal(rolled[0], padded[0])  # same operations on the same values
    for a, b in zip(rolled[1:], padded[1:]):  # gradients: same up to the order of summation
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
