"""The report's tables, from metrics.json: rollout errors with their spread over the test simulations (the
best of a column marked only when a paired comparison says it is better), and the learned coefficients
against the truth, the initial guess and the model floor.

A table is plain strings plus the cells to emphasise; `report.py` writes it as Markdown or HTML.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hyco.evaluation.figure_style import run_label
from hyco.evaluation.significance import MIN_SIMS, NOTHING, TOO_FEW, compare_best
from hyco.evaluation.uncertainty import method_words

MISSING = "–"


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    best: set[tuple[int, int]] = field(default_factory=set)  # (row, column) of cells shown in bold
    notes: list[str] = field(default_factory=list)  # lines under the table: how to read it, the verdicts

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        for r, row in enumerate(self.rows):
            lines.append("| " + " | ".join(f"**{c}**" if (r, i) in self.best else c for i, c in enumerate(row)) + " |")
        return "\n".join(lines)

    def html(self) -> str:
        """The table as HTML (cells escaped; the emphasised ones in <strong>), in a scrolling box."""
        return html_table(self.header, self.rows, self.best)


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], best: set | frozenset = frozenset()) -> str:
    """An HTML table of plain-text cells; `(row, column)` pairs in `best` in <strong>."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td><strong>{html.escape(c)}</strong></td>" if (r, i) in best else
                                    f"<td>{html.escape(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for r, row in enumerate(rows))
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "diverged"
    return f"{value:.{digits}g}"


def _spread(values: Sequence[float | None] | None, mean: float | None, scale: float = 1.0,
            at_least: bool = False) -> str:
    """mean ± standard deviation over the test simulations (the mean alone for one simulation); `≥` for a
    lower bound (a correlation time that lasted to the end of the rollout)."""
    if mean is None:
        return "diverged"
    text = ("≥ " if at_least else "") + _number(mean * scale)
    clean = [v for v in values or [] if v is not None]
    if len(clean) >= 2 and len(clean) == len(values):
        text += f" ± {float(np.std(clean, ddof=1)) * scale:.2g}"
    return text


# (header, metrics key, lower is better)
_ROLLOUT_COLUMNS = [("rel. L2", "rel_l2", True), ("nRMSE", "nrmse", True), ("VRMSE", "vrmse", True)]


def rollout_table(metrics: dict) -> Table:
    """One row per run: rel. L2, nRMSE and VRMSE pooled over the dynamic fields (and per field when there are
    several), the correlation time in the PDE's time units, the training time."""
    runs = metrics.get("runs", {})
    dt = float(metrics.get("dt", 1.0))
    steps = int(metrics.get("num_steps", 0))
    fields = list(next(iter(runs.values()), {}).get("fields", {})) if runs else []
    per_field = fields if len(fields) > 1 else []
    columns: list[tuple[str, callable, bool, float]] = []  # header, entry -> (mean, per-sim), lower, scale
    for header, key, lower in _ROLLOUT_COLUMNS:
        columns.append((header, lambda run, key=key: _values(run.get("rollout", {}), key), lower, 1.0))
    columns.append(("corr. time", lambda run: _values(run.get("rollout", {}), "corr_time"), False, dt))
    for name in per_field:
        for header, key, lower in _ROLLOUT_COLUMNS:
            columns.append((f"{header} {name}", lambda run, key=key, name=name:
                            _values(run.get("fields", {}).get(name, {}), key), lower, 1.0))
    table = Table(["run", *(c[0] for c in columns), "train s"], [])
    for key, run in runs.items():
        row = [run_label(key)]
        for header, read, _, scale in columns:
            mean, per_sim = read(run)
            saturated = header == "corr. time" and per_sim is not None and steps > 0 and \
                any(v is not None and v >= steps for v in per_sim)
            row.append(_spread(per_sim, mean, scale, at_least=saturated) if mean is not None or run.get("rollout")
                       else MISSING)
        row.append(_number(run.get("train_seconds"), 3) if run.get("train_seconds") is not None else MISSING)
        table.rows.append(row)
    _mark_best(table, runs, columns)
    num_sims = metrics.get("num_sims")
    sims = _count(num_sims, "held-out simulation")
    spread = f"Mean ± standard deviation over the {sims}" if num_sims is None or num_sims > 1 else \
        f"Over the {sims} (no spread)"
    table.notes.insert(0, f"{spread}; corr. time: how long the prediction's correlation with the truth stays at or "
                          f"above {_threshold(metrics)} (time units of the PDE; ≥: it lasted to the end of the "
                          f"rollout, t = {steps * dt:.3g}, in some simulation, so the mean is a lower bound).")
    return table


def _threshold(metrics: dict) -> str:
    return f"{metrics['corr_threshold']:g}" if "corr_threshold" in metrics else "the threshold"


def _count(n, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}" if n is not None else f"{noun}s"


def _values(entry: dict, key: str) -> tuple[float | None, list | None]:
    return entry.get(key), entry.get("per_sim", {}).get(key)


def _mark_best(table: Table, runs: dict, columns) -> None:
    """Bold the best of a column when it is significantly better than the runner-up; say what was found."""
    keys = list(runs)
    too_few = None
    for c, (header, read, lower, scale) in enumerate(columns, start=1):
        per_sim = {key: read(run)[1] for key, run in runs.items()}
        if any(v is None for v in per_sim.values()):
            continue  # evaluated before per-simulation values were kept
        result = compare_best(per_sim, lower_is_better=lower)
        if result.verdict == TOO_FEW:
            too_few = result.num_sims
            continue
        if result.verdict == NOTHING:
            continue
        if result.significant:
            table.best.add((keys.index(result.best), c))
        described = _scaled(result, scale).describe(run_label)
        table.notes.append(f"{header}: {described}.")
    if too_few is not None:
        table.notes.append(f"No best value is marked: {_count(too_few, 'test simulation')} cannot tell the models "
                           f"apart (a paired comparison needs at least {MIN_SIMS}; set data.num_test).")
    elif table.best or len(table.notes):
        table.notes.insert(0, "Bold: the best value of a column, where a paired comparison with the next best "
                              "model over the same test simulations finds it better (95 % t-interval of the "
                              "differences above 0); otherwise the column is a tie.")


def _scaled(result, scale: float):
    if scale == 1.0:
        return result
    from dataclasses import replace

    return replace(result, difference=result.difference * scale, low=result.low * scale, high=result.high * scale)


# ------------------------------------------------------------------------------------------------ coefficients
def coefficient_table(metrics: dict) -> Table | None:
    """Learned coefficients against the truth: one row per solver run, plus the initial guess (where every
    run starts) and the model floor (the error the solver reaches from full, noise-free reference data)
    when known. Scalars show their values; fields their relative L2 error overall, inside and outside the
    observed region."""
    runs = {k: r for k, r in metrics.get("runs", {}).items() if r.get("coefficients")}
    truth = metrics.get("true_coefficients", {})
    names = [n for n in [*truth, *metrics.get("unknown_coefficients", [])]
             if not any(r["coefficients"].get(n, {}).get("known") for r in runs.values())]
    if not runs or not names:
        return None
    initial = metrics.get("initial_coefficients", {})
    learned = metrics.get("learned_coefficients", {})
    floor = (metrics.get("model_floor") or {}).get("coefficients", {})
    header: list[str] = []
    cells: dict[str, list[str]] = {"truth": [], "initial guess": [], **{k: [] for k in runs}, "model floor": []}
    for name in names:
        unknown = name not in truth  # data made elsewhere, its truth not given
        scalar = np.ndim(truth[name] if not unknown else _first_learned(learned, name)) == 0
        regional = any(r["coefficients"].get(name, {}).get("rel_error_observed") is not None for r in runs.values())
        parametric = any("parameter_rel_error" in r["coefficients"].get(name, {}) for r in runs.values())
        intervals = {k: coefficient_interval(r["coefficients"].get(name, {}), _scalar(learned.get(k, {}).get(name)))
                     for k, r in runs.items()}
        if scalar:
            header.append(f"{name}")
            cells["truth"].append("unknown" if unknown else _number(float(truth[name])))
            cells["initial guess"].append(_number(_scalar(initial.get(name))))
            for key in runs:
                cells[key].append(_number(_scalar(learned.get(key, {}).get(name))))
            cells["model floor"].append(MISSING)
        if any(intervals.values()):
            header.append(f"{name} 95 % interval")
            for row in ("truth", "initial guess", "model floor"):
                cells[row].append(MISSING)
            for key, bounds in intervals.items():
                cells[key].append(f"{bounds[0]:.4g} to {bounds[1]:.4g}" if bounds else MISSING)
        header.append(f"{name} rel. error")
        cells["truth"].append("unknown" if unknown else "0")
        cells["initial guess"].append("unknown" if unknown else _number(initial_error(initial.get(name), truth[name])))
        for key, run in runs.items():
            cells[key].append("unknown" if unknown else _number(run["coefficients"].get(name, {}).get("rel_error")))
        cells["model floor"].append(_number(floor[name]) if name in floor else MISSING)
        extra = ([("parameters rel. error", "parameter_rel_error")] if parametric else []) + \
            ([("observed region", "rel_error_observed"), ("unobserved region", "rel_error_unobserved")]
             if regional else [])
        for title, key_name in extra:
            header.append(f"{name} {title}")
            for row in ("truth", "initial guess", "model floor"):
                cells[row].append(MISSING)
            for key, run in runs.items():
                value = run["coefficients"].get(name, {}).get(key_name)
                cells[key].append(_number(value) if value is not None else MISSING)
    rows = [[label if label in ("truth", "initial guess", "model floor") else _run_row_label(label, runs), *values]
            for label, values in cells.items() if label != "model floor" or floor]
    table = Table(["", *header], rows)
    if any(not_learned(r) for r in runs.values()):
        table.notes.append(f"{NOT_LEARNED}: the solver kept from that run explains the observed validation data worse "
                           "than its initial guess did (by more than the noise), or never trained, so its "
                           "coefficients are no result.")
    table.notes.append("Relative error: |learned − true| / |true| for a number, ‖learned − true‖ / ‖true‖ over the "
                       "grid for a field. One learned coefficient per run: no spread over test simulations, so no "
                       "best value is marked.")
    for key, run in runs.items():  # how far the data determine each coefficient (evaluation.uncertainty)
        words = [run["coefficients"][n]["identifiability"] for n in names
                 if run["coefficients"].get(n, {}).get("identifiability")]
        if words:
            table.notes.append(f"What the data determine ({run_label(key)}, {method_words({key: run})}): "
                               + "; ".join(words) + ".")
    if floor:
        table.notes.append("Model floor: " + (metrics["model_floor"].get("how") or "the error the solver reaches "
                                              "from full, noise-free reference data") + ".")
    return table


NOT_LEARNED = "not learned"


def not_learned(run: dict) -> bool:
    """A run whose solver ended worse than its initial guess on the observed data, or never trained
    (hyco.training.hybrid): its coefficients are no result."""
    return bool(run.get("worse_than_initial_guess")) or run.get("trained") is False


def _run_row_label(key: str, runs: dict) -> str:
    return run_label(key) + (f" ({NOT_LEARNED})" if not_learned(runs[key]) else "")


def _first_learned(learned: dict, name: str):
    return next((v[name] for v in learned.values() if name in v), 0.0)


def _scalar(value) -> float | None:
    if value is None:
        return None
    array = np.asarray(value, dtype=float)
    return float(array) if array.ndim == 0 else float(array.mean())


def initial_error(guess, true) -> float | None:
    """Relative error of the initial guess (a number may stand for a whole field)."""
    if guess is None:
        return None
    guess, true = np.asarray(guess, dtype=float), np.asarray(true, dtype=float)
    norm = float(np.linalg.norm(true))
    difference = float(np.linalg.norm(np.broadcast_to(guess, true.shape) - true))
    return difference / norm if norm > 0 else difference


def coefficient_interval(entry: dict, value: float | None) -> tuple[float, float] | None:
    """A scalar coefficient's 95 % interval when its run estimated one (a run's `coefficients[name]` entry):
    `interval` [low, high], or `std` (the interval ±1.96 std about the learned `value`)."""
    if entry.get("interval") is not None and np.ndim(entry["interval"]) == 1:
        low, high = entry["interval"]
        return float(low), float(high)
    if entry.get("std") is not None and np.ndim(entry["std"]) == 0 and value is not None:
        return value - 1.96 * float(entry["std"]), value + 1.96 * float(entry["std"])
    return None


def comparison_markdown(metrics: dict) -> str:
    """The rollout table and, when coefficients were learned, the coefficient table, as Markdown (bold: a
    significantly best value), exactly as report.md has them."""
    tables = [rollout_table(metrics), coefficient_table(metrics)]
    return "\n\n".join(t.markdown() for t in tables if t is not None)


def comparison_html(metrics: dict) -> str:
    """The same tables as `comparison_markdown`, as HTML (what report.html shows)."""
    tables = [rollout_table(metrics), coefficient_table(metrics)]
    return "\n".join(t.html() for t in tables if t is not None)


def comparison_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """The rollout table's header and rows as plain strings (kept for callers of the earlier report)."""
    table = rollout_table(metrics)
    return table.header, table.rows
