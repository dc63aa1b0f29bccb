"""Write the docs' results page, docs/results.md, from the study's committed JSON (never typed by hand).

    python -m benchmarks.study_page [--study benchmarks/results/hyco_study.json] [--out docs/results.md]

tests/test_results_page.py checks that the committed page is what this module makes of the committed JSON, so
the page cannot drift from the figures it shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.hyco_study import STUDY, _coefficient, _floor, checks, study_rows

ROOT = Path(__file__).resolve().parents[1]
# variants shown beside the study to explain its figures (same seeds and budgets), never judged
CONTEXT = ("default_initial_full", "heat_2d_initial_full")
CONTEXT_TEXT = ("The study's first two cases with frame 0 known in full (`observation.initial=full`, the HYCO paper's "
                "setting), still on reference data with 1 % noise on every value: what the models do when the state "
                "they start from is known.")
STUDY_JSON = ROOT / "benchmarks" / "results" / "hyco_study.json"
PAGE = ROOT / "docs" / "results.md"

INTRO = """\
# Results: HYCO against either model alone

Every figure on this page comes from `benchmarks/results/hyco_study.json`, written by
`python -m benchmarks.hyco_study`; the page itself is written from that file by `python -m benchmarks.study_page`
(a test checks that the two agree). Nothing here is typed by hand.

**The data are not the learner's own.** Each case is one shipped experiment run as shipped, so:

- the trajectories are simulated on a grid 2x finer along each axis with 4x the substeps, and cell-averaged
  onto the learning grid (`data.reference.refine: 2`): no solver here can match them exactly;
- every observed value carries Gaussian noise of 1 % of its channel's standard deviation, frame 0 included;
- where a case observes part of the grid, frame 0 too is known only there (`observation.initial: observed`),
  its hidden part filled by smooth (harmonic) inpainting; every model, in training and in the evaluation,
  starts from that filled, noisy state;
- the judge is the full, noise-free truth of 8 held-out simulations per run;
- the figures are medians over the runs of a case, each data seed (`data.seed`: other trajectories, masks and
  noise) one run, with the range over them in brackets.

**The rows.** *Model floor*: the coefficient error the solver reaches on the full, noise-free training data
with the same optimiser budget, the best any observation of these data allows. *Solver alone*, *HYCO solver*:
the coefficient error (the largest over the learned coefficients) and the rollout error (relative L2 over all
dynamic fields and frames). *Network alone*: the network trained on the observations for `trainer.synthetic.epochs`
epochs; *network alone, compute-matched*: the same network trained on real observations only, for as many
samples and optimizer steps as HYCO's network had (HYCO's network sees (1 + alpha) times the samples of the
default network alone); *HYCO network*.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else ""


def case_section(name: str, result: dict[str, Any], level: str = "##") -> list[str]:
    if "runs" not in result:
        return [f"{level} {name}", "", f"Failed: {result.get('error', 'no result')}", ""]
    overrides = " ".join(result.get("overrides", []))
    runs = ", ".join(result.get("seeds", {})) or "one run"
    lines = [f"{level} {name}", "", f"`hyco run {overrides}`, runs: {runs}; wall time of all its runs "
             f"{result.get('wall_s', 0.0) / 60:.1f} min.", ""]
    if result.get("observation"):
        lines += [f"What the models saw: {result['observation']}.", ""]
    if result.get("reference"):
        lines += [f"Data simulated on: {result['reference']}.", ""]
    lines += ["| model | coefficient error | rollout error (rel. L2) |", "|---|---|---|"]
    lines += [f"| {model} | {_cell(coefficient)} | {_cell(rollout)} |"
              for model, coefficient, rollout in study_rows(result)]
    lines.append("")
    lines += _reading(result)
    floor = result.get("model_floor", {})
    if floor.get("how"):
        lines += [f"Model floor: {floor['how']}.", ""]
    fill = result.get("initial_fill")
    if fill:
        figures = ", ".join(f"{scheme} {value:.3g}" for scheme, value in fill.items())
        lines += [f"Frame 0's hidden part as filled from its observed values (relative L2 error against the "
                  f"truth, test split, median): {figures}.", ""]
    return lines


def _reading(result: dict[str, Any]) -> list[str]:
    """Sentences computed from the medians (no figure typed by hand)."""
    runs = result["runs"]
    out = []
    alone, hyco = _coefficient(runs.get("physical", {})), _coefficient(runs.get("hyco_physical", {}))
    floor = _floor(result)
    guess = max([v for v in result.get("initial_guess", {}).values() if v is not None], default=None)
    if alone is not None and floor:
        text = f"The solver alone ends {alone / floor:.3g}x the model floor"
        if guess:
            text += f", {'above' if alone > guess else 'below'} its initial guess ({guess:.3g})"
        if hyco is not None and alone > 0:
            text += f"; HYCO's solver {hyco / alone:.3g}x the solver alone"
        out.append(text + ".")
    network, matched, hyco_net = (runs.get(k, {}).get("rel_l2") for k in ("synthetic", "synthetic_matched",
                                                                             "hyco_synthetic"))
    if hyco_net is not None and network:
        text = f"HYCO's network's rollout error is {hyco_net / network:.3g}x the network alone's"
        if matched:
            text += f" and {hyco_net / matched:.3g}x the compute-matched network alone's"
        solver = runs.get("physical", {}).get("rel_l2")
        if solver:
            text += f"; the solver alone's is {solver / network:.3g}x the network alone's"
        out.append(text + ".")
    return [" ".join(out), ""] if out else []


def render(study: dict[str, Any]) -> str:
    meta = study.get("_study", {})
    lines = [INTRO]
    if meta:
        lines += [f"Measured with `{meta.get('command', '')}`, started {meta.get('started_utc', '?')}, "
                  f"{meta.get('wall_s', 0.0) / 60:.0f} min wall time on {meta.get('cpus', '?')} shared CPU cores "
                  f"(one thread per run; load average at the end "
                  f"{', '.join(f'{x:.1f}' for x in meta.get('load_average', []))}).", ""]
    lines += ["## Acceptance checks", ""]
    for rule, met, figures in checks({k: v for k, v in study.items() if k in STUDY}):
        status = "n/a" if met is None else ("met" if met else "**not met**")
        lines.append(f"- {status}: {rule} ({figures})")
    lines.append("")
    for name in STUDY:
        if name in study:
            lines += case_section(name, study[name])
    context = [name for name in CONTEXT if name in study]
    if context:
        lines += ["## Context, not judged", "", CONTEXT_TEXT, ""]
        for meta in study.get("_context", []):
            lines += [f"Measured with `{meta.get('command', '')}`, started {meta.get('started_utc', '?')}, "
                      f"{meta.get('wall_s', 0.0) / 60:.0f} min wall time.", ""]
        for name in context:
            lines += case_section(name, study[name], level="###")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", default=str(STUDY_JSON))
    parser.add_argument("--out", default=str(PAGE))
    args = parser.parse_args(argv)
    study = json.loads(Path(args.study).read_text())
    Path(args.out).write_text(render(study))
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
