"""Viscous Burgers, 1D or 2D (or 3D) from one implementation, periodic, viscosity scalar or field.

    du/dt + (u·∇)u = ∇·(ν ∇u)      (per velocity component; ν(x) may vary in space)

Per substep h, with `time_step: euler` (the default): explicit conservative diffusion, then semi-Lagrangian
self-advection. The semi-Lagrangian interpolation diffuses numerically (about |u| dx / 2), differently on every
grid, so a viscosity learned from data made on a finer grid comes out biased low by it. With a Runge–Kutta
`time_step` the substep is the method of lines on `rate`: the same conservative diffusion plus (u·∇)u by
second-order central differences, which dissipate nothing (hyco.physics.ops.central_self_advection); that rate is
stable under RK4 and SSPRK3, whose stability regions hold part of the imaginary axis, for |u| h / dx up to
about 2.8 and 1.7 (Heun's holds none of it: with little viscosity it is only as stable as the viscosity makes it).
ν is bounded by the explicit scheme's stability limit ν h Σ 2/dx² <= 1 (times a 0.9 safety factor).
"""

from __future__ import annotations

from hyco.config.models.physics import BurgersParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.coefficients import CoefficientSpec
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import PERIODIC, advect_periodic, central_self_advection, diffusion, stability_limit

SAFETY = 0.9  # fraction of the explicit stability limit allowed as the coefficient's upper bound
LOWER_FRACTION = 1e-4  # lower bound of a diffusivity, relative to its upper bound


def diffusivity_spec(name: str, kind: str, dx, substep_dt: float, stability_gain: float = 1.0) -> CoefficientSpec:
    """Bounds of a diffusivity: 0.9 x the explicit stability limit (x the time step's stability gain)."""
    upper = SAFETY * stability_gain * stability_limit(dx, substep_dt)
    return CoefficientSpec(name, kind, lower=LOWER_FRACTION * upper, upper=upper)


@PHYSICS.register("burgers")
class Burgers(PhysicalModel):
    """Viscous Burgers on a periodic box; the dimension is the length of `resolution`."""

    Params = BurgersParams  # the config schema, torch-free (hyco.config.models.physics)

    boundary = PERIODIC

    def setup(self, p: Params) -> None:
        self.set_domain_from(p)
        spec = diffusivity_spec("viscosity", p.viscosity.kind, self.dx, self.substep_dt, self.stability_gain)
        self.set_coefficients((spec, p.viscosity))

    def step(self, state, coefficients, dt):
        u = state["velocity"]
        v = u.values + dt * diffusion(u.values, coefficients["viscosity"], self.dx, PERIODIC)
        v = advect_periodic(v, v, dt, self.dx)
        return {"velocity": u.with_values(v)}

    def rate(self, state, coefficients):
        u = state["velocity"].values
        return {"velocity": diffusion(u, coefficients["viscosity"], self.dx, PERIODIC)
                - central_self_advection(u, self.dx)}

    def sample_initial(self, gen, n):
        p = self.params
        u = fourier_fields(gen, n, self.ndim, self.resolution, self.bounds, p.init_modes)
        return {"velocity": normalise_max(u, p.init_amplitude)}
