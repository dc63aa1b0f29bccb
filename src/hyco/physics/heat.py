"""Heat / diffusion with a diffusivity κ(x) (scalar or field), periodic or zero-Dirichlet walls.

    dT/dt = ∇·(κ ∇T)

Explicit conservative finite volumes; with periodic boundaries the mean of T is conserved exactly
(up to round-off). Dirichlet walls hold T = 0 on the boundary faces. κ is bounded by the explicit
stability limit κ h Σ 2/dx² <= 1 (times 0.9), h = dt / substeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from phiml.math import extrapolation

from hyco.config.errors import require
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.burgers import check_domain, diffusivity_spec
from hyco.physics.coefficients import CoefficientParams, ProfileParams
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import DIRICHLET, PERIODIC, diffusion
from hyco.registry import PHYSICS


def _default_diffusivity() -> CoefficientParams:
    return CoefficientParams(
        kind="field",
        truth=ProfileParams(type="gaussians", value=0.01, centers=[[0.3, 0.3], [0.7, 0.6]], widths=[0.12, 0.15],
                            heights=[0.04, 0.03]),
        guess=ProfileParams(type="constant", value=0.02),
    )


@PHYSICS.register("heat")
class Heat(PhysicalModel):
    """Diffusion of a scalar temperature with a learnable diffusivity."""

    @dataclass
    class Params:
        resolution: list[int] = field(default_factory=lambda: [32, 32])  # cells per axis, x first
        bounds: list[float] = field(default_factory=lambda: [1.0, 1.0])  # domain size per axis, x first
        origin: list[float] = field(default_factory=list)  # coordinates of the lower corner, x first ([] = zeros)
        boundary: str = "periodic"  # periodic | dirichlet (T = 0 on the walls)
        dt: float = 0.01  # time between stored frames
        substeps: int = 4  # solver steps per stored frame
        diffusivity: CoefficientParams = field(default_factory=_default_diffusivity)
        init_modes: int = 4  # initial temperature: random Fourier modes with |k| <= init_modes
        init_amplitude: float = 1.0  # initial temperature: max |T| of each sample

        def __post_init__(self) -> None:
            check_domain(self.resolution, self.bounds, self.dt, self.substeps)
            require(len(self.origin) in (0, len(self.resolution)), "origin",
                    f"{len(self.resolution)} numbers like resolution (x first), or []", list(self.origin))
            require(self.boundary in (PERIODIC, DIRICHLET), "boundary", "one of periodic, dirichlet", self.boundary)
            self.diffusivity.check("diffusivity", len(self.resolution))
            require(self.init_modes >= 1, "init_modes", "an integer >= 1", self.init_modes)
            require(self.init_amplitude > 0, "init_amplitude", "a number > 0", self.init_amplitude)

    def setup(self, p: Params) -> None:
        self.boundary = p.boundary
        self.set_domain(p.resolution, p.bounds, p.dt, p.substeps, origin=p.origin or None)
        self.fields = (FieldSpec("temperature", 1),)
        self.coefficient_specs = (diffusivity_spec("diffusivity", p.diffusivity.kind, self.dx, self.substep_dt),)
        self.coefficient_config = {"diffusivity": p.diffusivity}

    def field_boundary(self, spec):
        return extrapolation.PERIODIC if self.boundary == PERIODIC else extrapolation.ZERO

    def step(self, state, coefficients, dt):
        t = state["temperature"]
        return {"temperature": t.with_values(
            t.values + dt * diffusion(t.values, coefficients["diffusivity"], self.dx, self.boundary))}

    def sample_initial(self, gen, n):
        p = self.params
        t = fourier_fields(gen, n, 1, self.resolution, self.bounds, p.init_modes, walls=self.boundary == DIRICHLET)
        return {"temperature": normalise_max(t, p.init_amplitude)}
