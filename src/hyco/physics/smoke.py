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

from dataclasses import dataclass, field

from phi import math
from phi.physics import advect, fluid
from phiml.math import extrapolation

from hyco.config.errors import require
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.burgers import check_domain
from hyco.physics.coefficients import CoefficientParams, CoefficientSpec, ProfileParams
from hyco.physics.initial import gaussian_blobs
from hyco.registry import PHYSICS


def _default_buoyancy() -> CoefficientParams:
    return CoefficientParams(
        kind="scalar",
        truth=ProfileParams(type="constant", value=1.0),
        guess=ProfileParams(type="constant", value=0.5),
    )


@PHYSICS.register("smoke")
class Smoke(PhysicalModel):
    """Buoyant smoke in a closed 2D box."""

    @dataclass
    class Params:
        resolution: list[int] = field(default_factory=lambda: [32, 32])  # cells per axis, x first
        bounds: list[float] = field(default_factory=lambda: [1.0, 1.0])  # domain size per axis, x first
        dt: float = 0.05  # time between stored frames
        substeps: int = 2  # solver steps per stored frame
        buoyancy: CoefficientParams = field(default_factory=_default_buoyancy)
        pressure_tolerance: float = 1e-5  # CG: relative and absolute residual tolerance
        pressure_max_iterations: int = 1000  # CG iteration cap
        blobs: int = 2  # initial smoke: number of gaussian blobs (lower half of the box)
        blob_width: float = 0.08  # initial smoke: blob std, fraction of the domain

        def __post_init__(self) -> None:
            check_domain(self.resolution, self.bounds, self.dt, self.substeps, ndims=(2,))
            self.buoyancy.check("buoyancy", 2)
            require(self.pressure_tolerance > 0, "pressure_tolerance", "a number > 0", self.pressure_tolerance)
            require(self.pressure_max_iterations >= 1, "pressure_max_iterations", "an integer >= 1",
                    self.pressure_max_iterations)
            require(self.blobs >= 1, "blobs", "an integer >= 1", self.blobs)
            require(0 < self.blob_width < 1, "blob_width", "a number in (0, 1)", self.blob_width)

    boundary = "closed"
    # State-sized buffers autograd keeps per substep and window (sizes the physical trainer's batch):
    # measured 81-122 at 16x16 (MacCormack + staggered advection + the pressure solve's graph).
    memory_buffers_per_substep = 128

    def setup(self, p: Params) -> None:
        self.set_domain(p.resolution, p.bounds, p.dt, p.substeps)
        self.fields = (FieldSpec("velocity", 2, grid="staggered"), FieldSpec("smoke", 1))
        self.coefficient_specs = (CoefficientSpec("buoyancy", p.buoyancy.kind, lower=0.0, upper=None),)
        self.coefficient_config = {"buoyancy": p.buoyancy}
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
