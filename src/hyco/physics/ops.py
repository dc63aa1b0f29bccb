"""Dimension-agnostic finite-volume operators on PhiML tensors, shared by the shipped models.

Why our own rather than PhiFlow's: a conservative ∇·(κ∇u) with a spatially varying κ and a
zero-Dirichlet wall at the cell FACE is not what `diffuse.explicit` does, and PhiFlow's
semi-Lagrangian advection crashes in 1D on torch (torch's grid_sample gets a 3-D tensor). Here 1D
sampling goes through a generic gather-based linear interpolation (any ndim, works under jit); 2D/3D
use the backend's grid_sample, which is faster.
"""

from __future__ import annotations

import itertools

from phi import math
from phiml.math import channel, extrapolation, spatial

from hyco.config.models.physics import DIRICHLET, NEUMANN, PERIODIC  # the boundary names of the configs
from hyco.physics.convert import AXES

_VALUE_PAD = {PERIODIC: extrapolation.PERIODIC, DIRICHLET: extrapolation.ANTISYMMETRIC,
              NEUMANN: extrapolation.SYMMETRIC}
_COEFF_PAD = {PERIODIC: extrapolation.PERIODIC, DIRICHLET: extrapolation.SYMMETRIC,
              NEUMANN: extrapolation.SYMMETRIC}


def _lower(t: math.Tensor, axis: str) -> math.Tensor:
    return t[{axis: slice(None, -1)}]


def _upper(t: math.Tensor, axis: str) -> math.Tensor:
    return t[{axis: slice(1, None)}]


def _torch_roll(t: math.Tensor, shift: int, axis: str) -> math.Tensor | None:
    """`t` rolled periodically along `axis` with torch.roll, or None when `t` is not torch-backed."""
    import torch

    names = t.shape.names
    native = t.native(names)
    if not isinstance(native, torch.Tensor):
        return None
    return math.tensor(torch.roll(native, shift, names.index(axis)), t.shape)


def _periodic_diffusion(u: math.Tensor, kappa: math.Tensor, dx: tuple[float, ...]) -> math.Tensor | None:
    """The periodic case of `diffusion` with rolls instead of pad + slices: the same operations on the same
    values (identical forward results), but the backward pass of a roll is a roll, whereas every slice's
    backward allocates and zero-fills a full-size gradient (measured: rollout + gradient ~30 % faster for
    heat and Burgers at 32x32). None when the tensors are not torch-backed."""
    out = 0
    for d, h in enumerate(dx):
        axis = AXES[d]
        upper = _torch_roll(u, -1, axis)  # u at cell i+1: the face i+1/2 lies between i and i+1
        if upper is None:
            return None
        grad = (upper - u) / h
        if axis in kappa.shape:
            k_upper = _torch_roll(kappa, -1, axis)
            if k_upper is None:
                return None
            k_face = 0.5 * (k_upper + kappa)
        else:
            k_face = kappa
        flux = k_face * grad  # flux through face i+1/2
        out = out + (flux - _torch_roll(flux, 1, axis)) / h
    return out


def diffusion(u: math.Tensor, kappa: math.Tensor, dx: tuple[float, ...], boundary: str) -> math.Tensor:
    """∇·(κ∇u) on a cell-centred grid (axes named x, y, z; dx x first); κ a scalar or a field on the
    cells (arithmetic mean on faces). Conservative: with periodic or Neumann walls, sum(u) is exact."""
    kappa = math.wrap(kappa)
    if boundary == PERIODIC:
        rolled = _periodic_diffusion(u, kappa, dx)
        if rolled is not None:
            return rolled
    return padded_diffusion(u, kappa, dx, boundary)


def padded_diffusion(u: math.Tensor, kappa: math.Tensor, dx: tuple[float, ...], boundary: str) -> math.Tensor:
    """`diffusion` for any boundary and backend: pad by one cell, differences of slices."""
    kappa = math.wrap(kappa)
    out = 0
    for d, h in enumerate(dx):
        axis = AXES[d]
        padded = math.pad(u, {axis: (1, 1)}, _VALUE_PAD[boundary])
        grad = (_upper(padded, axis) - _lower(padded, axis)) / h  # N+1 faces
        if axis in kappa.shape:
            k = math.pad(kappa, {axis: (1, 1)}, _COEFF_PAD[boundary])
            k_face = 0.5 * (_upper(k, axis) + _lower(k, axis))
        else:
            k_face = kappa
        flux = k_face * grad  # Neumann: the symmetric pad makes the wall gradient exactly zero
        out = out + (_upper(flux, axis) - _lower(flux, axis)) / h
    return out


def _periodic_shift(t: math.Tensor, shift: int, axis: str) -> math.Tensor:
    """`t` at cell i - shift (periodic): a torch roll, or pad + slice on another backend."""
    rolled = _torch_roll(t, shift, axis)
    if rolled is not None:
        return rolled
    n = t.shape.get_size(axis)
    return math.pad(t, {axis: (1, 1)}, extrapolation.PERIODIC)[{axis: slice(1 - shift, 1 - shift + n)}]


def central_self_advection(u: math.Tensor, dx: tuple[float, ...]) -> math.Tensor:
    """(u·∇)u of a periodic, cell-centred velocity (a `vector` channel, x first), every derivative a second-order
    central difference. It dissipates nothing, unlike a semi-Lagrangian step, whose interpolation diffuses by
    about |u| dx / 2 and so biases a viscosity learned on another grid (hyco.physics.burgers)."""
    out = 0
    for d, h in enumerate(dx):
        axis = AXES[d]
        derivative = (_periodic_shift(u, -1, axis) - _periodic_shift(u, 1, axis)) / (2 * h)
        out = out + u[{"vector": axis}] * derivative
    return out


def stability_limit(dx: tuple[float, ...], dt: float) -> float:
    """Largest κ for which explicit Euler on `diffusion` is stable: κ dt Σ 2/dx_d² <= 1."""
    return 1.0 / (2.0 * dt * sum(1.0 / h**2 for h in dx))


def index_grid(resolution: math.Shape) -> math.Tensor:
    """Integer cell indices with a `vector` channel labelled x, y, ... (x first)."""
    axes = [a for a in AXES if a in resolution]
    return math.meshgrid(resolution, stack_dim=channel(vector=",".join(axes)))[{"vector": axes}]


def sample_periodic(values: math.Tensor, coords: math.Tensor) -> math.Tensor:
    """Linear interpolation of a periodic cell-centred grid at fractional cell indices `coords`
    (channel `vector` labelled x, y, ...)."""
    if spatial(values).rank >= 2:
        return math.grid_sample(values, coords, extrapolation.PERIODIC)
    return sample_periodic_generic(values, coords)


def sample_periodic_generic(values: math.Tensor, coords: math.Tensor) -> math.Tensor:
    """Gather-based multilinear interpolation; any ndim, any backend, jit-safe."""
    axes = list(channel(coords).item_names[0])
    sizes = math.wrap([values.shape.get_size(a) for a in axes], channel(vector=",".join(axes)))
    lower = math.floor(coords)
    weight_upper = coords - lower
    lower = math.to_int32(lower) % sizes
    result = 0
    for corner in itertools.product((0, 1), repeat=len(axes)):
        offset = math.wrap(list(corner), channel(vector=",".join(axes)))
        index = (lower + offset) % sizes
        weight = math.prod(math.where(offset == 1, weight_upper, 1 - weight_upper), "vector")
        result = result + weight * math.gather(values, index)
    return result


def advect_periodic(values: math.Tensor, velocity: math.Tensor, dt: float, dx: tuple[float, ...]) -> math.Tensor:
    """Semi-Lagrangian step: values(x - velocity(x) dt), periodic; velocity has a `vector` channel (x first)."""
    axes = [AXES[d] for d in range(len(dx))]
    resolution = spatial(values).only(axes)
    step = math.wrap([dt / h for h in dx], channel(vector=",".join(axes)))
    coords = index_grid(resolution) - velocity[{"vector": axes}] * step
    return sample_periodic(values, coords)
