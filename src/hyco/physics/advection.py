"""Passive advection of a density by a known static flow with a learnable modulation m (scalar or field).

    dρ/dt + (m(x) w(x))·∇ρ = 0        w: known, divergence-free, stored as a STATIC state channel

Semi-Lagrangian, periodic. The learnable part is m; the flow w of each sample is random (a stream
function of low Fourier modes). m is kept in (0, m_max) where m_max makes the largest displacement
per substep about one cell (m max|w_d| h <= dx, w_d a component): beyond it the interpolation
error grows quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from hyco.config.errors import require
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.burgers import check_domain
from hyco.physics.coefficients import CoefficientParams, CoefficientSpec, ProfileParams
from hyco.physics.initial import fourier_fields, gaussian_blobs, normalise_max
from hyco.physics.ops import PERIODIC, advect_periodic
from hyco.registry import PHYSICS


def _default_modulation() -> CoefficientParams:
    return CoefficientParams(
        kind="field",
        truth=ProfileParams(type="sinusoid", value=1.0, amplitude=0.5, wavenumber=[1, 1], phase=0.0),
        guess=ProfileParams(type="constant", value=0.8),
    )


def stream_flow(psi: torch.Tensor, dx: tuple[float, float]) -> torch.Tensor:
    """[n, 2, y, x] velocity (dψ/dy, -dψ/dx) of a periodic stream function [n, 1, y, x] (central differences)."""
    dpsi_dy = (torch.roll(psi, -1, dims=-2) - torch.roll(psi, 1, dims=-2)) / (2 * dx[1])
    dpsi_dx = (torch.roll(psi, -1, dims=-1) - torch.roll(psi, 1, dims=-1)) / (2 * dx[0])
    return torch.cat([dpsi_dy, -dpsi_dx], dim=1)


@PHYSICS.register("advection")
class Advection(PhysicalModel):
    """2D passive scalar in a known, modulated, divergence-free flow on a periodic box."""

    @dataclass
    class Params:
        resolution: list[int] = field(default_factory=lambda: [32, 32])  # cells per axis, x first
        bounds: list[float] = field(default_factory=lambda: [1.0, 1.0])  # domain size per axis, x first
        dt: float = 0.02  # time between stored frames
        substeps: int = 2  # solver steps per stored frame
        modulation: CoefficientParams = field(default_factory=_default_modulation)
        flow_modes: int = 2  # known flow: stream function of Fourier modes with |k| <= flow_modes
        flow_amplitude: float = 1.0  # known flow: max |w| of each sample
        blobs: int = 3  # initial density: number of gaussian blobs
        blob_width: float = 0.08  # initial density: blob std, fraction of the domain

        def __post_init__(self) -> None:
            check_domain(self.resolution, self.bounds, self.dt, self.substeps, ndims=(2,))
            self.modulation.check("modulation", 2)
            require(self.flow_modes >= 1, "flow_modes", "an integer >= 1", self.flow_modes)
            require(self.flow_amplitude > 0, "flow_amplitude", "a number > 0", self.flow_amplitude)
            require(self.blobs >= 1, "blobs", "an integer >= 1", self.blobs)
            require(0 < self.blob_width < 1, "blob_width", "a number in (0, 1)", self.blob_width)

    boundary = PERIODIC

    def setup(self, p: Params) -> None:
        self.set_domain(p.resolution, p.bounds, p.dt, p.substeps)
        self.fields = (FieldSpec("density", 1), FieldSpec("flow", 2, dynamic=False))
        upper = min(self.dx) / (p.flow_amplitude * self.substep_dt)
        self.coefficient_specs = (CoefficientSpec("modulation", p.modulation.kind, lower=0.0, upper=upper),)
        self.coefficient_config = {"modulation": p.modulation}

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
