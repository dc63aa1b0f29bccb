"""Gray-Scott reaction-diffusion: two coupled dynamic fields u, v on a periodic box.

    du/dt = ∇·(D_u ∇u) - u v² + f (1 - u)
    dv/dt = ∇·(D_v ∇v) + u v² - (f + k) v

Explicit Euler per substep h = dt / substeps (or the Runge–Kutta scheme of `physics.time_step`), conservative
finite-volume diffusion (torch.roll, periodic).
D_u and D_v are learnable (scalar, field or parametric); the feed rate f and kill rate k are known by
default (`learn: false`) and learnable on request.

Stability bound. For u, v in [0, 1] (where these dynamics keep them), a Fourier mode of u is damped by
the factor 1 - h (D λ + v² + f) with λ up to Σ_d 4/dx_d²; explicit Euler needs h (D λ + a) <= 2 with
a = v² + f <= 1 + f for u, and a = f + k for v. The rates are kept at h·f, h·k <= 0.25 (so h (f + k) <=
0.5), which leaves the diffusion the share s = max(h (1 + 0.25/h), 0.5) = max(h + 0.25, 0.5) of the
budget; the diffusivities are kept below

    D_max = 0.9 (1 - s/2) / (2 h Σ_d 1/dx_d²)

(0.9 x the pure-diffusion limit, shrunk by the reaction's share; hyco requires h < 1.5). A Runge–Kutta time step
with a longer real stability interval (gain g = interval / 2: 1.26 for SSPRK3, 1.39 for RK4) replaces 1 - s/2 by
g - s/2. At 64² on a
100 x 100 box with h = 0.5: D_max = 0.687; with h = 1: 0.206.

Initial states: u = 1, v = 0, plus `seeds` random squares (or gaussian bumps) where v = seed_v and u =
seed_u, and uniform noise of amplitude `noise` on both fields (clipped to [0, 1]).
"""

from __future__ import annotations

import torch

from hyco.config.models.physics import GrayScottParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.burgers import SAFETY
from hyco.physics.coefficients import CoefficientSpec, cell_centers
from hyco.physics.ops import PERIODIC, diffusion, stability_limit

RATE_SHARE = 0.25  # h * f and h * k are kept at most this (explicit Euler of the reaction terms)
LOWER_FRACTION = 1e-4  # lower bound of a diffusivity, relative to its upper bound


def diffusivity_limit(dx: tuple[float, ...], h: float, stability_gain: float = 1.0) -> float:
    """The largest D_u, D_v allowed (see the module docstring): 0.9 x the pure-diffusion limit, shrunk by
    the reaction terms' share of the explicit budget (Euler's 2, times the time step's stability gain)."""
    share = max(h + RATE_SHARE, 2 * RATE_SHARE)
    return SAFETY * (stability_gain - share / 2) * stability_limit(dx, h)


@PHYSICS.register("gray_scott")
class GrayScott(PhysicalModel):
    """Gray-Scott on a periodic box (1D, 2D or 3D from the length of `resolution`)."""

    Params = GrayScottParams  # the config schema, torch-free (hyco.config.models.physics)

    boundary = PERIODIC

    def setup(self, p: Params) -> None:
        self.set_domain_from(p)
        h = self.substep_dt
        d_max = diffusivity_limit(self.dx, h, self.stability_gain)
        rate_max = RATE_SHARE / h
        self.set_coefficients(
            (CoefficientSpec("D_u", p.D_u.kind, lower=LOWER_FRACTION * d_max, upper=d_max), p.D_u),
            (CoefficientSpec("D_v", p.D_v.kind, lower=LOWER_FRACTION * d_max, upper=d_max), p.D_v),
            (CoefficientSpec("f", p.f.kind, lower=0.0, upper=rate_max), p.f),
            (CoefficientSpec("k", p.k.kind, lower=0.0, upper=rate_max), p.k),
        )

    def rate(self, state, coefficients):
        uu, vv = state["u"].values, state["v"].values
        f, k = coefficients["f"], coefficients["k"]
        uvv = uu * vv * vv
        du = diffusion(uu, coefficients["D_u"], self.dx, PERIODIC) - uvv + f * (1 - uu)
        dv = diffusion(vv, coefficients["D_v"], self.dx, PERIODIC) + uvv - (f + k) * vv
        return {"u": du, "v": dv}

    def sample_initial(self, gen, n):
        p = self.params
        weight = seed_weights(gen, n, self.resolution, self.bounds, p.seeds, p.seed_size, p.seed_shape)
        u = 1 - (1 - p.seed_u) * weight
        v = p.seed_v * weight
        u = u + p.noise * (2 * torch.rand(u.shape, generator=gen, dtype=torch.float64) - 1)
        v = v + p.noise * (2 * torch.rand(v.shape, generator=gen, dtype=torch.float64) - 1)
        return {"u": u.clamp(0, 1).unsqueeze(1), "v": v.clamp(0, 1).unsqueeze(1)}


def seed_weights(gen: torch.Generator, n: int, resolution, bounds, count: int, size: float, shape: str) -> torch.Tensor:
    """[n, *space] in [0, 1]: 1 inside `count` random periodic squares of side `size` (fraction of the
    domain), or the largest of `count` periodic gaussian bumps of std `size`."""
    coords = cell_centers(tuple(resolution), tuple(bounds))
    ndim = len(resolution)
    centres = torch.rand(n, max(count, 1), ndim, generator=gen, dtype=torch.float64)
    out = torch.zeros(n, *reversed(resolution), dtype=torch.float64)
    for j in range(count):
        offsets = []
        for d in range(ndim):
            delta = (coords[d] / bounds[d]).unsqueeze(0) - centres[:, j, d].reshape(-1, *[1] * ndim)
            offsets.append(torch.remainder(delta + 0.5, 1.0) - 0.5)  # periodic distance, fractions of the domain
        if shape == "square":
            inside = torch.stack([o.abs() <= size / 2 for o in offsets]).all(dim=0)
            out = torch.maximum(out, inside.to(torch.float64))
        else:
            bump = torch.exp(-sum(o**2 for o in offsets) / (2 * size**2))
            out = torch.maximum(out, bump)
    return out
