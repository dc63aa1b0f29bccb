"""Viscous Burgers, 1D or 2D (or 3D) from one implementation, periodic, viscosity scalar or field.

    du/dt + (u·∇)u = ∇·(ν ∇u)      (per velocity component; ν(x) may vary in space)

Per substep h: explicit conservative diffusion, then semi-Lagrangian self-advection.
ν is bounded by the explicit scheme's stability limit ν h Σ 2/dx² <= 1 (times a 0.9 safety factor).
"""

from __future__ import annotations

from hyco.config.models.physics import BurgersParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.coefficients import CoefficientSpec
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import PERIODIC, advect_periodic, diffusion, stability_limit

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
        self.set_coefficients((diffusivity_spec("viscosity", p.viscosity.kind, self.dx, self.substep_dt), p.viscosity))

    def step(self, state, coefficients, dt):
        u = state["velocity"]
        v = u.values + dt * diffusion(u.values, coefficients["viscosity"], self.dx, PERIODIC)
        v = advect_periodic(v, v, dt, self.dx)
        return {"velocity": u.with_values(v)}

    def sample_initial(self, gen, n):
        p = self.params
        u = fourier_fields(gen, n, self.ndim, self.resolution, self.bounds, p.init_modes)
        return {"velocity": normalise_max(u, p.init_amplitude)}
