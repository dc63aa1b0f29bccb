"""Passive advection of a density by a known static flow with a learnable modulation m (scalar or field).

    dρ/dt + (m(x) w(x))·∇ρ = 0        w: known, divergence-free, stored as a STATIC state channel

Semi-Lagrangian, periodic. The learnable part is m; the flow w of each sample is random (a stream
function of low Fourier modes). m is kept in (0, m_max) where m_max makes the largest displacement
per substep about one cell (m max|w_d| h <= dx, w_d a component): beyond it the interpolation
error grows quickly.
"""

from __future__ import annotations

import torch

from hyco.config.models.physics import AdvectionParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.coefficients import CoefficientSpec
from hyco.physics.initial import fourier_fields, gaussian_blobs, normalise_max
from hyco.physics.ops import PERIODIC, advect_periodic


def stream_flow(psi: torch.Tensor, dx: tuple[float, float]) -> torch.Tensor:
    """[n, 2, y, x] velocity (dψ/dy, -dψ/dx) of a periodic stream function [n, 1, y, x] (central differences)."""
    dpsi_dy = (torch.roll(psi, -1, dims=-2) - torch.roll(psi, 1, dims=-2)) / (2 * dx[1])
    dpsi_dx = (torch.roll(psi, -1, dims=-1) - torch.roll(psi, 1, dims=-1)) / (2 * dx[0])
    return torch.cat([dpsi_dy, -dpsi_dx], dim=1)


@PHYSICS.register("advection")
class Advection(PhysicalModel):
    """2D passive scalar in a known, modulated, divergence-free flow on a periodic box."""

    Params = AdvectionParams  # the config schema, torch-free (hyco.config.models.physics)

    boundary = PERIODIC

    def setup(self, p: Params) -> None:
        self.set_domain_from(p)
        upper = min(self.dx) / (p.flow_amplitude * self.substep_dt)
        self.set_coefficients((CoefficientSpec("modulation", p.modulation.kind, lower=0.0, upper=upper), p.modulation))

    def step(self, state, coefficients, dt):
        rho = state["density"]
        velocity = state["flow"].values * coefficients["modulation"]
        return {"density": rho.with_values(advect_periodic(rho.values, velocity, dt, self.dx))}

    def sample_initial(self, gen, n):
        p = self.params
        psi = fourier_fields(gen, n, 1, self.resolution, self.bounds, p.flow_modes)
        flow = normalise_max(stream_flow(psi, self.dx), p.flow_amplitude)
        density = gaussian_blobs(gen, n, self.resolution, self.bounds, p.blobs, p.blob_width)
        return {"density": density, "flow": flow}
