"""Point sensors: where they are in each frame, and a state sampled there by linear interpolation.

A sensor reads the state at a point, not a grid cell. hyco's grids are cell-centred (cell i of N along an
axis has its centre at (i + 1/2) / N of the domain), so a point at fraction p of an axis lies at the
fractional index p * N - 1/2 and is read by (multi)linear interpolation between the 2^d cell centres around
it. The interpolation is a fixed linear map of the state: per sensor and frame a *stencil* of 2^d flat cell
indices and weights, computed once from the positions, so sampling a batch of predicted frames is one gather
and one weighted sum, exact on cell centres (a point on a centre has weight 1 there and 0 elsewhere, no
round-off from coordinate normalisation) and differentiable in the state. Near a wall (within half a cell
of a non-periodic boundary) the value of the nearest cell centre is used (zero-gradient extrapolation); on a
periodic domain the stencil wraps around.

Why not `torch.nn.functional.grid_sample` or PhiFlow's `Field.at`/`sample`: both recompute the weights at
every call from coordinates normalised to [-1, 1], which puts a sensor on a cell centre a round-off away
from it, and grid_sample has no periodic padding. The stencil is the same bilinear interpolation (a test
checks it against grid_sample), with the weights kept.

Layouts (`observation.sensor_layout`), positions as fractions of the domain per axis, x first:

- `random`: `sensor_count` points drawn uniformly once, the same in every frame;
- `grid`: a regular lattice of about `sensor_count` points (the nearest k^d), at the centres of a k^d
  partition of the domain, the same in every frame;
- `random_per_frame`: `sensor_count` points drawn anew for every frame;
- `circle`: `sensor_count` sensors equally spaced on a circle (centre `sensor_centre`, radius `sensor_radius`,
  in the first two axes; other axes at their middle) moving along it by `sensor_speed` (a fraction of the
  domain's side per stored frame);
- `given`: the points in `sensor_positions`, the same in every frame.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch

from hyco.config.schema import SENSOR_LAYOUTS
from hyco.errors import ConfigError
from hyco.utils.seed import seeded_generator

SENSOR_STREAM, SENSOR_NOISE_STREAM = 101, 103  # keys of hyco.utils.seed under observation.seed
_ON_CENTRE = 1e-6  # a fractional index this close to an integer is that cell centre (exact stencil)


def sensor_positions(config, ndim: int, num_frames: int, data_seed: int = 0) -> torch.Tensor:
    """Positions `[T, K, d]` (float64 fractions of the domain, x first) of the sensors in every frame."""
    count, layout = int(config.sensor_count), config.sensor_layout
    if layout == "given":
        points = torch.as_tensor([list(p) for p in config.sensor_positions], dtype=torch.float64)
        if points.ndim != 2 or points.shape[1] != ndim:
            raise ConfigError("observation.sensor_positions", f"points of {ndim} coordinates each (x first)",
                              list(config.sensor_positions))
        return points.expand(num_frames, -1, -1).clone()
    if layout == "random":
        generator = seeded_generator(config.seed, SENSOR_STREAM, data_seed)
        return torch.rand((count, ndim), generator=generator, dtype=torch.float64).expand(num_frames, -1, -1).clone()
    if layout == "random_per_frame":
        generator = seeded_generator(config.seed, SENSOR_STREAM, data_seed)
        return torch.rand((num_frames, count, ndim), generator=generator, dtype=torch.float64)
    if layout == "grid":
        side = max(1, round(count ** (1.0 / ndim)))
        centres = (torch.arange(side, dtype=torch.float64) + 0.5) / side
        points = torch.cartesian_prod(*([centres] * ndim)).reshape(-1, ndim).flip(-1)  # x varies fastest
        return points.expand(num_frames, -1, -1).clone()
    if layout == "circle":
        if ndim < 2:
            raise ConfigError("observation.sensor_layout", "random, grid, random_per_frame or given on a 1D domain "
                              "(a circle needs two axes)", layout)
        radius = float(config.sensor_radius)
        centre = [float(c) for c in config.sensor_centre]
        if len(centre) != 2:
            raise ConfigError("observation.sensor_centre", "two fractions (x, y)", list(config.sensor_centre))
        frames = torch.arange(num_frames, dtype=torch.float64)[:, None]
        angles = 2 * math.pi * torch.arange(count, dtype=torch.float64)[None] / count
        angles = angles + frames * float(config.sensor_speed) / radius  # arc length per frame / radius
        points = torch.full((num_frames, count, ndim), 0.5, dtype=torch.float64)
        points[..., 0] = centre[0] + radius * torch.cos(angles)
        points[..., 1] = centre[1] + radius * torch.sin(angles)
        return points
    raise ConfigError("observation.sensor_layout", f"one of {', '.join(SENSOR_LAYOUTS)}", layout)


def check_inside(positions: torch.Tensor, periodic: bool, key: str = "observation.sensor_positions") -> None:
    """Refuse a sensor outside the domain (a periodic domain wraps positions around instead)."""
    if periodic:
        return
    outside = (positions < 0) | (positions > 1)
    if bool(outside.any()):
        frame, sensor = (int(i) for i in outside.any(-1).nonzero()[0])
        raise ConfigError(key, "sensor positions inside the domain (fractions in [0, 1] per axis, x first)",
                          f"sensor {sensor} at {positions[frame, sensor].tolist()} in frame {frame}")


def stencils(positions: torch.Tensor, spatial_shape: Sequence[int], periodic: bool
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Linear-interpolation stencils of points `[..., K, d]` (fractions, x first) on a cell-centred grid of
    `spatial_shape` (tensor order, x last): flat cell indices `[..., K, 2^d]` (long) and weights (float64)."""
    shape_x_first = [int(n) for n in reversed(tuple(spatial_shape))]
    ndim = len(shape_x_first)
    lows, fracs = [], []
    for axis, n in enumerate(shape_x_first):
        f = positions[..., axis] * n - 0.5
        low = torch.floor(f)
        frac = f - low
        near = (frac - frac.round()).abs() < _ON_CENTRE
        low = torch.where(near & (frac > 0.5), low + 1, low)  # snap a point on a centre onto it
        frac = torch.where(near, torch.zeros_like(frac), frac)
        lows.append(low.long())
        fracs.append(frac)
    strides = [math.prod(shape_x_first[:axis]) for axis in range(ndim)]  # x fastest in the flat index
    index, weight = [], []
    for corner in itertools.product((0, 1), repeat=ndim):
        flat = torch.zeros_like(lows[0])
        w = torch.ones_like(fracs[0])
        for axis, (n, offset) in enumerate(zip(shape_x_first, corner)):
            i = lows[axis] + offset
            i = torch.remainder(i, n) if periodic else i.clamp(0, n - 1)
            flat = flat + i * strides[axis]
            w = w * (fracs[axis] if offset else 1.0 - fracs[axis])
        index.append(flat)
        weight.append(w)
    return torch.stack(index, -1), torch.stack(weight, -1)


def sample(frames: torch.Tensor, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """States `[B, S, C, *space]` read at the sensors of stencils `[B, S, K, P]`: `[B, S, C, K]`
    (linear in the states, so differentiable in them)."""
    b, s, c = frames.shape[:3]
    k, p = index.shape[-2:]
    flat = frames.reshape(b, s, c, -1)
    gathered = flat.gather(3, index.reshape(b, s, 1, k * p).expand(b, s, c, k * p)).reshape(b, s, c, k, p)
    return (gathered * weight.to(frames.dtype)[:, :, None]).sum(-1)


def nearest_cells(index: torch.Tensor, weight: torch.Tensor, spatial_shape: Sequence[int]) -> torch.Tensor:
    """Float mask `[..., 1, *space]`: the cell nearest to each active sensor (weight > 0), per frame — the
    cells where a sensor speaks (HYCO's interaction region excludes them; the report draws them)."""
    lead = index.shape[:-2]
    nearest = index.gather(-1, weight.argmax(-1, keepdim=True)).squeeze(-1)  # [..., K]
    active = (weight.sum(-1) > 0).to(torch.float32)
    cells = math.prod(int(n) for n in spatial_shape)
    mask = torch.zeros((*lead, cells))
    mask.scatter_add_(-1, nearest.reshape(*lead, -1), active.reshape(*lead, -1))
    return mask.clamp_max(1.0).reshape(*lead, 1, *spatial_shape)
