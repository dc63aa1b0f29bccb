"""Viscous Burgers, 1D or 2D (or 3D) from one implementation, periodic, viscosity scalar or field.

    du/dt + (u·∇)u = ∇·(ν ∇u)      (per velocity component; ν(x) may vary in space)

Per substep h: explicit conservative diffusion, then semi-Lagrangian self-advection.
ν is bounded by the explicit scheme's stability limit ν h Σ 2/dx² <= 1 (times a 0.9 safety factor).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hyco.config.errors import require
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.coefficients import CoefficientParams, CoefficientSpec, coefficient
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import PERIODIC, advect_periodic, diffusion, stability_limit
from hyco.registry import PHYSICS

SAFETY = 0.9  # fraction of the explicit stability limit allowed as the coefficient's upper bound
LOWER_FRACTION = 1e-4  # lower bound of a diffusivity, relative to its upper bound


def check_domain(resolution, bounds, dt: float, substeps: int, ndims=(1, 2, 3)) -> None:
    """Shared range checks of the domain keys (keys relative to the physics section)."""
    require(len(resolution) in ndims, "resolution", f"{' or '.join(map(str, ndims))} integers (x first)",
            list(resolution))
    require(all(n >= 4 for n in resolution), "resolution", "integers >= 4", list(resolution))
    require(len(bounds) == len(resolution), "bounds", f"{len(resolution)} numbers like resolution (x first)",
            list(bounds))
    require(all(b > 0 for b in bounds), "bounds", "numbers > 0", list(bounds))
    require(dt > 0, "dt", "a number > 0", dt)
    require(substeps >= 1, "substeps", "an integer >= 1", substeps)


def diffusivity_spec(name: str, kind: str, dx, substep_dt: float) -> CoefficientSpec:
    upper = SAFETY * stability_limit(dx, substep_dt)
    return CoefficientSpec(name, kind, lower=LOWER_FRACTION * upper, upper=upper)


@PHYSICS.register("burgers")
class Burgers(PhysicalModel):
    """Viscous Burgers on a periodic box; the dimension is the length of `resolution`."""

    @dataclass
    class Params:
        resolution: list[int] = field(default_factory=lambda: [32, 32])  # cells per axis, x first
        bounds: list[float] = field(default_factory=lambda: [1.0, 1.0])  # domain size per axis, x first
        dt: float = 0.02  # time between stored frames
        substeps: int = 4  # solver steps per stored frame
        viscosity: CoefficientParams = field(default_factory=lambda: coefficient("scalar", 0.02, 0.01))
        init_modes: int = 3  # initial velocity: random Fourier modes with |k| <= init_modes
        init_amplitude: float = 1.0  # initial velocity: max |u| of each sample

        def __post_init__(self) -> None:
            check_domain(self.resolution, self.bounds, self.dt, self.substeps)
            self.viscosity.check("viscosity", len(self.resolution))
            require(self.init_modes >= 1, "init_modes", "an integer >= 1", self.init_modes)
            require(self.init_amplitude > 0, "init_amplitude", "a number > 0", self.init_amplitude)

    boundary = PERIODIC

    def setup(self, p: Params) -> None:
        self.set_domain(p.resolution, p.bounds, p.dt, p.substeps)
        self.fields = (FieldSpec("velocity", self.ndim),)
        self.coefficient_specs = (diffusivity_spec("viscosity", p.viscosity.kind, self.dx, self.substep_dt),)
        self.coefficient_config = {"viscosity": p.viscosity}

    def step(self, state, coefficients, dt):
        u = state["velocity"]
        v = u.values + dt * diffusion(u.values, coefficients["viscosity"], self.dx, PERIODIC)
        v = advect_periodic(v, v, dt, self.dx)
        return {"velocity": u.with_values(v)}

    def sample_initial(self, gen, n):
        p = self.params
        u = fourier_fields(gen, n, self.ndim, self.resolution, self.bounds, p.init_modes)
        return {"velocity": normalise_max(u, p.init_amplitude)}
