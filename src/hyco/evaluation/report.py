"""report.md and a self-contained report.html (images embedded) from metrics.json and figures."""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hyco.utils.io import atomic_write_text
from hyco.utils.log import fmt

RUN_LABELS = {
    "physical": "physical only",
    "synthetic": "synthetic only",
    "hyco_physical": "HYCO (physical)",
    "hyco_synthetic": "HYCO (network)",
    "synthetic_matched": "synthetic only, HYCO's samples",
}


@dataclass
class Figure:
    title: str
    path: Path
    caption: str = ""


def comparison_rows(metrics: dict) -> tuple[list[str], list[list[str]]]:
    """The comparison table: one row per run, rollout errors (pooled, and per field when there are several),
    coefficient errors (for a field also inside and outside the observed region), training time."""
    runs = metrics.get("runs", {})
    coefficient_names = sorted({name for run in runs.values() for name in run.get("coefficients", {})})
    regional = {name for run in runs.values() for name, e in run.get("coefficients", {}).items()
                if e.get("rel_error_observed") is not None or e.get("rel_error_unobserved") is not None}
    parametric = {name for run in runs.values() for name, e in run.get("coefficients", {}).items()
                  if "parameter_rel_error" in e}
    known = {name for run in runs.values() for name, e in run.get("coefficients", {}).items() if e.get("known")}
    coefficient_names = [n for n in coefficient_names if n not in known]
    field_names = list(next(iter(runs.values()), {}).get("fields", {})) if runs else []
    per_field = field_names if len(field_names) > 1 else []
    header = ["run", "rel. L2", "RMSE", "MAE", "corr. time (steps)"] + [f"rel. L2 {f}" for f in per_field]
    for name in coefficient_names:
        if name in parametric:
            header.append(f"{name} parameters rel. error")
        header.append(f"{name} rel. error")
        if name in regional:
            header += [f"{name} observed region", f"{name} unobserved region"]
    header.append("train s")
    rows = []
    for key, run in runs.items():
        rollout = run.get("rollout", {})
        row = [RUN_LABELS.get(key, key)]
        row += [fmt(rollout.get(m)) for m in ("rel_l2", "rmse", "mae", "corr_time")]
        row += [fmt(run.get("fields", {}).get(f, {}).get("rel_l2", "–")) for f in per_field]
        for name in coefficient_names:
            errors = run.get("coefficients", {}).get(name, {})
            if name in parametric:
                row.append(fmt(errors.get("parameter_rel_error", "–")))
            row.append("unknown" if errors.get("truth") == "unknown" else fmt(errors.get("rel_error", "–")))
            if name in regional:
                row += [fmt(errors.get(k, "–") if errors.get(k) is not None else "–")
                        for k in ("rel_error_observed", "rel_error_unobserved")]
        row.append(fmt(run.get("train_seconds", "–"), 3))
        rows.append(row)
    return header, rows


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f0f0f0; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
"""


def write_report(run_dir: Path, metrics: dict, figures: Sequence[Figure], config_yaml: str,
                 summary: Sequence[str] = (), timings: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Write `report.md` (figures linked by relative path) and `report.html` (figures embedded)."""
    run_dir = Path(run_dir)
    title = f"hyco report: {metrics.get('experiment', 'experiment')}"
    header, rows = comparison_rows(metrics)
    figures = [f for f in figures if Path(f.path).exists()]
    timing_rows = [[name, f"{seconds:.1f}"] for name, seconds in (timings or {}).items()]

    md = [f"# {title}", ""]
    md += [f"- {line}" for line in summary] + ([""] if summary else [])
    md += ["## Comparison on held-out simulations", "", _markdown_table(header, rows), ""]
    for fig in figures:
        rel = Path(fig.path).resolve().relative_to(run_dir.resolve()).as_posix()
        md += [f"## {fig.title}", "", f"![{fig.title}]({rel})", ""] + ([fig.caption, ""] if fig.caption else [])
    if timing_rows:
        md += ["## Timings (seconds)", "", _markdown_table(["phase", "seconds"], timing_rows), ""]
    md += ["## Configuration", "", "```yaml", config_yaml.rstrip(), "```", ""]
    md_path = run_dir / "report.md"
    atomic_write_text("\n".join(md), md_path)

    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if summary:
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in summary) + "</ul>")
    parts += ["<h2>Comparison on held-out simulations</h2>", _html_table(header, rows)]
    for fig in figures:
        parts.append(f"<figure><h2>{html.escape(fig.title)}</h2><img alt='{html.escape(fig.title)}' "
                     f"src='{_data_uri(Path(fig.path))}'>"
                     + (f"<figcaption>{html.escape(fig.caption)}</figcaption>" if fig.caption else "")
                     + "</figure>")
    if timing_rows:
        parts += ["<h2>Timings (seconds)</h2>", _html_table(["phase", "seconds"], timing_rows)]
    parts += ["<h2>Configuration</h2>", f"<pre>{html.escape(config_yaml)}</pre>", "</body></html>"]
    html_path = run_dir / "report.html"
    atomic_write_text("\n".join(parts), html_path)
    return md_path, html_path
