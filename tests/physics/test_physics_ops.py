"""The finite-volume operators behind the shipped models, against exact answers."""

import math as pymath

import pytest
import torch
from phi import math
from phiml.math import batch, channel, spatial

from hyco.physics import build_physics  # noqa: F401  (sets PhiML's default backend to torch)
from hyco.physics.ops import (
    advect_periodic,
    diffusion,
    index_grid,
    sample_periodic,
    sample_periodic_generic,
    stability_limit,
)


@pytest.fixture(autouse=True)
def float64():
    """These checks run in float64 (PhiML casts to its global precision, 32 bits, by default)."""
    with math.precision(64):
        yield


def grid(t: torch.Tensor, names: str = "y,x", vector: bool = False) -> math.Tensor:
    dims = [batch("b")] + ([channel(vector="x,y")] if vector else []) + [spatial(names)]
    return math.wrap(t, *dims)


def test_periodic_diffusion_of_a_sine_is_second_order_accurate():
    n, kappa = 64, 0.3
    x = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    u = grid(torch.sin(2 * pymath.pi * x)[None], "x")
    lap = diffusion(u, kappa, (1.0 / n,), "periodic").native(["b", "x"])[0]
    exact = -kappa * (2 * pymath.pi) ** 2 * torch.sin(2 * pymath.pi * x)
    assert (lap - exact).abs().max() < 2e-3 * exact.abs().max()  # O(dx^2) = 2.4e-4 relative


def test_variable_coefficient_diffusion_conserves_the_total_with_periodic_and_neumann_walls():
    gen = torch.Generator().manual_seed(0)
    u = grid(torch.randn(2, 6, 7, generator=gen, dtype=torch.float64))
    kappa = math.wrap(torch.rand(6, 7, generator=gen, dtype=torch.float64), spatial("y,x"))
    for boundary in ("periodic", "neumann"):
        total = math.sum(diffusion(u, kappa, (0.5, 0.25), boundary), spatial).native(["b"])
        assert total.abs().max() < 1e-12


def test_dirichlet_walls_hold_zero_on_the_boundary_face():
    u = grid(torch.ones(1, 8, dtype=torch.float64), "x")  # constant 1, walls at 0
    d = diffusion(u, 1.0, (1.0,), "dirichlet").native(["b", "x"])[0]
    # interior cells: no gradient; wall cells: flux (1 - 0) / (dx / 2) out of the cell
    assert torch.allclose(d[1:-1], torch.zeros(6, dtype=torch.float64))
    assert torch.allclose(d[[0, -1]], torch.tensor([-2.0, -2.0], dtype=torch.float64))


def test_stability_limit():
    assert stability_limit((0.1,), 0.01) == pytest.approx(0.5)  # kappa dt / dx^2 <= 1/2
    assert stability_limit((0.1, 0.1), 0.01) == pytest.approx(0.25)


def test_one_dimensional_semi_lagrangian_shifts_exactly_by_whole_cells():
    values = torch.randn(2, 16, dtype=torch.float64)
    u = grid(values, "x")
    velocity = math.wrap(torch.full((2, 1, 16), 3.0, dtype=torch.float64), batch("b"), channel(vector="x"),
                         spatial("x"))
    moved = advect_periodic(u, velocity, dt=1.0, dx=(1.0,)).native(["b", "x"])  # 3 cells per step
    assert torch.allclose(moved, torch.roll(values, 3, dims=1))


def test_generic_sampling_equals_grid_sample_in_2d():
    gen = torch.Generator().manual_seed(1)
    values = grid(torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64), vector=True)
    shift = grid(3 * torch.randn(2, 2, 5, 6, generator=gen, dtype=torch.float64), vector=True)
    coords = index_grid(spatial(values)) - shift  # far outside the grid too: periodic wrapping
    a = sample_periodic(values, coords)
    b = sample_periodic_generic(values, coords)
    assert float(math.max(abs(a - b), a.shape)) < 1e-12
