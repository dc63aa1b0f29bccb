"""Learnable coefficients: their config (named profiles built from numbers, never parsed code), their
bounds, and the unconstrained parametrisation that keeps them inside those bounds while learning.

Why a parametrisation: line searches (L-BFGS-B) and Adam happily step a viscosity to a negative value
or past the explicit scheme's stability limit, where the solver blows up. Learning an unconstrained
``raw`` number that is mapped smoothly into ``(lower, upper)`` makes every step physical.

Three kinds: ``scalar`` (one number), ``field`` (a value per cell), ``parametric`` (a field made by a
profile whose learned unknowns are some of the profile's own numbers, see `hyco.physics.parametric`).
"""

from __future__ import annotations

import copy
import dataclasses
import math as pymath
from dataclasses import dataclass, field
from typing import Any

import torch

from hyco.config.errors import require

PROFILES = ("constant", "sinusoid", "gaussians")
KINDS = ("scalar", "field", "parametric")
UNITS = ("fraction", "domain")
# The numbers of each profile that a parametric coefficient can learn (`parameters`), by group name.
GROUPS = {"constant": ("value",), "sinusoid": ("value", "amplitude", "phase"),
          "gaussians": ("value", "heights", "centers", "widths")}
# Keys of a coefficient's config that do not change the generated data (left out of the dataset hash).
LEARNING_KEYS = ("guess", "learn", "parameters", "parameter_bounds")
_EPS = 1e-6  # how close to a bound `encode` may put a value (keeps raw parameters finite)


@dataclass(frozen=True)
class CoefficientSpec:
    """A learnable coefficient: a scalar or a field on the cell centres, kept in (lower, upper)."""

    name: str
    kind: str  # "scalar" | "field" | "parametric" (a field made by a profile with learned numbers)
    lower: float
    upper: float | None = None


@dataclass
class ProfileParams:
    """A coefficient's values in space, from numbers only.

    constant:  value
    sinusoid:  value * (1 + amplitude * sin(2 pi sum_d wavenumber_d x_d / L_d + phase))
    gaussians: value + sum_j heights_j * exp(-|x - centers_j|^2 / (2 widths_j^2))

    x_d runs from 0 to the domain size L_d for the sinusoid. For the gaussians, `units` says what x,
    the centres and the widths are: `fraction` (x/L, fractions of the domain, the default) or `domain`
    (coordinates of the domain, which start at the model's `origin`, and lengths in its units).
    """

    type: str = "constant"  # constant | sinusoid | gaussians
    value: float = 0.0
    amplitude: float = 0.5
    wavenumber: list[int] = field(default_factory=lambda: [1])  # periods per axis, x first
    phase: float = 0.0
    centers: list[list[float]] = field(default_factory=list)  # one [x, y, ...] per bump, fractions in [0, 1]
    widths: list[float] = field(default_factory=list)  # std of each bump, fraction of the domain
    heights: list[float] = field(default_factory=list)  # amplitude of each bump
    units: str = "fraction"  # gaussians: centres and widths in fractions of the domain | domain coordinates

    def check(self, key: str, ndim: int, kind: str) -> None:
        require(self.type in PROFILES, f"{key}.type", f"one of {', '.join(PROFILES)}", self.type)
        require(self.units in UNITS, f"{key}.units", f"one of {', '.join(UNITS)}", self.units)
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

    kind: str = "scalar"  # scalar | field | parametric
    learn: bool = True  # false: known coefficient (the truth is used, the guess ignored, nothing is learned)
    truth: ProfileParams = field(default_factory=lambda: _constant(1.0))
    guess: ProfileParams = field(default_factory=lambda: _constant(1.0))
    # kind parametric: the numbers of the profile that are learned (see GROUPS); the others are known
    # (taken from the truth), and the guess only needs the learned ones.
    parameters: list[str] = field(default_factory=list)
    # kind parametric, optional: [lower, upper] per learned group (e.g. heights: [0, 4]); defaults keep
    # every reachable field inside the coefficient's bounds (hyco.physics.parametric)
    parameter_bounds: dict[str, Any] = field(default_factory=dict)  # group -> [lower, upper]

    def check(self, key: str, ndim: int) -> None:
        require(self.kind in KINDS, f"{key}.kind", f"one of {', '.join(KINDS)}", self.kind)
        self.truth.check(f"{key}.truth", ndim, self.kind)
        if self.kind != "parametric":
            self.guess.check(f"{key}.guess", ndim, self.kind)
            require(not self.parameters, f"{key}.parameters", "an empty list unless kind is parametric",
                    list(self.parameters))
            require(not self.parameter_bounds, f"{key}.parameter_bounds", "empty unless kind is parametric",
                    dict(self.parameter_bounds))
            return
        groups = GROUPS[self.truth.type]
        names = list(self.parameters)
        require(len(names) >= 1, f"{key}.parameters",
                f"at least one number of the {self.truth.type} profile to learn ({', '.join(groups)})", names)
        for name in names:
            require(name in groups, f"{key}.parameters",
                    f"numbers of the {self.truth.type} profile ({', '.join(groups)})", name)
        require(len(set(names)) == len(names), f"{key}.parameters", "each number once", names)
        require(self.guess.type == self.truth.type, f"{key}.guess.type",
                f"the truth's profile type ({self.truth.type}) for a parametric coefficient", self.guess.type)
        require(self.guess.units == self.truth.units, f"{key}.guess.units",
                f"the truth's units ({self.truth.units})", self.guess.units)
        for name, pair in self.parameter_bounds.items():
            require(name in names, f"{key}.parameter_bounds",
                    f"bounds only for learned numbers ({', '.join(names)})", name)
            numbers = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(b, (int, float)) and not isinstance(b, bool) for b in pair)
            ok = numbers and float(pair[0]) < float(pair[1])
            require(ok, f"{key}.parameter_bounds.{name}", "[lower, upper]: two numbers with lower < upper",
                    list(pair) if isinstance(pair, (list, tuple)) else pair)
        if self.truth.type == "gaussians":
            n = len(self.truth.centers)
            for name in ("heights", "widths", "centers"):
                if name in names:
                    require(len(getattr(self.guess, name)) == n, f"{key}.guess.{name}",
                            f"{n} entries (one per bump of the truth)", list(getattr(self.guess, name)))
        self.effective_guess().check(f"{key}.guess", ndim, self.kind)

    def effective_guess(self) -> ProfileParams:
        """The profile learning starts from: for a parametric coefficient the truth's known numbers with
        the guess's learned ones; otherwise the guess itself."""
        if self.kind != "parametric":
            return self.guess
        return dataclasses.replace(self.truth, **{name: copy.deepcopy(getattr(self.guess, name))
                                                  for name in self.parameters})


def coefficient(kind: str, truth: float, guess: float) -> CoefficientParams:
    """Default factory helper for a model's Params: constant truth and guess."""
    return CoefficientParams(kind=kind, truth=_constant(truth), guess=_constant(guess))


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


def domain_range(units: str, bounds: tuple[float, ...], origin: tuple[float, ...] | None) -> list[tuple[float, float]]:
    """Per axis, where a gaussian centre may lie in the given units: [0, 1], or the domain's extent."""
    if units == "fraction":
        return [(0.0, 1.0)] * len(bounds)
    origin = tuple(origin) if origin is not None else (0.0,) * len(bounds)
    return [(float(o), float(o) + float(b)) for o, b in zip(origin, bounds)]


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
