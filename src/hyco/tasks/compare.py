"""`hyco compare RUN_OR_SWEEP_DIR... [--allow-mixed] [--out DIR]`: one table across runs.

Every directory given is a run (it holds `metrics.json`, from `hyco run` or `hyco evaluate`) or holds runs
below it (a sweep). Runs are grouped by every override except the seeds (`hyco.evaluation.sweep_stats`);
the table, the paired differences and a plot of the errors per group go to `compare.md`, `compare.html`,
`compare.json` and `compare.png` in `--out` (default: the first directory given), and the table to stdout.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict
from pathlib import Path

from hyco.errors import HycoError
from hyco.evaluation.sweep_stats import ROLLOUT, RunResult, SweepComparison, group_runs
from hyco.utils.io import atomic_write_json, atomic_write_text

USAGE = "usage: hyco compare RUN_OR_SWEEP_DIR... [--allow-mixed] [--out DIR]"
METRICS = "metrics.json"
MAX_DEPTH = 3  # a sweep's runs are its subdirectories; a sweep of sweeps one more level down


def find_runs(paths: list[str | Path]) -> list[RunResult]:
    """Every run under `paths` (a run directory itself or any directory holding runs up to MAX_DEPTH deep)."""
    found: dict[Path, None] = {}
    for path in map(Path, paths):
        if not path.is_dir():
            raise HycoError(f"compare: {path}: expected a run or sweep directory, found "
                            f"{'a file' if path.exists() else 'nothing'}")
        for depth in range(MAX_DEPTH + 1):
            found.update(dict.fromkeys(p.parent.resolve() for p in sorted(path.glob("*/" * depth + METRICS))))
    runs = [_read_run(d) for d in found]
    return [r for r in runs if r is not None]


def _read_run(run_dir: Path) -> RunResult | None:
    try:
        metrics = json.loads((run_dir / METRICS).read_text())
    except (OSError, ValueError) as exc:
        raise HycoError(f"compare: {run_dir / METRICS}: not readable as JSON ({exc})") from None
    if not isinstance(metrics, dict) or "runs" not in metrics:
        return None  # a checkpoint evaluation's or another tool's file
    return RunResult(run_dir.name, _overrides(run_dir), metrics)


def _overrides(run_dir: Path) -> dict[str, str]:
    """The run's overrides (key -> value) from Hydra's record, else from its sweep job record."""
    lines: list = []
    record = run_dir / ".hydra" / "overrides.yaml"
    if record.is_file():
        from omegaconf import OmegaConf

        lines = list(OmegaConf.load(record))
    elif (run_dir / "job.json").is_file():
        lines = json.loads((run_dir / "job.json").read_text()).get("overrides", [])
    pairs = (str(line).split("=", 1) for line in lines if "=" in str(line))
    return {k.lstrip("+~"): v for k, v in pairs}


def compare(paths: list[str | Path], allow_mixed: bool = False, out_dir: str | Path | None = None
            ) -> tuple[SweepComparison, Path]:
    """Compare the runs under `paths`; writes compare.md/.html/.json/.png into `out_dir` (default: the first
    path) and returns (the comparison, compare.md's path). Raises HycoError (one line) on bad input."""
    if not paths:
        raise HycoError(f"compare: expected at least one run or sweep directory; {USAGE}")
    runs = find_runs(paths)
    if not runs:
        raise HycoError(f"compare: no runs in {', '.join(map(str, paths))}: expected directories holding "
                        f"{METRICS} (made by `hyco run` or `hyco evaluate`)")
    experiments: dict[str, int] = {}
    for run in runs:
        experiments[run.experiment] = experiments.get(run.experiment, 0) + 1
    if len(experiments) > 1:
        if not allow_mixed:
            counts = ", ".join(f"{name} ({n} run{'s' if n > 1 else ''})" for name, n in sorted(experiments.items()))
            raise HycoError(f"compare: runs of different experiments: {counts}; compare one experiment at a time, "
                            "or pass --allow-mixed to group by experiment as well")
        runs = [RunResult(r.name, {**r.overrides, "experiment": r.experiment}, r.metrics) for r in runs]
    result = group_runs(runs)
    out = Path(out_dir) if out_dir is not None else Path(paths[0])
    out.mkdir(parents=True, exist_ok=True)
    from hyco.tasks.compare_render import draw_plot, markdown

    plot = draw_plot(result, out / "compare.png")
    text = markdown(result, plot.name if plot else None)
    atomic_write_text(text, out / "compare.md")
    atomic_write_text(_html(text, plot.name if plot else None), out / "compare.html")
    atomic_write_json(_json(result), out / "compare.json")
    return result, out / "compare.md"


def _json(result: SweepComparison) -> dict:
    def clean(value):
        return None if isinstance(value, float) and not math.isfinite(value) else value

    groups = []
    for g in result.groups:
        models = {m: {f: {"values": list(s.values), "diverged": s.diverged, "median": clean(s.median()),
                          "min": clean(s.range()[0]), "max": clean(s.range()[1]), "mean": clean(s.mean_std()[0]),
                          "std": clean(s.mean_std()[1])} for f, s in figs.items()} for m, figs in g.figures.items()}
        groups.append({"label": g.label, "settings": dict(g.settings), "runs": [r.name for r in g.runs],
                       "seeds": [dict(r.seeds) for r in g.runs], "models": models})
    paired = [{k: clean(v) for k, v in {**asdict(d), "verdict": d.verdict}.items()} for d in result.paired]
    best = {m: {k: clean(v) for k, v in {**asdict(c), "significant": c.significant}.items()}
            for m, c in result.best.items()}
    return {"differing": result.differing, "figure": ROLLOUT, "groups": groups, "paired": paired, "best": best}


def _html(markdown_text: str, plot: str | None) -> str:
    """compare.md as a page: its tables as tables, the rest as paragraphs, the plot as an image."""
    body, table = [], []

    def flush() -> None:
        if table:
            rows = [[html.escape(c.strip()) for c in line.strip("|").split("|")] for line in table]
            head = "".join(f"<th>{c}</th>" for c in rows[0])
            cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows[2:])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
            table.clear()

    for line in markdown_text.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            body.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("!["):
            body.append(f"<img src='{html.escape(plot or '')}' alt='errors per group' style='max-width:100%'>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush()
    style = "body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}" \
            "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>hyco compare</title><style>{style}</style>" \
           f"</head><body>{''.join(body)}</body></html>\n"


def compare_command(args: list[str]) -> str:
    """`hyco compare ...` from its arguments: writes the files, returns the text to print."""
    paths, allow_mixed, out = [], False, None
    i = 0
    while i < len(args):
        if args[i] == "--allow-mixed":
            allow_mixed = True
        elif args[i] == "--out":
            if i + 1 >= len(args):
                raise HycoError(f"compare: --out expects a directory; {USAGE}")
            out, i = args[i + 1], i + 1
        elif args[i].startswith("-"):
            raise HycoError(f"compare: unknown flag {args[i]!r}; {USAGE}")
        else:
            paths.append(args[i])
        i += 1
    _, path = compare(paths, allow_mixed, out)
    return f"{path.read_text()}\n{path}"
