"""Parametric coefficients: a field made by a profile whose learned unknowns are a few of its numbers.

The HYCO paper's heat case learns a diffusivity made of a known background and two gaussian bumps whose
heights and centres are unknown: four to six numbers instead of a value per cell. Here the config names
the learned groups of the profile (`parameters: [heights, centers]`, see `GROUPS`); the other numbers
are known and taken from the truth.

Bounds that hold for every trial point. Each learned number x lives in a closed interval [lo, hi] and is
learned as an unconstrained raw number r, x = lo + (hi - lo) sigmoid(r) (x = lo + exp(r) when hi is
infinite). The intervals are checked, or chosen by default, so that the WORST field any numbers in them
can make stays strictly inside the coefficient's (lower, upper) -- its positivity bound and the explicit
scheme's stability limit:

    constant:   [v_lo, v_hi]
    gaussians:  [v_lo + sum_j min(h_lo_j, 0),  v_hi + sum_j max(h_hi_j, 0)]   (bumps may meet: centres move)
    sinusoid:   extremes of v (1 + a s) over v in [v_lo, v_hi], a s in [-A, A], A = max |amplitude|

so no optimiser step -- an L-BFGS-B line search or an Adam step -- can leave the stable region.

Default intervals (a learned group without `parameter_bounds`): centres anywhere in the domain; widths
from half a cell to the domain size; heights from 0 (or the room below the background, if a guessed
height is negative) up to the room left under the upper bound, shared by the bumps; the value
(background, mean) in the room the other numbers leave; when value and heights (or amplitude) are both
learned with default bounds, the value gets the lower half of the room (amplitude: |a| <= 0.5); phases in
[-2 pi, 2 pi]. The guess (and the truth, which must be recoverable) must lie inside the intervals.
"""

from __future__ import annotations

import math as pymath

import torch

from hyco.errors import ConfigError
from hyco.physics.coefficients import (
    GROUPS,
    CoefficientParams,
    CoefficientSpec,
    domain_range,
    evaluate_profile,
    profile_axes,
    profile_numbers,
)

_ROOM = 1e-6  # default intervals keep this fraction of (upper - lower) away from the coefficient's bounds
_EPS = 1e-6  # how close to an interval's end `encode` may put a number (keeps raw numbers finite)
_DEFAULT_AMPLITUDE = 0.5  # |amplitude| when a sinusoid's mean and amplitude are both learned with default bounds
_MAX_AMPLITUDE = 0.95


class ParametricCoefficient:
    """One parametric coefficient: its learned numbers, their intervals, and raw <-> numbers <-> field."""

    def __init__(self, key: str, config: CoefficientParams, spec: CoefficientSpec, resolution, bounds, origin=None):
        self.key = key  # config key for error messages, e.g. "physics.diffusivity"
        self.spec = spec
        self.profile_type = config.truth.type
        self.wavenumber = list(config.truth.wavenumber)
        self.groups = [g for g in GROUPS[self.profile_type] if g in config.parameters]  # canonical order
        self._truth = profile_numbers(config.truth)
        self._guess = profile_numbers(config.effective_guess())
        self._axes64 = profile_axes(config.truth, tuple(resolution), tuple(bounds), origin)
        self._axes: dict[tuple, list[torch.Tensor]] = {}
        self.shapes = {g: tuple(self._truth[g].shape) for g in self.groups}
        ranges = domain_range(config.truth.units, tuple(bounds), origin)
        self._check_centres(config, ranges)
        intervals = self._intervals(config, ranges, tuple(resolution), tuple(bounds))
        self.lower = torch.cat([intervals[g][0].reshape(-1) for g in self.groups])
        self.upper = torch.cat([intervals[g][1].reshape(-1) for g in self.groups])
        self.worst_case = self._worst_case(intervals)
        self._check_worst_case(config)
        for which, numbers in (("guess", self._guess), ("truth", self._truth)):
            self._check_inside(which, numbers, intervals, strict=which == "guess")

    # ------------------------------------------------------------------ numbers <-> raw <-> field
    @property
    def size(self) -> int:
        return int(self.lower.numel())

    def true_numbers(self) -> dict[str, torch.Tensor]:
        return {g: self._truth[g].clone() for g in self.groups}

    def guess_numbers(self) -> dict[str, torch.Tensor]:
        return {g: self._guess[g].clone() for g in self.groups}

    def encode(self, numbers: dict[str, torch.Tensor]) -> torch.Tensor:
        """Learned numbers (by group) -> the flat raw vector; numbers at an interval's end move just inside."""
        x = torch.cat([torch.as_tensor(numbers[g]).reshape(-1) for g in self.groups])
        lo, hi = self.lower.to(x), self.upper.to(x)
        finite = torch.isfinite(hi)
        span = torch.where(finite, hi - lo, torch.ones_like(lo))
        s = torch.clamp((x - lo) / span, _EPS, 1 - _EPS)
        logit = torch.log(s) - torch.log1p(-s)
        return torch.where(finite, logit, torch.log(torch.clamp(x - lo, min=_EPS)))

    def decode(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """Flat raw vector -> learned numbers by group (differentiable, in raw's dtype and device)."""
        raw = torch.as_tensor(raw)
        if raw.shape != (self.size,):
            raise ValueError(f"{self.key}: raw parameters of shape [{self.size}] expected, got {list(raw.shape)}")
        lo, hi = self.lower.to(raw), self.upper.to(raw)
        finite = torch.isfinite(hi)
        span = torch.where(finite, hi - lo, torch.ones_like(lo))
        # torch.where passes zero gradient to the branch it does not take; the exp branch's argument is
        # zeroed there so that neither branch can overflow into inf * 0 = nan on the backward pass
        x = torch.where(finite, lo + span * torch.sigmoid(raw), lo + torch.exp(torch.where(finite, 0 * raw, raw)))
        out, offset = {}, 0
        for g in self.groups:
            n = pymath.prod(self.shapes[g])
            out[g] = x[offset:offset + n].reshape(self.shapes[g])
            offset += n
        return out

    def field(self, raw: torch.Tensor) -> torch.Tensor:
        """The coefficient field [*space] made by the raw numbers (known numbers from the truth)."""
        raw = torch.as_tensor(raw)
        learned = self.decode(raw)
        numbers = {g: learned[g] if g in learned else v.to(raw) for g, v in self._truth.items()}
        return evaluate_profile(self.profile_type, numbers, self._axes_for(raw), self.wavenumber)

    def _axes_for(self, like: torch.Tensor) -> list[torch.Tensor]:
        key = (like.device, like.dtype)
        if key not in self._axes:
            self._axes[key] = [a.to(device=like.device, dtype=like.dtype) for a in self._axes64]
        return self._axes[key]

    # ------------------------------------------------------------------ intervals and checks
    def _fail(self, suffix: str, expected: str, got) -> None:
        raise ConfigError(f"{self.key}.{suffix}", expected, got)

    def _check_centres(self, config: CoefficientParams, ranges) -> None:
        if self.profile_type != "gaussians":
            return
        where = "fractions in [0, 1]" if config.truth.units == "fraction" else \
            "coordinates inside the domain " + " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in ranges)
        profiles = [("truth", config.truth)] + ([("guess", config.guess)] if "centers" in self.groups else [])
        for which, profile in profiles:
            for j, centre in enumerate(profile.centers):
                if not all(lo <= float(c) <= hi for c, (lo, hi) in zip(centre, ranges)):
                    self._fail(f"{which}.centers[{j}]", where, list(centre))

    def _value_range(self, intervals) -> tuple[float, float]:
        lo, hi = intervals.get("value", (self._truth["value"], self._truth["value"]))
        return float(lo), float(hi)

    def _intervals(self, config: CoefficientParams, ranges, resolution, bounds
                   ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """[lo, hi] per learned group (tensors shaped like the group): the user's, else the defaults."""
        lower = self.spec.lower
        upper = self.spec.upper if self.spec.upper is not None else pymath.inf
        room = _ROOM * ((upper - lower) if pymath.isfinite(upper) else max(1.0, abs(lower)))
        given = {g: (float(b[0]), float(b[1])) for g, b in config.parameter_bounds.items()}
        out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

        def put(group: str, lo, hi) -> None:
            shape = self.shapes[group]
            lo_t = torch.as_tensor(lo, dtype=torch.float64).expand(shape).clone()
            hi_t = torch.as_tensor(hi, dtype=torch.float64).expand(shape).clone()
            if not bool((lo_t < hi_t).all()):
                self._fail("parameter_bounds", f"room for the learned {group} inside the coefficient's bounds "
                           f"({lower:.6g}, {upper:.6g}) next to the other numbers; set parameter_bounds",
                           [float(lo_t.min()), float(hi_t.max())])
            out[group] = (lo_t, hi_t)

        for group, (lo, hi) in given.items():  # the user's, range-checked per group
            if group == "widths" and lo <= 0:
                self._fail(f"parameter_bounds.{group}", "[lower, upper] with lower > 0", [lo, hi])
            if group == "amplitude" and not (lo > -1 and hi < 1):
                self._fail(f"parameter_bounds.{group}", "[lower, upper] inside (-1, 1)", [lo, hi])
            if group == "centers" and not all(r_lo <= lo and hi <= r_hi for r_lo, r_hi in ranges):
                self._fail(f"parameter_bounds.{group}", "an interval inside the domain on every axis "
                           f"({', '.join(f'[{a:g}, {b:g}]' for a, b in ranges)})", [lo, hi])
            if not (pymath.isfinite(lo) and hi > lo):
                self._fail(f"parameter_bounds.{group}", "[lower, upper] with a finite lower < upper", [lo, hi])
            put(group, lo, hi)

        learned = set(self.groups)
        default = learned - set(given)
        if "centers" in default:
            lo = torch.tensor([r[0] for r in ranges], dtype=torch.float64)
            hi = torch.tensor([r[1] for r in ranges], dtype=torch.float64)
            put("centers", lo, hi)
        if "widths" in default:  # from half a cell to the domain's size
            if config.truth.units == "domain":
                put("widths", 0.5 * min(b / n for b, n in zip(bounds, resolution)), max(bounds))
            else:
                put("widths", 0.5 / max(resolution), 1.0)
        if "phase" in default:
            put("phase", -2 * pymath.pi, 2 * pymath.pi)

        lower_in, upper_in = lower + room, upper - room  # what the worst case may reach
        if self.profile_type == "constant" and "value" in default:
            put("value", lower_in, upper_in)
        elif self.profile_type == "gaussians":
            both = {"value", "heights"} <= default
            if "value" in default:
                if both:
                    v_hi = lower + 0.5 * (upper - lower) if pymath.isfinite(upper) else pymath.inf
                    put("value", lower_in, v_hi)
                else:
                    h_lo, h_hi = out.get("heights", (self._truth["heights"], self._truth["heights"]))
                    put("value", lower_in - float(torch.clamp(h_lo, max=0).sum()),
                        upper_in - float(torch.clamp(h_hi, min=0).sum()))
            if "heights" in default:
                n = max(1, self.shapes["heights"][0])
                v_lo, v_hi = self._value_range(out)
                h_lo = 0.0 if bool((self._guess["heights"] >= 0).all()) else -(v_lo - lower_in) / n
                put("heights", h_lo, (upper_in - v_hi) / n if pymath.isfinite(upper_in) else pymath.inf)
        elif self.profile_type == "sinusoid":
            both = {"value", "amplitude"} <= default
            if "amplitude" in default:
                if both:
                    amplitude = _DEFAULT_AMPLITUDE
                else:
                    v_lo, v_hi = self._value_range(out)
                    amplitude = _largest_amplitude(v_lo, v_hi, lower_in, upper_in)
                put("amplitude", -amplitude, amplitude)
            if "value" in default:
                a_lo, a_hi = out.get("amplitude", (self._truth["amplitude"], self._truth["amplitude"]))
                a = max(abs(float(a_lo)), abs(float(a_hi)))
                v_lo = lower_in / (1 - a) if lower_in > 0 else lower_in / (1 + a)
                v_hi = upper_in / (1 + a) if upper_in > 0 else upper_in / (1 - a)
                put("value", v_lo, v_hi)
        return out

    def _worst_case(self, intervals) -> tuple[float, float]:
        """The smallest and largest field value any numbers inside the intervals can make."""
        v_lo, v_hi = self._value_range(intervals)
        if self.profile_type == "constant":
            return v_lo, v_hi
        if self.profile_type == "gaussians":
            h_lo, h_hi = intervals.get("heights", (self._truth["heights"], self._truth["heights"]))
            return (v_lo + float(torch.clamp(h_lo, max=0).sum()), v_hi + float(torch.clamp(h_hi, min=0).sum()))
        a_lo, a_hi = intervals.get("amplitude", (self._truth["amplitude"], self._truth["amplitude"]))
        a = max(abs(float(a_lo)), abs(float(a_hi)))
        corners = [v * (1 + s) for v in (v_lo, v_hi) for s in (-a, a)]
        corners = [c for c in corners if not pymath.isnan(c)]
        return min(corners), max(corners)

    def _check_worst_case(self, config: CoefficientParams) -> None:
        low, high = self.worst_case
        upper = self.spec.upper
        if low > self.spec.lower and (upper is None or high < upper):
            return
        limit = "inf" if upper is None else f"{upper:.6g}"
        key = "parameter_bounds" if config.parameter_bounds else "parameters"
        self._fail(key, f"bounds whose every reachable field stays inside ({self.spec.lower:.6g}, {limit}) (positivity "
                   "and 0.9 x the explicit stability limit)", f"fields from {low:.6g} to {high:.6g}")

    def _check_inside(self, which: str, numbers, intervals, strict: bool) -> None:
        for group in self.groups:
            lo, hi = intervals[group]
            value = numbers[group]
            inside = (value > lo) & (value < hi) if strict else (value >= lo) & (value <= hi)
            if not bool(inside.all()):
                self._fail(f"{which}.{group}", f"numbers inside the learned interval(s) of {group} "
                           f"[{float(lo.min()):.6g}, {float(hi.max()):.6g}] (set parameter_bounds.{group})",
                           value.tolist())


def _largest_amplitude(v_lo: float, v_hi: float, lower: float, upper: float) -> float:
    """The largest |amplitude| <= 0.95 for which v (1 + a s) stays in [lower, upper] for v in [v_lo, v_hi]."""
    def fits(a: float) -> bool:
        corners = [v * (1 + s) for v in (v_lo, v_hi) for s in (-a, a)]
        return min(corners) >= lower and max(corners) <= upper

    if not fits(0.0):
        return 0.0
    lo, hi = 0.0, _MAX_AMPLITUDE
    if fits(hi):
        return hi
    for _ in range(60):  # bisection: the corners are monotone in a
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
