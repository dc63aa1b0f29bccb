"""Learnable coefficients: their config (named profiles built from numbers, never parsed code), their
bounds, and the unconstrained parametrisation that keeps them inside those bounds while learning.

Why a parametrisation: line searches (L-BFGS-B) and Adam happily step a viscosity to a negative value
or past the explicit scheme's stability limit, where the solver blows up. Learning an unconstrained
``raw`` number that is mapped smoothly into ``(lower, upper)`` makes every step physical.
"""

from __future__ import annotations

import math as pymath
from dataclasses import dataclass, field

import torch

from hyco.config.errors import require

PROFILES = ("constant", "sinusoid", "gaussians")
KINDS = ("scalar", "field")
LEARNING_KEYS = ("guess", "learn")  # keys of a coefficient's config that do not change the generated data
_EPS = 1e-6  # how close to a bound `encode` may put a value (keeps raw parameters finite)


@dataclass(frozen=True)
class CoefficientSpec:
    """A learnable coefficient: a scalar or a field on the cell centres, kept in (lower, upper)."""

    name: str
    kind: str  # "scalar" | "field"
    lower: float
    upper: float | None = None


@dataclass
class ProfileParams:
    """A coefficient's values in space, from numbers only.

    constant:  value
    sinusoid:  value * (1 + amplitude * sin(2 pi sum_d wavenumber_d x_d / L_d + phase))
    gaussians: value + sum_j heights_j * exp(-|x/L - centers_j|^2 / (2 widths_j^2))  (fractions of the domain)
    """

    type: str = "constant"  # constant | sinusoid | gaussians
    value: float = 0.0
    amplitude: float = 0.5
    wavenumber: list[int] = field(default_factory=lambda: [1])  # periods per axis, x first
    phase: float = 0.0
    centers: list[list[float]] = field(default_factory=list)  # one [x, y, ...] per bump, fractions in [0, 1]
    widths: list[float] = field(default_factory=list)  # std of each bump, fraction of the domain
    heights: list[float] = field(default_factory=list)  # amplitude of each bump

    def check(self, key: str, ndim: int, kind: str) -> None:
        require(self.type in PROFILES, f"{key}.type", f"one of {', '.join(PROFILES)}", self.type)
        if kind == "scalar":
            require(self.type == "constant", f"{key}.type", "constant for a scalar coefficient", self.type)
        if self.type == "sinusoid":
            require(len(self.wavenumber) in (1, ndim), f"{key}.wavenumber", f"1 or {ndim} integers (x first)",
                    list(self.wavenumber))
            require(abs(self.amplitude) < 1, f"{key}.amplitude", "a number in (-1, 1) (keeps the sign of value)",
                    self.amplitude)
        if self.type == "gaussians":
            n = len(self.centers)
            require(n >= 1, f"{key}.centers", "at least one bump centre", list(self.centers))
            require(len(self.widths) == n, f"{key}.widths", f"{n} widths (one per centre)", list(self.widths))
            require(len(self.heights) == n, f"{key}.heights", f"{n} heights (one per centre)", list(self.heights))
            for j, c in enumerate(self.centers):
                require(len(c) == ndim, f"{key}.centers[{j}]", f"{ndim} fractions (x first)", list(c))
            require(all(w > 0 for w in self.widths), f"{key}.widths", "numbers > 0", list(self.widths))


def _constant(value: float) -> ProfileParams:
    return ProfileParams(type="constant", value=value)


@dataclass
class CoefficientParams:
    """Config of one coefficient: what is learned (kind), the truth used to generate data, the
    initial guess for learning, and whether it is learned at all (`learn: false`: the coefficient is
    known, the truth is used and never changed)."""

    kind: str = "scalar"  # scalar | field
    learn: bool = True  # false: known coefficient (the truth is used, the guess ignored, nothing is learned)
    truth: ProfileParams = field(default_factory=lambda: _constant(1.0))
    guess: ProfileParams = field(default_factory=lambda: _constant(1.0))

    def check(self, key: str, ndim: int) -> None:
        require(self.kind in KINDS, f"{key}.kind", "one of scalar, field", self.kind)
        self.truth.check(f"{key}.truth", ndim, self.kind)
        self.guess.check(f"{key}.guess", ndim, self.kind)


def coefficient(kind: str, truth: float, guess: float) -> CoefficientParams:
    """Default factory helper for a model's Params: constant truth and guess."""
    return CoefficientParams(kind=kind, truth=_constant(truth), guess=_constant(guess))


def cell_centers(resolution: tuple[int, ...], bounds: tuple[float, ...]) -> list[torch.Tensor]:
    """Per axis (x first), the cell-centre coordinates broadcast to the tensor-order grid (y, x)."""
    ndim = len(resolution)
    axes = []
    for d, (n, size) in enumerate(zip(resolution, bounds)):
        coords = (torch.arange(n, dtype=torch.float64) + 0.5) * (size / n)
        shape = [1] * ndim
        shape[ndim - 1 - d] = n  # tensor order is reversed: x is the last axis
        axes.append(coords.reshape(shape).expand(*reversed(resolution)))
    return axes


def build_profile(profile: ProfileParams, resolution: tuple[int, ...], bounds: tuple[float, ...]) -> torch.Tensor:
    """The profile on the cell centres, float64, shape in tensor order (y, x)."""
    coords = cell_centers(resolution, bounds)
    ndim = len(resolution)
    out = torch.full(tuple(reversed(resolution)), float(profile.value), dtype=torch.float64)
    if profile.type == "sinusoid":
        k = list(profile.wavenumber) if len(profile.wavenumber) == ndim else list(profile.wavenumber) * ndim
        arg = sum(2 * pymath.pi * k[d] * coords[d] / bounds[d] for d in range(ndim)) + profile.phase
        out = out * (1 + profile.amplitude * torch.sin(arg))
    elif profile.type == "gaussians":
        for center, width, height in zip(profile.centers, profile.widths, profile.heights):
            dist2 = sum((coords[d] / bounds[d] - center[d]) ** 2 for d in range(ndim))
            out = out + height * torch.exp(-dist2 / (2 * width**2))
    return out


def coefficient_value(params: CoefficientParams, which: str, resolution, bounds) -> torch.Tensor:
    """The truth or guess as a tensor: shape [] for a scalar coefficient, [*space] for a field."""
    profile = params.truth if which == "truth" else params.guess
    if params.kind == "scalar":
        return torch.tensor(float(profile.value), dtype=torch.float64)
    return build_profile(profile, tuple(resolution), tuple(bounds))


def check_in_bounds(value: torch.Tensor, spec: CoefficientSpec, key: str) -> None:
    """Config values must lie strictly inside the coefficient's bounds (they may depend on dt and dx)."""
    lo, hi = float(value.min()), float(value.max())
    upper = "inf" if spec.upper is None else f"{spec.upper:.6g}"
    require(lo > spec.lower and (spec.upper is None or hi < spec.upper), key,
            f"values in ({spec.lower:.6g}, {upper}) (the upper bound is the scheme's stability limit)",
            lo if lo <= spec.lower else hi)


def _log_bounded(spec: CoefficientSpec) -> bool:
    return spec.upper is not None and spec.lower > 0


def decode_value(raw: torch.Tensor, spec: CoefficientSpec) -> torch.Tensor:
    """Unconstrained raw parameter -> physical value in (lower, upper); smooth, monotone."""
    if spec.upper is None:
        return spec.lower + torch.exp(raw)
    s = torch.sigmoid(raw)
    if _log_bounded(spec):
        log_lo, log_hi = pymath.log(spec.lower), pymath.log(spec.upper)
        return torch.clamp(torch.exp(log_lo + (log_hi - log_lo) * s), spec.lower, spec.upper)  # round-off at ends
    return spec.lower + (spec.upper - spec.lower) * s


def encode_value(value: torch.Tensor, spec: CoefficientSpec) -> torch.Tensor:
    """Inverse of `decode_value`; values at or beyond a bound are moved just inside it."""
    if spec.upper is None:
        gap = torch.clamp(value - spec.lower, min=_EPS * max(1.0, abs(spec.lower)))
        return torch.log(gap)
    if _log_bounded(spec):
        log_lo, log_hi = pymath.log(spec.lower), pymath.log(spec.upper)
        s = (torch.log(torch.clamp(value, min=spec.lower)) - log_lo) / (log_hi - log_lo)
    else:
        s = (value - spec.lower) / (spec.upper - spec.lower)
    s = torch.clamp(s, _EPS, 1 - _EPS)
    return torch.log(s) - torch.log1p(-s)
