"""Heat / diffusion with a diffusivity κ(x) (scalar or field), periodic or zero-Dirichlet walls.

    dT/dt = ∇·(κ ∇T)

Explicit conservative finite volumes; with periodic boundaries the mean of T is conserved exactly
(up to round-off). Dirichlet walls hold T = 0 on the boundary faces. κ is bounded by the explicit
stability limit κ h Σ 2/dx² <= g (times 0.9), h = dt / substeps, g the time step's stability gain (1 for
Euler and Heun, 1.26 for SSPRK3, 1.39 for RK4: hyco.physics.time_step).

Initial temperatures: random low Fourier modes (`init: fourier`), or a given profile with a random
variation per sample (`init: profile`, e.g. the HYCO paper's two gaussians): each height (a constant's
or sinusoid's value) is scaled by 1 + init_jitter N(0, 1) and each gaussian centre moved by
init_jitter x its width x N(0, 1) per axis (kept inside the domain); init_jitter = 0 repeats the profile.
"""

from __future__ import annotations

import torch
from phiml.math import extrapolation

from hyco.config.models.physics import HeatDecayParams, HeatParams
from hyco.config.registry import PHYSICS
from hyco.physics.base import PhysicalModel
from hyco.physics.burgers import diffusivity_spec
from hyco.physics.coefficients import (
    CoefficientSpec,
    domain_range,
    evaluate_profile,
    profile_axes,
    profile_numbers,
)
from hyco.physics.initial import fourier_fields, normalise_max
from hyco.physics.ops import DIRICHLET, PERIODIC, diffusion


@PHYSICS.register("heat")
class Heat(PhysicalModel):
    """Diffusion of a scalar temperature with a learnable diffusivity."""

    Params = HeatParams  # the config schema, torch-free (hyco.config.models.physics)

    def setup(self, p: Params) -> None:
        self.boundary = p.boundary
        self.set_domain_from(p)
        spec = diffusivity_spec("diffusivity", p.diffusivity.kind, self.dx, self.substep_dt, self.stability_gain)
        self.set_coefficients((spec, p.diffusivity))

    def field_boundary(self, spec):
        return extrapolation.PERIODIC if self.boundary == PERIODIC else extrapolation.ZERO

    def rate(self, state, coefficients):
        return {"temperature": diffusion(state["temperature"].values, coefficients["diffusivity"], self.dx,
                                         self.boundary)}

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


@PHYSICS.register("heat_decay")
class HeatDecay(Heat):
    """Heat with a first-order decay, dT/dt = ∇·(κ∇T) − r(x) T: `heat` plus the term it lacks.

    The missing-physics experiments simulate their data with it (`data.reference.physics`) and learn with
    `heat`, whose κ then absorbs what r does. r is kept inside ±0.5 / h (h the substep), well within explicit
    Euler's bound |r h| < 2 for the term alone."""

    Params = HeatDecayParams

    def setup(self, p: Params) -> None:
        super().setup(p)
        bound = 0.5 / self.substep_dt
        decay = CoefficientSpec("decay", p.decay.kind, lower=-bound, upper=bound)
        self.set_coefficients(*zip(self.coefficient_specs, (p.diffusivity,)), (decay, p.decay))

    def rate(self, state, coefficients):
        temperature = state["temperature"].values
        heat = super().rate(state, coefficients)["temperature"]
        return {"temperature": heat - coefficients["decay"] * temperature}
