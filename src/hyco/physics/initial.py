"""Seeded random smooth fields for initial states (low Fourier modes), generated on the CPU in float64
so that a seed gives the same states on every device and dtype."""

from __future__ import annotations

import functools
import itertools
import math as pymath

import torch

from hyco.physics.coefficients import cell_centers


def generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


def fourier_fields(gen: torch.Generator, n: int, channels: int, resolution: tuple[int, ...],
                   bounds: tuple[float, ...], max_mode: int, walls: bool = False) -> torch.Tensor:
    """[n, channels, *space] sums of random modes with |k|_inf <= max_mode, amplitude ~ 1/(1+|k|^2).

    Periodic (walls=False): cos/sin of 2 pi k.x/L, zero mean. Walls: products of sin(pi k_d x_d / L_d),
    which vanish on the boundary faces (zero-Dirichlet compatible)."""
    basis_t, scale_t = _fourier_basis(tuple(resolution), tuple(bounds), int(max_mode), bool(walls))
    weights = torch.randn(n, channels, basis_t.shape[0], generator=gen, dtype=torch.float64)
    return torch.einsum("ncm,m...->nc...", weights * scale_t, basis_t)


@functools.lru_cache(maxsize=16)
def _fourier_basis(resolution: tuple[int, ...], bounds: tuple[float, ...], max_mode: int,
                   walls: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The modes and their amplitudes, built once per grid: rebuilding them for every batch of initial
    states cost a sizeable share of data generation."""
    coords = cell_centers(resolution, bounds)
    ndim = len(resolution)
    basis, scale = [], []
    if walls:
        for k in itertools.product(range(1, max_mode + 1), repeat=ndim):
            basis.append(torch.prod(torch.stack([torch.sin(pymath.pi * k[d] * coords[d] / bounds[d])
                                                 for d in range(ndim)]), dim=0))
            scale.append(1.0 / (1 + sum(x * x for x in k)))
    else:
        for k in itertools.product(range(-max_mode, max_mode + 1), repeat=ndim):
            if all(x == 0 for x in k):
                continue
            phase = sum(2 * pymath.pi * k[d] * coords[d] / bounds[d] for d in range(ndim))
            basis += [torch.cos(phase), torch.sin(phase)]
            scale += [1.0 / (1 + sum(x * x for x in k))] * 2
    return torch.stack(basis), torch.tensor(scale, dtype=torch.float64)


def normalise_max(t: torch.Tensor, amplitude: float) -> torch.Tensor:
    """Scale each sample so that its largest absolute value over channels and space is `amplitude`."""
    peak = t.flatten(1).abs().amax(dim=1).clamp_min(1e-12)
    return t * (amplitude / peak).reshape(-1, *([1] * (t.dim() - 1)))


def gaussian_blobs(gen: torch.Generator, n: int, resolution: tuple[int, ...], bounds: tuple[float, ...],
                   count: int, width: float, margin: float = 0.15, lower_half: bool = False) -> torch.Tensor:
    """[n, 1, *space] sums of `count` gaussian blobs of std `width` (fraction of the domain) at random
    positions, peak-normalised to 1."""
    coords = cell_centers(resolution, bounds)
    ndim = len(resolution)
    centres = margin + (1 - 2 * margin) * torch.rand(n, count, ndim, generator=gen, dtype=torch.float64)
    if lower_half and ndim >= 2:  # e.g. hot smoke starts near the floor
        centres[..., 1] = margin + (0.5 - margin) * centres[..., 1]
    amps = 0.5 + 0.5 * torch.rand(n, count, generator=gen, dtype=torch.float64)
    out = torch.zeros(n, *reversed(resolution), dtype=torch.float64)
    for j in range(count):
        dist2 = sum((coords[d] / bounds[d] - centres[:, j, d].reshape(-1, *[1] * ndim)) ** 2 for d in range(ndim))
        out = out + amps[:, j].reshape(-1, *[1] * ndim) * torch.exp(-dist2 / (2 * width**2))
    return normalise_max(out, 1.0).unsqueeze(1)
