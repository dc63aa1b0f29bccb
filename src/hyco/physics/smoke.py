"""Smoke: incompressible Navier–Stokes (inviscid) in a closed box, driven by buoyancy b(x) (scalar or field).

    ds/dt + u·∇s = 0
    du/dt + (u·∇)u = -∇p + b(x) s ŷ,     ∇·u = 0,     u·n = 0 on the walls

Staggered velocity (PhiFlow's closed-box StaggeredGrid), centred smoke density. Per substep h:
MacCormack advection of s, semi-Lagrangian self-advection of u, buoyancy, pressure projection
(conjugate gradient). The closed-box pressure problem is singular (pressure defined up to a
constant); PhiML's automatic rank-deficiency handling fails in float32, so the solve is told
`rank_deficiency=0` and CG finds a solution of the consistent system anyway (see PHIFLOW_NOTES).
b is kept positive (b = exp(raw)); no explicit-scheme limit applies to it.
"""

from __future__ import annotations

from phi import math
from phi.physics import advect, fluid
from phiml.math import extrapolation

from hyco.config.models.physics import SmokeParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.coefficients import CoefficientSpec
from hyco.physics.initial import gaussian_blobs


@PHYSICS.register("smoke")
class Smoke(PhysicalModel):
    """Buoyant smoke in a closed 2D box."""

    Params = SmokeParams  # the config schema, torch-free (hyco.config.models.physics)

    boundary = "closed"
    memory_buffers_per_substep = SmokeParams.memory_buffers_per_substep  # measured, see SmokeParams

    def setup(self, p: Params) -> None:
        self.set_domain_from(p)
        self.set_coefficients((CoefficientSpec("buoyancy", p.buoyancy.kind, lower=0.0, upper=None), p.buoyancy))
        self.solve = math.Solve("CG", p.pressure_tolerance, p.pressure_tolerance,
                                max_iterations=p.pressure_max_iterations, rank_deficiency=0)

    def field_boundary(self, spec):
        return extrapolation.ZERO if spec.name == "velocity" else extrapolation.ZERO_GRADIENT

    def step(self, state, coefficients, dt):
        v, s = state["velocity"], state["smoke"]
        s = advect.mac_cormack(s, v, dt)
        lift = s.with_values(s.values * coefficients["buoyancy"]) * (0, 1)
        v = advect.semi_lagrangian(v, v, dt) + dt * lift.at(v)
        v, _ = fluid.make_incompressible(v, (), self.solve)
        return {"velocity": v, "smoke": s}

    def sample_initial(self, gen, n):
        p = self.params
        smoke = gaussian_blobs(gen, n, self.resolution, self.bounds, p.blobs, p.blob_width, lower_half=True)
        velocity = smoke.new_zeros(n, 2, *self.spatial_shape)
        return {"velocity": velocity, "smoke": smoke}
