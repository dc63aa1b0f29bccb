"""Is the best model of a column better than the next one, or only luckier on these test simulations?

Two models are compared on the SAME test simulations, so the comparison is paired: per simulation i,
d_i = value of the runner-up − value of the best (lower is better; the sign is flipped when higher is), and
the 95 % confidence interval of the mean of d is Student's t-interval, mean(d) ± t(0.975, n−1) · sd(d)/√n.
The best model is called better only when that interval lies above 0. Pairing removes what the simulations
share (one hard initial state is hard for every model), so a small but consistent gain is found where two
unpaired spreads would overlap; the t-interval is exact for normal differences and robust enough for the
n of a test split, where a bootstrap would be too coarse to trust. Below `MIN_SIMS` simulations no verdict
is given at all: with one or two there is no estimate of the spread to speak of.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_SIMS = 3
CONFIDENCE = 0.95
WIN, TIE, TOO_FEW, NOTHING = "better", "tie", "not enough simulations", "nothing to compare"


@dataclass(frozen=True)
class PairedComparison:
    """The best model of one measure against the next best over the same simulations.

    `difference` is the mean over simulations of (runner-up − best) in the direction where positive favours the
    best, `low`/`high` its confidence interval; `verdict` is `better` (the interval excludes 0), `tie`, `not
    enough simulations` or `nothing to compare` (fewer than two models with a value on every simulation)."""

    best: str | None
    runner_up: str | None
    difference: float
    low: float
    high: float
    num_sims: int
    verdict: str
    confidence: float = CONFIDENCE

    @property
    def significant(self) -> bool:
        return self.verdict == WIN

    def describe(self, label=str, digits: int = 3) -> str:
        """One line for a reader, with `label` naming the models."""
        if self.verdict == NOTHING:
            return "nothing to compare"
        if self.verdict == TOO_FEW:
            return (f"{self.num_sims} test simulation{'s' if self.num_sims != 1 else ''}: not enough to tell "
                    f"{label(self.best)} from {label(self.runner_up)} (a verdict needs {MIN_SIMS})")
        interval = f"{self.confidence:.0%} interval {self.low:.{digits}g} to {self.high:.{digits}g}"
        if self.verdict == WIN:
            return (f"{label(self.best)} better than {label(self.runner_up)} by {self.difference:.{digits}g} "
                    f"({interval}, {self.num_sims} simulations)")
        return (f"{label(self.best)} and {label(self.runner_up)} tie (difference {self.difference:.{digits}g}, "
                f"{interval}, {self.num_sims} simulations)")


def paired_interval(better: Sequence[float], worse: Sequence[float],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of worse − better over paired values and its Student-t confidence interval (mean, low, high).

    With no spread at all (every difference the same) the interval is that one value."""
    d = np.asarray(worse, dtype=float) - np.asarray(better, dtype=float)
    if d.ndim != 1 or d.size < 2:
        raise ValueError(f"a paired interval needs two equal-length sequences of >= 2 values, got {d.shape}")
    mean = float(d.mean())
    sem = float(d.std(ddof=1)) / math.sqrt(d.size)
    if sem == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, d.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def compare_best(values: Mapping[str, Sequence[float | None]], lower_is_better: bool = True,
                 confidence: float = CONFIDENCE, min_sims: int = MIN_SIMS) -> PairedComparison:
    """The best model by its mean over simulations, against the runner-up, paired over the simulations.

    `values` maps each model to its per-simulation values (same simulations, same order). A model with a
    missing or non-finite value (a diverged rollout) takes no part: it can be neither best nor runner-up."""
    clean = {k: np.asarray(v, dtype=float) for k, v in values.items()
             if v is not None and len(v) and all(x is not None for x in v)}
    clean = {k: v for k, v in clean.items() if np.all(np.isfinite(v))}
    lengths = {v.size for v in clean.values()}
    if len(lengths) > 1:
        raise ValueError(f"per-simulation values of different lengths: { {k: v.size for k, v in clean.items()} }")
    n = lengths.pop() if lengths else 0
    if len(clean) < 2:
        only = next(iter(clean), None)
        return PairedComparison(only, None, math.nan, math.nan, math.nan, n, NOTHING, confidence)
    sign = 1.0 if lower_is_better else -1.0
    ranked = sorted(clean, key=lambda k: sign * float(clean[k].mean()))
    best, runner_up = ranked[0], ranked[1]
    if n < min_sims:
        difference = sign * float((clean[runner_up] - clean[best]).mean())
        return PairedComparison(best, runner_up, difference, math.nan, math.nan, n, TOO_FEW, confidence)
    mean, low, high = paired_interval(sign * clean[best], sign * clean[runner_up], confidence)
    return PairedComparison(best, runner_up, mean, low, high, n, WIN if low > 0 else TIE, confidence)
