"""report.md and a self-contained report.html (images embedded) from the verdict, tables and figures.

The page reads top-down as a paper's results section does: the verdict, the setting, the tables, the figures,
the timings, and the configuration folded away. Text is plain (a `code` span is the only markup, rendered as
<code> in HTML); every figure carries data attributes a test or a script can read (`data-figure`,
`data-observed-outline`, `data-text-overlaps`).
"""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hyco.evaluation.comparison import Table, html_table
from hyco.evaluation.figure_style import RUN_LABELS, recorded_overlaps  # noqa: F401  (RUN_LABELS: earlier callers)
from hyco.utils.io import atomic_write_text


@dataclass
class Figure:
    title: str
    path: Path
    caption: str = ""
    key: str = ""  # what the figure is (error_maps, coefficient_maps, ...), for readers of the HTML
    outline: str = ""  # "drawn" when the observed region is outlined, "everywhere" when all was observed


@dataclass
class Section:
    """A table under a heading, with its notes."""

    title: str
    table: Table




def _inline(text: str) -> str:
    """Plain text for HTML, with `code` spans as <code> (never shown as backticks)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; padding: 0 1em; color: #222;
       line-height: 1.45; }
.verdict { background: #f4f8fc; border-left: 4px solid #1f77b4; padding: 0.8em 1em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 3px 9px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead { background: #f0f0f0; }
ul.notes { color: #444; font-size: 0.88em; margin-top: 0; }
figure { margin: 1.8em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; max-width: 60em; }
details { margin: 1.5em 0; }
summary { cursor: pointer; font-weight: 600; }
pre { background: #f7f7f7; padding: 1em; overflow-x: auto; font-size: 0.85em; }
"""


def write_report(run_dir: Path, metrics: dict, figures: Sequence[Figure], config_yaml: str,
                 summary: Sequence[str] = (), timings: dict[str, float] | None = None, verdict: str = "",
                 tables: Sequence[Section] = ()) -> tuple[Path, Path]:
    """Write `report.md` (figures linked by relative path) and `report.html` (figures embedded).

    `summary`: the setting, one line each; `tables`: the comparison tables (default: the rollout table);
    `timings`: seconds per phase."""
    run_dir = Path(run_dir)
    title = f"hyco report: {metrics.get('experiment', 'experiment')}"
    if not tables:
        from hyco.evaluation.comparison import rollout_table

        tables = [Section("Rollout errors on the held-out simulations", rollout_table(metrics))]
    figures = [f for f in figures if Path(f.path).exists()]
    timing_rows = [[name, f"{seconds:.2f}"] for name, seconds in (timings or {}).items() if seconds is not None]
    _write_markdown(run_dir, title, metrics, figures, config_yaml, summary, timing_rows, verdict, tables)
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body>", f"<h1>{html.escape(title)}</h1>"]
    if verdict:
        parts.append(f"<p class='verdict' id='verdict'><strong>Verdict.</strong> {_inline(verdict)}</p>")
    if summary:
        parts += ["<h2>Setting</h2>", "<ul>" + "".join(f"<li>{_inline(s)}</li>" for s in summary) + "</ul>"]
    for section in tables:
        parts += [f"<h2>{html.escape(section.title)}</h2>",
                  section.table.html()]
        if section.table.notes:
            parts.append("<ul class='notes'>" + "".join(f"<li>{_inline(n)}</li>" for n in section.table.notes)
                         + "</ul>")
    for fig in figures:
        parts.append(_html_figure(fig))
    if timing_rows:
        parts += ["<h2>Timings (seconds)</h2>", html_table(["phase", "seconds"], timing_rows)]
    parts += ["<details id='configuration'><summary>Configuration (as run)</summary>",
              f"<pre>{html.escape(config_yaml)}</pre></details>", "</body></html>"]
    html_path = run_dir / "report.html"
    atomic_write_text("\n".join(parts), html_path)
    return run_dir / "report.md", html_path


def _html_figure(fig: Figure) -> str:
    path = Path(fig.path)
    overlaps = recorded_overlaps(path) if path.suffix == ".png" else None
    marker = {"drawn": "; observed region outlined", "everywhere": "; observed everywhere"}.get(fig.outline, "")
    attributes = f" data-figure='{html.escape(fig.key)}'" if fig.key else ""
    attributes += f" data-observed-outline='{html.escape(fig.outline)}'" if fig.outline else ""
    attributes += f" data-text-overlaps='{len(overlaps)}'" if overlaps is not None else ""
    return (f"<figure{attributes}><h2>{html.escape(fig.title)}</h2>"
            f"<img alt='{html.escape(fig.title + marker)}' src='{_data_uri(path)}'>"
            + (f"<figcaption>{_inline(fig.caption)}</figcaption>" if fig.caption else "") + "</figure>")


def _write_markdown(run_dir, title, metrics, figures, config_yaml, summary, timing_rows, verdict, tables) -> Path:
    md = [f"# {title}", ""]
    if verdict:
        md += [f"**Verdict.** {verdict}", ""]
    if summary:
        md += ["## Setting", ""] + [f"- {line}" for line in summary] + [""]
    for section in tables:
        md += [f"## {section.title}", "", section.table.markdown(), ""]
        md += [f"- {note}" for note in section.table.notes] + ([""] if section.table.notes else [])
    for fig in figures:
        rel = Path(fig.path).resolve().relative_to(run_dir.resolve()).as_posix()
        md += [f"## {fig.title}", "", f"![{fig.title}]({rel})", ""] + ([fig.caption, ""] if fig.caption else [])
    if timing_rows:
        md += ["## Timings (seconds)", "", Table(["phase", "seconds"], [list(r) for r in timing_rows]).markdown(), ""]
    md += ["<details><summary>Configuration (as run)</summary>", "", "```yaml", config_yaml.rstrip(), "```", "",
           "</details>", ""]
    path = run_dir / "report.md"
    atomic_write_text("\n".join(md), path)
    return path
