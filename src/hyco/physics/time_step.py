"""How a model's substep integrates in time: explicit Euler, or an explicit Runge–Kutta scheme built from the
model's rate (`PhysicalModel.rate`, the time derivative of its dynamic fields).

Why: explicit Euler's O(h) error is the floor of a coefficient learned from data made elsewhere (issue 37: the
error fell fourfold with each fourfold cut of the substep). A scheme of order p makes it O(h^p) for p rate
evaluations per substep. The schemes are written as Butcher tableaux (`a`: the stages' weights of the earlier
rates, `b`: the final weights); Heun and SSPRK3 are the strong-stability-preserving ones (convex combinations of
Euler steps), RK4 the classical one. `STABILITY_GAIN`: the scheme's stability interval on the negative real axis
(where diffusion and damping reactions have their eigenvalues) over Euler's 2, by which the coefficient bounds of a
diffusion-limited model grow (for the same substep).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hyco.config.models.physics import TIME_STEPS


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge–Kutta scheme: stage i evaluates the rate at u + h Σ_j a[i][j] k_j; u_new = u + h Σ b_i k_i."""

    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    order: int
    stability_gain: float  # real-axis stability interval / 2 (explicit Euler's)

    @property
    def evaluations(self) -> int:
        return len(self.b)


SCHEMES: dict[str, Tableau] = {
    "euler": Tableau(a=((),), b=(1.0,), order=1, stability_gain=1.0),
    "heun": Tableau(a=((), (1.0,)), b=(0.5, 0.5), order=2, stability_gain=1.0),
    "ssprk3": Tableau(a=((), (1.0,), (0.25, 0.25)), b=(1 / 6, 1 / 6, 2 / 3), order=3, stability_gain=2.5127 / 2),
    "rk4": Tableau(a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), b=(1 / 6, 1 / 3, 1 / 3, 1 / 6), order=4,
                   stability_gain=2.7853 / 2),
}
assert tuple(SCHEMES) == TIME_STEPS  # the config's choices (torch-free) name these schemes


def scheme(name: str) -> Tableau:
    if name not in SCHEMES:
        raise ValueError(f"time step {name!r}: expected one of {list(SCHEMES)}")
    return SCHEMES[name]


def runge_kutta_step(tableau: Tableau, rate: Callable, state: dict, coefficients: dict, h: float) -> dict:
    """One substep of `tableau` from `state` (name -> Field): `rate(state, coefficients)` gives the time derivative
    (name -> values) of each dynamic field; returns the new dynamic Fields."""
    rates: list[dict] = []
    for weights in tableau.a:
        stage = dict(state)
        for name, field in state.items():
            increments = [w * k[name] for w, k in zip(weights, rates) if w != 0 and name in k]
            if increments:
                stage[name] = field.with_values(field.values + h * _sum(increments))
        rates.append(rate(stage, coefficients))
    out = {}
    for name in rates[0]:
        field = state[name]
        out[name] = field.with_values(field.values + h * _sum([w * k[name] for w, k in zip(tableau.b, rates)]))
    return out


def _sum(terms: list):
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
