"""Statistics across runs (`hyco compare`): runs grouped by every setting except the seeds, each model's
errors summarised over the seeds of a group, and paired differences with a confidence interval.

A seed is any key named `seed` or ending in `.seed` (`seed`, `data.seed`): runs that differ only in seeds
are repetitions of one setting. Per group and model: the rollout's relative L2 error (the mean over the test
simulations of each run) and each learned coefficient's relative error, as median [min, max] and
mean ± std over the seeds. Paired differences compare two error vectors over the same (seed, test
simulation) pairs: HYCO's solver and network against the same model trained alone in every group, and for
each model the groups against each other (`compare_best`, which names a best group only when its interval
excludes 0; otherwise the groups tie). Pooling the simulations of several seeds treats each (seed, simulation)
pair as one paired observation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hyco.evaluation.significance import CONFIDENCE, MIN_SIMS, PairedComparison, compare_best, paired_interval

# overrides that say where or how a run ran, not what it computed
NOT_SETTINGS = ("task", "output_dir", "data_dir", "cache_dir", "threads", "device", "log_level", "resume",
                "dist_backend", "plugins", "hydra")
ROLLOUT = "rollout_rel_l2"
HYCO_TWINS = (("hyco_physical", "physical"), ("hyco_synthetic", "synthetic"))


def is_seed(key: str) -> bool:
    return key == "seed" or key.endswith(".seed")


def _is_setting(key: str) -> bool:
    return not any(key == k or key.startswith(k + ".") for k in NOT_SETTINGS)


@dataclass(frozen=True)
class RunResult:
    """One run as `compare` reads it: its name, overrides (key -> value) and metrics.json."""

    name: str
    overrides: dict[str, str]
    metrics: dict

    @property
    def experiment(self) -> str:
        return str(self.metrics.get("experiment", "?"))

    @property
    def seeds(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.overrides.items() if is_seed(k)))

    def settings(self) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((k, v) for k, v in self.overrides.items() if not is_seed(k) and _is_setting(k)))

    def figures(self, model: str) -> dict[str, float | None]:
        """The model's headline errors in this run: rollout relative L2 and `<coefficient>_rel_error`."""
        run = self.metrics.get("runs", {}).get(model, {})
        out: dict[str, float | None] = {ROLLOUT: (run.get("rollout") or {}).get("rel_l2")}
        for name, entry in (run.get("coefficients") or {}).items():
            if not entry.get("known"):
                out[f"{name}_rel_error"] = entry.get("rel_error")
        return out

    def per_sim(self, model: str) -> list[float] | None:
        values = (((self.metrics.get("runs", {}).get(model) or {}).get("rollout") or {}).get("per_sim") or {})
        return values.get("rel_l2")


@dataclass(frozen=True)
class Summary:
    """One figure of one model over the seeds of a group."""

    values: tuple[float, ...]
    diverged: int = 0

    @property
    def n(self) -> int:
        return len(self.values)

    def median(self) -> float:
        return float(np.median(self.values)) if self.values else math.nan

    def range(self) -> tuple[float, float]:
        return (min(self.values), max(self.values)) if self.values else (math.nan, math.nan)

    def mean_std(self) -> tuple[float, float]:
        if not self.values:
            return math.nan, math.nan
        return float(np.mean(self.values)), float(np.std(self.values, ddof=1)) if self.n > 1 else 0.0


@dataclass(frozen=True)
class PairedDifference:
    """Mean of (first − second) over paired (seed, simulation) errors, with its confidence interval."""

    group: str
    first: str
    second: str
    mean: float
    low: float
    high: float
    pairs: int

    @property
    def verdict(self) -> str:
        if self.pairs < MIN_SIMS or math.isnan(self.low):
            return "too few pairs"
        if self.high < 0:
            return f"{self.first} lower"
        if self.low > 0:
            return f"{self.second} lower"
        return "tie"


@dataclass
class Group:
    label: str
    settings: tuple[tuple[str, str], ...]
    runs: list[RunResult] = field(default_factory=list)
    figures: dict[str, dict[str, Summary]] = field(default_factory=dict)  # model -> figure -> summary


@dataclass
class SweepComparison:
    groups: list[Group]
    differing: list[str]  # the setting keys whose values differ between groups
    paired: list[PairedDifference]
    best: dict[str, PairedComparison]  # model -> the best group against the next, paired over common seeds

    def models(self) -> list[str]:
        seen: dict[str, None] = {}
        for group in self.groups:
            seen.update(dict.fromkeys(group.figures))
        return list(seen)


def group_runs(runs: Sequence[RunResult]) -> SweepComparison:
    """Group `runs` by their settings (seeds aside) and summarise every model's errors over the seeds."""
    by_settings: dict[tuple, list[RunResult]] = {}
    for run in runs:
        by_settings.setdefault(run.settings(), []).append(run)
    keys = sorted({k for s in by_settings for k, _ in s})
    differing = [k for k in keys if len({dict(s).get(k) for s in by_settings}) > 1]
    groups = []
    for settings, members in sorted(by_settings.items()):
        label = ", ".join(f"{k}={v}" for k, v in settings if k in differing) or "all runs"
        group = Group(label, settings, sorted(members, key=lambda r: r.seeds))
        for model in dict.fromkeys(m for r in members for m in r.metrics.get("runs", {})):
            per_figure: dict[str, list[float | None]] = {}
            for run in members:
                for figure, value in run.figures(model).items():
                    per_figure.setdefault(figure, []).append(value)
            group.figures[model] = {f: Summary(tuple(float(v) for v in vs if v is not None and math.isfinite(v)),
                                               sum(1 for v in vs if v is None or not math.isfinite(v)))
                                    for f, vs in per_figure.items()}
        groups.append(group)
    paired = [d for g in groups for d in _hyco_against_alone(g)]
    best = {model: _best_group(groups, model) for model in dict.fromkeys(m for g in groups for m in g.figures)}
    return SweepComparison(groups, differing, paired, best)


def _pooled(runs: Sequence[RunResult], model: str, seeds: Sequence[tuple]) -> list[float] | None:
    """The model's per-simulation errors of the runs with `seeds`, concatenated in that order."""
    by_seed = {r.seeds: r for r in runs}
    out: list[float] = []
    for seed in seeds:
        values = by_seed[seed].per_sim(model) if seed in by_seed else None
        if values is None or any(v is None or not math.isfinite(v) for v in values):
            return None
        out += [float(v) for v in values]
    return out


def _hyco_against_alone(group: Group, confidence: float = CONFIDENCE) -> list[PairedDifference]:
    seeds = [r.seeds for r in group.runs]
    out = []
    for hyco, alone in HYCO_TWINS:
        first, second = _pooled(group.runs, hyco, seeds), _pooled(group.runs, alone, seeds)
        if first is None or second is None or len(first) != len(second) or not first:
            continue
        if len(first) < 2:
            diff = first[0] - second[0]
            out.append(PairedDifference(group.label, hyco, alone, diff, math.nan, math.nan, 1))
            continue
        mean, low, high = paired_interval(second, first, confidence)  # mean of first - second
        out.append(PairedDifference(group.label, hyco, alone, mean, low, high, len(first)))
    return out


def _best_group(groups: Sequence[Group], model: str) -> PairedComparison:
    """The group with the lowest mean error of `model` against the next, paired over the seeds every group has."""
    having = [g for g in groups if model in g.figures]
    common = set.intersection(*({r.seeds for r in g.runs} for g in having)) if having else set()
    seeds = sorted(common)
    values = {g.label: _pooled(g.runs, model, seeds) for g in having} if seeds else {}
    return compare_best({k: v for k, v in values.items() if v})
