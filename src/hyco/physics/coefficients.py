"""Learnable coefficients: their config (named profiles built from numbers, never parsed code), their
bounds, and the unconstrained parametrisation that keeps them inside those bounds while learning.

Why a parametrisation: line searches (L-BFGS-B) and Adam happily step a viscosity to a negative value
or past the explicit scheme's stability limit, where the solver blows up. Learning an unconstrained
``raw`` number that is mapped smoothly into ``(lower, upper)`` makes every step physical.

Three kinds: ``scalar`` (one number), ``field`` (a value per cell), ``parametric`` (a field made by a
profile whose learned unknowns are some of the profile's own numbers, see `hyco.physics.parametric`).
"""

from __future__ import annotations

import math as pymath
from dataclasses import dataclass

import torch

from hyco.config.models.coefficients import (  # noqa: F401  (the config schema, re-exported)
    GROUPS,
    KINDS,
    LEARNING_KEYS,
    PROFILES,
    UNITS,
    CoefficientParams,
    ProfileParams,
    coefficient,
    domain_range,
)
from hyco.errors import require

_EPS = 1e-6  # how close to a bound `encode` may put a value (keeps raw parameters finite)


@dataclass(frozen=True)
class CoefficientSpec:
    """A learnable coefficient: a scalar or a field on the cell centres, kept in (lower, upper)."""

    name: str
    kind: str  # "scalar" | "field" | "parametric" (a field made by a profile with learned numbers)
    lower: float
    upper: float | None = None


def cell_centers(resolution: tuple[int, ...], bounds: tuple[float, ...]) -> list[torch.Tensor]:
    """Per axis (x first), the cell-centre coordinates from 0 broadcast to the tensor-order grid (y, x)."""
    ndim = len(resolution)
    axes = []
    for d, (n, size) in enumerate(zip(resolution, bounds)):
        coords = (torch.arange(n, dtype=torch.float64) + 0.5) * (size / n)
        shape = [1] * ndim
        shape[ndim - 1 - d] = n  # tensor order is reversed: x is the last axis
        axes.append(coords.reshape(shape).expand(*reversed(resolution)))
    return axes


def profile_numbers(profile: ProfileParams) -> dict[str, torch.Tensor]:
    """A profile's learnable numbers by group (float64): value, amplitude and phase [], heights and
    widths [n], centers [n, ndim]."""
    numbers = {"value": torch.tensor(float(profile.value), dtype=torch.float64)}
    if profile.type == "sinusoid":
        numbers["amplitude"] = torch.tensor(float(profile.amplitude), dtype=torch.float64)
        numbers["phase"] = torch.tensor(float(profile.phase), dtype=torch.float64)
    elif profile.type == "gaussians":
        numbers["heights"] = torch.tensor([float(h) for h in profile.heights], dtype=torch.float64)
        numbers["widths"] = torch.tensor([float(w) for w in profile.widths], dtype=torch.float64)
        numbers["centers"] = torch.tensor([[float(c) for c in center] for center in profile.centers],
                                          dtype=torch.float64).reshape(len(profile.centers), -1)
    return numbers


def profile_axes(profile: ProfileParams, resolution: tuple[int, ...], bounds: tuple[float, ...],
                 origin: tuple[float, ...] | None = None) -> list[torch.Tensor]:
    """The coordinates `evaluate_profile` needs for this profile (float64, per axis, tensor order)."""
    coords = cell_centers(tuple(resolution), tuple(bounds))
    if profile.type == "gaussians" and profile.units == "domain":
        origin = tuple(origin) if origin is not None else (0.0,) * len(bounds)
        return [c + float(o) for c, o in zip(coords, origin)]
    return [c / float(b) for c, b in zip(coords, bounds)]  # fractions of the domain


def evaluate_profile(profile_type: str, numbers: dict[str, torch.Tensor], axes: list[torch.Tensor],
                     wavenumber: list[int] | None = None) -> torch.Tensor:
    """The profile made by `numbers` (see `profile_numbers`) on the cell centres; differentiable in the
    numbers, in their dtype and on their device. `axes` from `profile_axes`."""
    value = numbers["value"]
    ndim = len(axes)
    if profile_type == "constant":
        return value * torch.ones_like(axes[0])
    if profile_type == "sinusoid":
        k = list(wavenumber or [1])
        k = k if len(k) == ndim else k * ndim
        arg = sum(2 * pymath.pi * k[d] * axes[d] for d in range(ndim)) + numbers["phase"]
        return value * (1 + numbers["amplitude"] * torch.sin(arg))
    out = value * torch.ones_like(axes[0])
    heights, centers, widths = numbers["heights"], numbers["centers"], numbers["widths"]
    for j in range(heights.shape[0]):
        dist2 = sum((axes[d] - centers[j, d]) ** 2 for d in range(ndim))
        out = out + heights[j] * torch.exp(-dist2 / (2 * widths[j] ** 2))
    return out


def build_profile(profile: ProfileParams, resolution: tuple[int, ...], bounds: tuple[float, ...],
                  origin: tuple[float, ...] | None = None) -> torch.Tensor:
    """The profile on the cell centres, float64, shape in tensor order (y, x)."""
    return evaluate_profile(profile.type, profile_numbers(profile), profile_axes(profile, resolution, bounds, origin),
                            list(profile.wavenumber))


def coefficient_value(params: CoefficientParams, which: str, resolution, bounds, origin=None) -> torch.Tensor:
    """The truth or guess as a tensor: shape [] for a scalar coefficient, [*space] for a field."""
    profile = params.truth if which == "truth" else params.effective_guess()
    if params.kind == "scalar":
        return torch.tensor(float(profile.value), dtype=torch.float64)
    return build_profile(profile, tuple(resolution), tuple(bounds), origin)


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
