"""HYCO against physical-only and synthetic-only on the same data and budget: the acceptance study.

    python -m benchmarks.hyco_study [--cases NAME ...] [--data-seeds D ...] [--seeds S ...] [--jobs N]
                                    [--out results/hyco_study.json] [--extra OVERRIDE ...] [--list]

Each case is one `hyco run` (data generation or reuse, physical-only, the model floor, synthetic-only, HYCO
and the compute-matched network alone, evaluation on held-out simulations against the full truth) in a fresh
process with one thread (`threads=1`), at most `--jobs` at once. The default cases are issue 28's study
(`STUDY`): the default experiment, heat_2d and gray_scott as shipped (reference data on a 2x finer grid,
1 % noise on every frame, frame 0 known only where observed), with 8 test simulations each.

Per case the table shows the model floor (the solver on the full, noise-free data), the solver alone and
HYCO's solver (coefficient error and rollout error), the network alone, the compute-matched network alone
(as many samples and optimizer steps as HYCO's network, all real) and HYCO's network (rollout error), the
error of the two frame-0 fill schemes on the hidden part of the test split's frame 0, and the wall time;
`checks` evaluates the issues' acceptance rules on those figures and prints them as met or NOT MET, never
hiding one. Results are written as JSON after every case, so an interrupted study keeps what it measured.

Statistics: `--data-seeds 0 1 2` runs every case once per `data.seed` (other trajectories, masks and noise)
and `--seeds` once per training `seed` (initial weights, shuffling); the checks judge the median of each
figure over all runs of a case, the table prints the medians and each figure's range, and the JSON keeps
every run's result under `seeds` (keyed by the seed, `data<D>` or `data<D>_seed<S>`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_IN_PROCESS = threading.Lock()
TEST_SIMS = "data.num_test=8"  # the study's cases judge on 8 held-out simulations
STUDY = ("default", "heat_2d", "gray_scott")  # issue 28's study: the default --cases
SPARSE = {"default", "heat_2d", "gray_scott"}  # cases that observe part of the grid
CASES: dict[str, list[str]] = {
    # the default experiment: Burgers 2D, viscosity, centre 25 % observed
    "default": ["experiment=burgers_2d_sparse", TEST_SIMS],
    # heat 2D, periodic, diffusivity field, centre 25 % observed
    "heat_2d": ["experiment=heat_2d", TEST_SIMS],
    # Gray-Scott, D_u and D_v, a random 10 % of the grid points observed
    "gray_scott": ["experiment=gray_scott", TEST_SIMS],
    # earlier studies' variants (issues 13, 14)
    # the study's sparse cases with frame 0 known in full (the paper's setting): context for the study's figures
    "default_initial_full": ["experiment=burgers_2d_sparse", "observation.initial=full", TEST_SIMS],
    "heat_2d_initial_full": ["experiment=heat_2d", "observation.initial=full", TEST_SIMS],
    "default_oracle_states": ["experiment=burgers_2d_sparse", "observation.states=full", "observation.initial=full"],
    "default_sliding": ["experiment=burgers_2d_sparse", "trainer.physical.windows=sliding"],
    "heat_centre_oracle_states": ["experiment=heat_2d", "observation.states=full", "observation.initial=full"],
    # no harm with full data
    "heat_dirichlet_full": ["experiment=heat_2d", "physics=heat_2d_dirichlet", "observation=full"],
    "burgers_2d_full": ["experiment=burgers_2d"],
    # a weak solver: Dirichlet heat, only one quarter observed
    "heat_quarter": ["experiment=heat_2d_quarter"],
    # the solver trained through the network only (a scalar diffusivity, every value observed)
    "heat_through_network": ["experiment=heat_2d", "physics=heat_2d_dirichlet", "observation=full",
                             "physics.diffusivity.kind=scalar", "physics.diffusivity.truth.type=constant",
                             "physics.diffusivity.truth.value=0.03", "trainer.hybrid.physical.data_weight=0",
                             "trainer.hybrid.physical.interaction_region=everywhere"],
    # the HYCO paper's cases (issue 14)
    "heat_paper": ["experiment=heat_paper"],
    "heat_paper_physical_first": ["experiment=heat_paper", "trainer.hybrid.first=physical"],
    "heat_quarter_physical_first": ["experiment=heat_2d_quarter", "trainer.hybrid.first=physical"],
    "default_physical_first": ["experiment=burgers_2d_sparse", "trainer.hybrid.first=physical"],
    "heat_paper_half": ["experiment=heat_paper_half"],
    "heat_paper_full": ["experiment=heat_paper_full"],
    "gray_scott_paper": ["experiment=gray_scott_paper"],
    "gray_scott_paper_data": ["experiment=gray_scott_paper", "trainer.hybrid.physical.data_weight=1"],
}


def run_case(name: str, overrides: list[str], root: Path, data_dir: Path) -> dict[str, Any]:
    run_dir = root / re.sub(r"[^A-Za-z0-9_.+-]", "-", name)  # no '=' in a value of an override
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "hyco", "run", *overrides, f"output_dir={run_dir}",
                             f"data_dir={data_dir}", "evaluation.animation=false", "threads=1",
                             "evaluation.model_floor=true", "trainer.hybrid.matched_baseline=true"],
                            capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        return {"case": name, "overrides": overrides, "error": result.stderr[-2000:], "wall_s": wall}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    hyco_records = [json.loads(line) for line in (run_dir / "hyco" / "metrics.jsonl").read_text().splitlines()]
    runs = {}
    for key, run in metrics["runs"].items():
        runs[key] = {"rel_l2": run["rollout"]["rel_l2"], "corr_time": run["rollout"]["corr_time"],
                     "train_seconds": run.get("train_seconds"), "selected": run.get("selected"),
                     "coefficients": run.get("coefficients", {}),
                     "fields": {f: v.get("rel_l2") for f, v in run.get("fields", {}).items()}}
    out = {"case": name, "overrides": overrides, "wall_s": wall, "runs": runs,
           "observation": metrics.get("observation", {}).get("description"),
           "num_test": metrics.get("num_sims"), "reference": metrics.get("reference"),
           "trust": [{k: r.get(k) for k in ("cycle", "physical_interaction_weight", "synthetic_interaction_weight",
                                            "physical_val_loss", "synthetic_val_loss")} for r in hyco_records]}
    if metrics.get("model_floor"):
        out["model_floor"] = metrics["model_floor"]
    out["initial_guess"] = guess_errors(metrics)
    try:
        with _IN_PROCESS:  # Hydra's config loader is global: one case at a time
            out["initial_fill"] = initial_fill_errors(overrides, Path(metrics["dataset"]))
    except Exception as error:  # a measurement beside the run: its failure is reported, the run kept
        out["initial_fill"] = {"error": str(error)[-300:]}
    return out


def guess_errors(metrics: dict[str, Any]) -> dict[str, float]:
    """The relative error of the initial guess of every learned coefficient: where learning starts from."""
    import torch

    from hyco.physics.accuracy import coefficient_error

    learned = {name for run in metrics["runs"].values() for name, e in run.get("coefficients", {}).items()
               if not e.get("known")}
    truth, guess = metrics.get("true_coefficients", {}), metrics.get("initial_coefficients", {})
    return {name: coefficient_error(torch.tensor(guess[name], dtype=torch.float64),
                                    torch.tensor(truth[name], dtype=torch.float64))
            for name in sorted(learned) if name in truth and name in guess}


def initial_fill_errors(overrides: list[str], dataset: Path) -> dict[str, float]:
    """The relative L2 error, against the clean truth, of the hidden part of frame 0 of the test split as each
    fill scheme (`observation.initial_fill`) completes it from the noisy observed part; {} when frame 0 is not
    hidden (`observation.initial=full`, or every value observed)."""
    import dataclasses

    import torch

    from hyco.config.validate import load
    from hyco.data.observation import Observation
    from hyco.data.store import TrajectoryStore
    from hyco.data.windows import WindowDataset

    cfg = load("run", [*overrides, "observation.initial=observed"])
    out: dict[str, float] = {}
    with TrajectoryStore(dataset) as store:
        truth = store.trajectories("test")[:, 0]
        for scheme in ("harmonic", "mean"):
            observation = Observation.from_store(dataclasses.replace(cfg.observation, initial_fill=scheme), store)
            if not observation.hides_initial:
                return {}
            windows = WindowDataset(store, "test", 1, observation=observation, from_start=True)
            filled = windows.batch(torch.arange(len(windows))).inputs
            hidden = ~observation.known[0].expand_as(truth[0])
            dynamic = torch.zeros(truth.shape[1], dtype=torch.bool)
            dynamic[store.dynamic_channels] = True
            hidden = hidden & dynamic.reshape(-1, *[1] * (truth.dim() - 2))
            error = (filled - truth)[:, hidden].norm() / truth[:, hidden].norm()
            out[scheme] = float(error)
    return out


def _labels(seeds: list[int] | None, data_seeds: list[int] | None) -> list[tuple[str, list[str]]]:
    """(label, overrides) of every run of a case: the training seeds, the data seeds, or both crossed."""
    if seeds is None and data_seeds is None:
        return []
    if data_seeds is None:
        return [(str(s), [f"seed={s}"]) for s in seeds]
    if seeds is None:
        return [(f"data{d}", [f"data.seed={d}"]) for d in data_seeds]
    return [(f"data{d}_seed{s}", [f"data.seed={d}", f"seed={s}"]) for d in data_seeds for s in seeds]


def _median_tree(trees: list[Any]) -> Any:
    """The median of every number found at the same place in all `trees` (nested dicts); what is not a number
    everywhere is taken from the first tree."""
    if all(isinstance(t, dict) for t in trees):
        return {k: _median_tree([t[k] for t in trees]) for k in trees[0] if all(k in t for t in trees)}
    if all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in trees):
        return statistics.median(trees)
    return trees[0]


def combine_seeds(name: str, per_seed: dict[int, dict]) -> dict[str, Any]:
    """One case's result over several seeds: the median of each figure, and every seed's result."""
    done = {seed: r for seed, r in per_seed.items() if "runs" in r}
    combined: dict[str, Any] = {"case": name, "seeds": {str(s): r for s, r in per_seed.items()},
                                "wall_s": sum(r.get("wall_s", 0.0) for r in per_seed.values())}
    if len(done) < len(per_seed):
        failed = [s for s in per_seed if s not in done]
        listed = ", ".join(map(str, failed))
        combined["error"] = f"seed(s) [{listed}] failed: " + per_seed[failed[0]].get("error", "")[-300:]
        return combined
    first = next(iter(done.values()))
    case_overrides = [o for o in first["overrides"] if not o.startswith(("seed=", "data.seed="))]
    combined.update(overrides=case_overrides, observation=first.get("observation"),
                    runs=_median_tree([r["runs"] for r in done.values()]),
                    num_test=first.get("num_test"), reference=first.get("reference"))
    floors = [r["model_floor"] for r in done.values() if r.get("model_floor")]
    if floors:
        combined["model_floor"] = {**floors[0], "coefficients": _median_tree([f["coefficients"] for f in floors])}
    guesses = [r["initial_guess"] for r in done.values() if r.get("initial_guess")]
    if guesses:
        combined["initial_guess"] = _median_tree(guesses)
    fills = [r["initial_fill"] for r in done.values() if r.get("initial_fill") and "error" not in r["initial_fill"]]
    if fills:
        combined["initial_fill"] = _median_tree(fills)
    return combined


def spread(result: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """Per run, the range over the seeds of the rollout error and of the largest coefficient error (and of the
    model floor's largest error, as run `model_floor`)."""
    seeds = [r for r in result.get("seeds", {}).values() if "runs" in r]
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for key in result.get("runs", {}):
        figures = {"rel L2": [r["runs"].get(key, {}).get("rel_l2") for r in seeds],
                   "coef err": [_coefficient(r["runs"].get(key, {})) for r in seeds]}
        out[key] = {f: (min(v), max(v)) for f, v in figures.items() if v and all(x is not None for x in v)}
    floors = [_floor(r) for r in seeds]
    if floors and all(f is not None for f in floors):
        out["model_floor"] = {"coef err": (min(floors), max(floors))}
    return out


def _floor(result: dict) -> float | None:
    """The model floor's largest coefficient error."""
    values = [v for v in result.get("model_floor", {}).get("coefficients", {}).values() if v is not None]
    return max(values) if values else None


def _coefficient(run: dict, key: str = "rel_error") -> float | None:
    """The largest error of the learned coefficients (known ones left out)."""
    values = [c.get(key) for c in run.get("coefficients", {}).values() if c.get(key) is not None and not c.get("known")]
    return max(values) if values else None


def checks(results: dict[str, dict]) -> list[tuple[str, bool | None, str]]:
    """The acceptance rules of issue 13 on the measured figures: (rule, met, figures)."""
    out = []

    def get(case: str):
        r = results.get(case)
        return None if r is None or "runs" not in r else r["runs"]

    for case in ("heat_dirichlet_full", "burgers_2d_full"):
        runs = get(case)
        if runs:
            alone, hyco = _coefficient(runs["physical"]), _coefficient(runs["hyco_physical"])
            out.append((f"{case}: HYCO solver <= 1.05 x solver alone + 1e-4", hyco <= 1.05 * alone + 1e-4,
                        f"{hyco:.3g} vs {alone:.3g}"))
    out += study_checks(results)
    runs = get("heat_quarter")
    if runs:
        for key, label in (("rel_error", "whole domain"), ("rel_error_unobserved", "outside the observed box")):
            alone, hyco = _coefficient(runs["physical"], key), _coefficient(runs["hyco_physical"], key)
            out.append((f"heat_quarter: HYCO solver kappa error < solver alone ({label})",
                        None if alone is None or hyco is None else hyco < alone, f"{hyco} vs {alone}"))
    runs = get("heat_through_network")
    if runs:
        hyco = _coefficient(runs["hyco_physical"])
        out.append(("heat_through_network: solver trained through the network only within 5 %", hyco <= 0.05,
                    f"{hyco:.3g}"))
    runs = get("heat_paper")
    if runs:
        alone = _coefficient(runs["physical"], "parameter_rel_error")
        hyco = _coefficient(runs["hyco_physical"], "parameter_rel_error")
        if alone is not None and alone <= 0.2:
            out.append(("heat_paper quarter: solver alone <= 0.2 already, so HYCO <= 1.05 x solver alone",
                        hyco <= 1.05 * alone, f"{hyco:.3g} vs {alone:.3g}"))
        elif alone is not None:
            out.append(("heat_paper quarter: HYCO parameter error <= 0.6 and <= 0.5 x solver alone",
                        hyco <= 0.6 and hyco <= 0.5 * alone, f"{hyco:.3g} vs {alone:.3g}"))
    for case in ("heat_paper_half", "heat_paper_full"):
        runs = get(case)
        if runs:
            alone = _coefficient(runs["physical"], "parameter_rel_error")
            hyco = _coefficient(runs["hyco_physical"], "parameter_rel_error")
            out.append((f"{case}: HYCO parameter error <= 1.05 x solver alone", hyco <= 1.05 * alone,
                        f"{hyco:.3g} vs {alone:.3g}"))
    for case, bound, label in (("gray_scott_paper", 0.02, "through the network only, within 2 %"),
                               ("gray_scott_paper_data", 1e-3, "with real data on the solver, within 1e-3")):
        runs = get(case)
        if runs:
            hyco = _coefficient(runs["hyco_physical"])
            out.append((f"{case}: D_u, D_v {label}", hyco <= bound, f"{hyco:.3g} (solver alone "
                        f"{_coefficient(runs['physical']):.3g})"))
    return out


def study_checks(results: dict[str, dict]) -> list[tuple[str, bool | None, str]]:
    """Issue 28's acceptance rules on the study's cases (medians over the seeds): no harm to the solver on every
    case, HYCO's network ahead of the compute-matched network alone on at least two sparse cases, at least 3
    data seeds and 8 test simulations per case."""
    out: list[tuple[str, bool | None, str]] = []
    studied = {name: r for name, r in results.items() if name in STUDY and "runs" in r}
    for name, result in studied.items():
        runs = result["runs"]
        alone, hyco = _coefficient(runs["physical"]), _coefficient(runs["hyco_physical"])
        if alone is not None and hyco is not None:
            out.append((f"{name}: no harm, HYCO solver <= 1.05 x solver alone + 1e-3 (coefficient error)",
                        hyco <= 1.05 * alone + 1e-3, f"{hyco:.3g} vs {alone:.3g}"))
    gains = []
    for name, result in studied.items():
        runs = result["runs"]
        if name in SPARSE and "synthetic_matched" in runs:
            hyco_net, matched = runs["hyco_synthetic"]["rel_l2"], runs["synthetic_matched"]["rel_l2"]
            if hyco_net is not None and matched is not None:
                gains.append((name, hyco_net <= 0.8 * matched, f"{name} {hyco_net:.3g} vs {matched:.3g}"))
    if gains:
        met = sum(1 for _, ok, _ in gains if ok)
        out.append(("HYCO network rollout <= 0.8 x compute-matched network alone on >= 2 sparse cases",
                    met >= 2, f"{met} of {len(gains)}: " + "; ".join(text for _, _, text in gains)))
    for name, result in studied.items():
        data_seeds = {label.split("_")[0] for label in result.get("seeds", {}) if label.startswith("data")}
        out.append((f"{name}: >= 3 data seeds", len(data_seeds) >= 3, f"{len(data_seeds)}"))
        out.append((f"{name}: >= 8 test simulations", (result.get("num_test") or 0) >= 8, f"{result.get('num_test')}"))
    return out


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "–"


def _with_range(median: Any, bounds: tuple[float, float] | None) -> str:
    if bounds is None or median is None:
        return _fmt(median)
    return f"{_fmt(median)} ({_fmt(bounds[0])}–{_fmt(bounds[1])})"


STUDY_COLUMNS = (("solver alone", "physical"), ("HYCO solver", "hyco_physical"), ("network alone", "synthetic"),
                 ("network alone, compute-matched", "synthetic_matched"), ("HYCO network", "hyco_synthetic"))


def study_rows(result: dict) -> list[tuple[str, str, str]]:
    """(model, coefficient error, rollout error) rows of one study case: medians (ranges over the seeds)."""
    ranges = spread(result)
    guess = [v for v in result.get("initial_guess", {}).values() if v is not None]
    rows = [("initial guess (where the solver starts)", _fmt(max(guess)) if guess else "–", ""),
            ("model floor (full, noise-free data)",
             _with_range(_floor(result), ranges.get("model_floor", {}).get("coef err")), "")]
    for label, key in STUDY_COLUMNS:
        run = result["runs"].get(key)
        if run is None:
            continue
        coefficient = _with_range(_coefficient(run), ranges.get(key, {}).get("coef err")) \
            if key.endswith("physical") else ""
        rows.append((label, coefficient, _with_range(run["rel_l2"], ranges.get(key, {}).get("rel L2"))))
    return rows


def print_table(results: dict[str, dict]) -> None:
    print(f"{'case':<26} {'run':<16} {'coef err':>9} {'observed':>9} {'unobs.':>9} {'rel L2':>9} {'train s':>8}")
    for name, result in results.items():
        if "runs" not in result:
            print(f"{name:<26} ERROR {result.get('error', '')[-300:]}")
            continue
        for key, run in result["runs"].items():
            parameters = _coefficient(run, "parameter_rel_error")

            def fmt(v):
                return f"{v:9.3g}" if isinstance(v, (int, float)) else f"{'–':>9}"
            print(f"{name:<26} {key:<16} {fmt(_coefficient(run))} {fmt(_coefficient(run, 'rel_error_observed'))} "
                  f"{fmt(_coefficient(run, 'rel_error_unobserved'))} {fmt(run['rel_l2'])} {fmt(run['train_seconds'])}"
                  + (f"  parameters {parameters:.3g}" if parameters is not None else ""))
    for name, result in results.items():
        if name in STUDY and "runs" in result:
            print(f"{name}: medians (ranges) over {', '.join(result.get('seeds', {})) or 'one run'}; "
                  f"wall {result.get('wall_s', 0.0):.0f} s")
            for model, coefficient, rollout in study_rows(result):
                print(f"  {model:<36} coef err {coefficient:<28} rel L2 {rollout}")
            fill = result.get("initial_fill")
            if fill:
                print("  frame 0, hidden part filled: " + ", ".join(f"{k} {_fmt(v)}" for k, v in fill.items()))
    for name, result in results.items():
        if len(result.get("seeds", {})) > 1 and "runs" in result:
            ranges = "; ".join(f"{key} " + ", ".join(f"{f} {lo:.3g}–{hi:.3g}" for f, (lo, hi) in figures.items())
                               for key, figures in spread(result).items() if figures)
            print(f"{name}: medians over seeds {', '.join(result['seeds'])}; ranges: {ranges}")
    for rule, met, figures in checks(results):
        status = "n/a" if met is None else ("met" if met else "NOT MET")
        print(f"[{status:>7}] {rule}: {figures}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="*", default=list(STUDY),
                        help=f"cases to run (default: the study, {', '.join(STUDY)}; --list shows all)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "hyco_study.json"))
    parser.add_argument("--workdir", default=None, help="where run directories and datasets go (default: a temp dir)")
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="run each case once per training seed (the `seed=` key) and judge the medians "
                             "(default: the configured seed, once)")
    parser.add_argument("--data-seeds", nargs="+", type=int, default=None,
                        help="run each case once per data seed (`data.seed=`: trajectories, masks, noise), crossed "
                             "with --seeds when both are given; the medians are judged")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each with one thread; default 1)")
    parser.add_argument("--extra", nargs="+", default=[], metavar="OVERRIDE",
                        help="overrides added to every case (e.g. trainer.synthetic.lr=3e-3); the results are "
                             "stored under '<case>+<overrides>' so they never replace the plain case's")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, overrides in CASES.items():
            print(f"{name:<26} {' '.join(overrides)}")
        return 0
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; --list shows them")
    out = Path(args.out)
    results: dict[str, dict] = json.loads(out.read_text()) if out.exists() else {}
    started, wall_start = datetime.now(timezone.utc), time.perf_counter()
    labels = _labels(args.seeds, args.data_seeds)
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        root = Path(args.workdir or tmp)
        pending = {}
        for case in args.cases:
            overrides = [*CASES[case], *args.extra]
            name = "+".join([case, *args.extra])  # a run directory and a key of the results
            print(f"--- {name}: hyco run {' '.join(overrides)}" + (f" x {len(labels)} seeds" if labels else ""),
                  flush=True)
            if not labels:
                pending[name] = {None: pool.submit(run_case, name, overrides, root / "runs", root / "data")}
            else:
                pending[name] = {label: pool.submit(run_case, f"{name}_{label}" if label[0].isalpha()
                                                    else f"{name}_seed{label}", [*overrides, *more],
                                                    root / "runs", root / "data")
                                 for label, more in labels}
        for name, futures in pending.items():  # in the order submitted; later ones keep running meanwhile
            if None in futures:
                results[name] = futures[None].result()
            else:
                results[name] = combine_seeds(name, {label: f.result() for label, f in futures.items()})
            results["_study"] = {"command": "python -m benchmarks.hyco_study " + " ".join(argv or sys.argv[1:]),
                                 "started_utc": started.isoformat(timespec="seconds"),
                                 "wall_s": time.perf_counter() - wall_start, "load_average": list(os.getloadavg()),
                                 "cpus": os.cpu_count()}
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1))
            print_table({name: results[name]})
    if args.extra:  # the checks are of the plain cases; variants are printed, not judged
        print_table({k: results[k] for k in results if k.partition("+")[0] in args.cases and "+" in k})
        return 0
    print_table({k: results[k] for k in CASES if k in results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
