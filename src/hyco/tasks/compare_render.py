"""How `hyco compare` shows a SweepComparison: the Markdown page (compare.md, also printed) and the plot of
each model's rollout error per group, every seed a point and the median a bar, so the spread is seen."""

from __future__ import annotations

import math
from pathlib import Path

from hyco.evaluation.figure_style import run_label
from hyco.evaluation.significance import NOTHING, TOO_FEW, WIN
from hyco.evaluation.sweep_stats import ROLLOUT, Summary, SweepComparison


def _g(value: float) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _cell(summary: Summary | None) -> tuple[str, str]:
    """(median [min, max], mean ± std) over the seeds; a count of diverged runs when there are any."""
    if summary is None or (not summary.values and not summary.diverged):
        return "–", "–"
    diverged = f" ({summary.diverged} diverged)" if summary.diverged else ""
    if not summary.values:
        return f"diverged{diverged}", "–"
    low, high = summary.range()
    mean, std = summary.mean_std()
    spread = f" [{_g(low)}, {_g(high)}]" if summary.n > 1 else ""
    return f"{_g(summary.median())}{spread}{diverged}", f"{_g(mean)} ± {_g(std)}" if summary.n > 1 else _g(mean)


def markdown(result: SweepComparison, plot: str | None) -> str:
    coefficient_figures = sorted({f for g in result.groups for figs in g.figures.values() for f in figs
                                  if f != ROLLOUT})
    header = ["group", "model", "seeds", "rollout rel. L2: median [min, max]", "mean ± std",
              *[f"{f.removesuffix('_rel_error')} rel. error: median [min, max]" for f in coefficient_figures]]
    lines = ["# Comparison across runs", "",
             f"{sum(len(g.runs) for g in result.groups)} runs in {len(result.groups)} group(s), grouped by every "
             "override except the seeds (`seed`, `*.seed`)"
             + (f"; the groups differ in {', '.join(result.differing)}." if result.differing else "."), "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group in result.groups:
        for model, figures in group.figures.items():
            median, mean = _cell(figures.get(ROLLOUT))
            coefficients = [_cell(figures.get(f))[0] for f in coefficient_figures]
            lines.append("| " + " | ".join([group.label, run_label(model), str(len(group.runs)), median, mean,
                                             *coefficients]) + " |")
    lines += ["", "## HYCO against the same model trained alone", "",
              "Paired over the same test simulations of each seed: mean of (HYCO − alone) in rollout relative L2 "
              "error, with its 95 % interval; a difference counts only when the interval excludes 0.", ""]
    if result.paired:
        lines += ["| group | model | mean difference | 95 % interval | pairs | verdict |", "|---|---|---|---|---|---|"]
        for d in result.paired:
            lines.append(f"| {d.group} | {run_label(d.first)} − {run_label(d.second)} | {_g(d.mean)} | "
                         f"[{_g(d.low)}, {_g(d.high)}] | {d.pairs} | {_verdict(d.verdict, d.first, d.second)} |")
    else:
        lines.append("No group holds HYCO and a model alone with per-simulation errors.")
    if len(result.groups) > 1:
        lines += ["", "## Which group is best, per model", ""]
        lines += [f"- {run_label(model)}: {_best_line(c)}" for model, c in result.best.items()]
    if plot:
        lines += ["", f"![rollout error per group]({plot})"]
    return "\n".join(lines) + "\n"


def _verdict(verdict: str, first: str, second: str) -> str:
    lower = {f"{first} lower": first, f"{second} lower": second}.get(verdict)
    return f"{run_label(lower)} lower" if lower else verdict


def _best_line(comparison) -> str:
    if comparison.verdict == NOTHING:
        return "nothing to compare (no seeds common to every group)"
    if comparison.verdict == TOO_FEW:
        return (f"{comparison.num_sims} paired value(s): too few to name a best group "
                f"(lowest mean: {comparison.best})")
    text = comparison.describe(label=str)
    return text if comparison.verdict == WIN else f"no best group: {text}"


def draw_plot(result: SweepComparison, path: Path) -> Path | None:
    """Rollout error per group and model: each seed a point, the median a horizontal bar; None without data."""
    models = result.models()
    if not models:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [g.label for g in result.groups]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(labels) * max(1, len(models)) / 2), 3.6))
    width = 0.8 / len(models)
    for m, model in enumerate(models):
        for x, group in enumerate(result.groups):
            summary = group.figures.get(model, {}).get(ROLLOUT)
            if summary is None or not summary.values:
                continue
            centre = x - 0.4 + width * (m + 0.5)
            ax.scatter([centre] * summary.n, summary.values, s=14, color=f"C{m}", alpha=0.8,
                       label=run_label(model) if x == 0 else None)
            ax.hlines(summary.median(), centre - width / 2.5, centre + width / 2.5, color=f"C{m}", linewidth=2)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("rollout rel. L2 error")
    ax.set_yscale("log")
    ax.set_title("Rollout error per group: each seed a point, the median a bar", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
