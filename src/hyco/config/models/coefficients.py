"""The config of a learnable coefficient (`CoefficientParams`, `ProfileParams`): numbers only, checked
without torch, so that a `physics` section is validated before torch and PhiFlow are imported.
`hyco.physics.coefficients` builds tensors from them (and re-exports these names)."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

from hyco.config.fields import check_settings, setting
from hyco.errors import require

PROFILES = ("constant", "sinusoid", "gaussians")
KINDS = ("scalar", "field", "parametric")
UNITS = ("fraction", "domain")
# The numbers of each profile that a parametric coefficient can learn (`parameters`), by group name.
GROUPS = {"constant": ("value",), "sinusoid": ("value", "amplitude", "phase"),
          "gaussians": ("value", "heights", "centers", "widths")}
# Keys of a coefficient's config that do not change the generated data (left out of the dataset hash).
LEARNING_KEYS = ("guess", "learn", "parameters", "parameter_bounds")


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

    type: str = setting("constant", "The profile: `constant` (value), `sinusoid` (value · (1 + amplitude · "
                                    "sin(2π Σ k_d x_d / L_d + phase))) or `gaussians` (value plus bumps).",
                        choices=PROFILES)
    value: float = setting(0.0, "The constant; the sinusoid's mean; the gaussians' background.")
    amplitude: float = setting(0.5, "sinusoid: the relative amplitude.", allowed="a number in (-1, 1)")
    wavenumber: list[int] = setting([1], "sinusoid: periods per axis, x first (one number: the same on every axis).",
                                    allowed="1 or ndim integers")
    phase: float = setting(0.0, "sinusoid: the phase in radians.")
    centers: list[list[float]] = setting([], "gaussians: one centre [x, y, ...] per bump, in `units`.",
                                         allowed="ndim numbers per bump, inside the domain")
    widths: list[float] = setting([], "gaussians: the std of each bump, in `units`.", allowed="numbers > 0, one per "
                                                                                             "bump")
    heights: list[float] = setting([], "gaussians: the amplitude of each bump.", allowed="one number per bump")
    units: str = setting("fraction", "gaussians: centres and widths as fractions of the domain, or in the domain's "
                                     "coordinates (which start at the model's `origin`).", choices=UNITS)

    def check(self, key: str, ndim: int, kind: str) -> None:
        check_settings(self, f"{key}.")
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

    kind: str = setting("scalar", "What is learned: one number (`scalar`), a value per cell (`field`), or some "
                                  "numbers of the truth's profile (`parametric`).", choices=KINDS)
    learn: bool = setting(True, "false: a known coefficient (the truth is used, the guess ignored, nothing is "
                                "learned).")
    truth: ProfileParams = setting(_constant(1.0), "The profile the data are generated with.", kind="profile")
    guess: ProfileParams = setting(_constant(1.0), "The profile learning starts from (parametric: only its learned "
                                                   "numbers are needed).", kind="profile")
    parameters: list[str] = setting(
        [], "kind=parametric: the numbers of the profile that are learned; the others are known (taken from the "
            "truth).", allowed="groups of the truth's profile: value, amplitude, phase (sinusoid); value, heights, "
                               "centers, widths (gaussians)")
    parameter_bounds: dict[str, Any] = setting(
        {}, "kind=parametric, optional: [lower, upper] per learned group (e.g. heights: [0, 4]); the defaults keep "
            "every reachable field inside the coefficient's bounds.", allowed="[lower, upper] per learned group")

    def check(self, key: str, ndim: int) -> None:
        check_settings(self, f"{key}.")
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


def domain_range(units: str, bounds: tuple[float, ...], origin: tuple[float, ...] | None) -> list[tuple[float, float]]:
    """Per axis, where a gaussian centre may lie in the given units: [0, 1], or the domain's extent."""
    if units == "fraction":
        return [(0.0, 1.0)] * len(bounds)
    origin = tuple(origin) if origin is not None else (0.0,) * len(bounds)
    return [(float(o), float(o) + float(b)) for o, b in zip(origin, bounds)]
