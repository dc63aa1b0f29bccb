"""Heat / diffusion with a diffusivity κ(x) (scalar or field), periodic or zero-Dirichlet walls.

    dT/dt = ∇·(κ ∇T)

Explicit conservative finite volumes; with periodic boundaries the mean of T is conserved exactly
(up to round-off). Dirichlet walls hold T = 0 on the boundary faces. κ is bounded by the explicit
stability limit κ h Σ 2/dx² <= 1 (times 0.9), h = dt / substeps.

Initial temperatures: random low Fourier modes (`init: fourier`), or a given profile with a random
variation per sample (`init: profile`, e.g. the HYCO paper's two gaussians): each height (a constant's
or sinusoid's value) is scaled by 1 + init_jitter N(0, 1) and each gaussian centre moved by
init_jitter x its width x N(0, 1) per axis (kept inside the domain); init_jitter = 0 repeats the profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from phiml.math import extrapolation

from hyco.config.errors import require
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.burgers import check_domain, diffusivity_spec
from hyco.physics.coefficients import (
    CoefficientParams,
    ProfileParams,
    domain_range,
    evaluate_profile,
    profile_axes,
    profile_numbers,
)
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import DIRICHLET, PERIODIC, diffusion
from hyco.registry import PHYSICS

INITS = ("fourier", "profile")


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
        init: str = "fourier"  # initial temperature: fourier (random modes) | profile (init_profile, varied)
        init_modes: int = 4  # fourier: random Fourier modes with |k| <= init_modes
        init_amplitude: float = 1.0  # fourier: max |T| of each sample
        init_profile: ProfileParams = field(default_factory=ProfileParams)  # profile: T at t = 0 before variation
        init_jitter: float = 0.0  # profile: relative random variation of heights and centres per sample

        def __post_init__(self) -> None:
            check_domain(self.resolution, self.bounds, self.dt, self.substeps)
            require(len(self.origin) in (0, len(self.resolution)), "origin",
                    f"{len(self.resolution)} numbers like resolution (x first), or []", list(self.origin))
            require(self.boundary in (PERIODIC, DIRICHLET), "boundary", "one of periodic, dirichlet", self.boundary)
            self.diffusivity.check("diffusivity", len(self.resolution))
            require(self.init_modes >= 1, "init_modes", "an integer >= 1", self.init_modes)
            require(self.init_amplitude > 0, "init_amplitude", "a number > 0", self.init_amplitude)
            require(self.init in INITS, "init", f"one of {', '.join(INITS)}", self.init)
            require(self.init_jitter >= 0, "init_jitter", "a number >= 0", self.init_jitter)
            if self.init == "profile":
                self.init_profile.check("init_profile", len(self.resolution), "field")
                ranges = domain_range(self.init_profile.units, tuple(self.bounds), tuple(self.origin) or None)
                for j, centre in enumerate(self.init_profile.centers if self.init_profile.type == "gaussians" else []):
                    require(all(lo <= c <= hi for c, (lo, hi) in zip(centre, ranges)), f"init_profile.centers[{j}]",
                            "a centre inside the domain", list(centre))

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
        if p.init == "profile":
            return {"temperature": self._varied_profiles(gen, n).unsqueeze(1)}
        t = fourier_fields(gen, n, 1, self.resolution, self.bounds, p.init_modes, walls=self.boundary == DIRICHLET)
        return {"temperature": normalise_max(t, p.init_amplitude)}

    def _varied_profiles(self, gen, n: int) -> torch.Tensor:
        """[n, *space]: `init_profile` with its heights and centres varied per sample (module docstring)."""
        profile, jitter = self.params.init_profile, self.params.init_jitter
        base = profile_numbers(profile)
        axes = profile_axes(profile, self.resolution, self.bounds, self.origin)
        ranges = torch.tensor(domain_range(profile.units, self.bounds, self.origin), dtype=torch.float64)
        out = []
        for _ in range(n):
            numbers = dict(base)
            if profile.type == "gaussians":
                heights, centers = base["heights"], base["centers"]
                numbers["heights"] = heights * (1 + jitter * torch.randn(heights.shape, generator=gen,
                                                                          dtype=torch.float64))
                shift = jitter * base["widths"][:, None] * torch.randn(centers.shape, generator=gen,
                                                                        dtype=torch.float64)
                numbers["centers"] = torch.clamp(centers + shift, ranges[:, 0], ranges[:, 1])
            else:
                numbers["value"] = base["value"] * (1 + jitter * torch.randn((), generator=gen, dtype=torch.float64))
            out.append(evaluate_profile(profile.type, numbers, axes, list(profile.wavenumber)))
        return torch.stack(out)
