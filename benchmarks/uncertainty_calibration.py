"""Calibration and cost of the coefficients' uncertainty, both methods on the same runs: the Laplace posterior
(hyco.training.laplace) and the ensemble (hyco.training.ensemble). Over data seeds, how often the truth lies
inside the 95 % interval of a learned number, and each method's seconds against a physical epoch's.

Each case over `--seeds` data seeds (a seed draws the trajectories' initial states, `seed`, and the observation
noise, `observation.seed`); every run goes through the public pipeline (generate, train physical, evaluate with
each method on the same trained solver) in a temporary directory, one thread:
- burgers_1d: 1D Burgers viscosity (burgers_1d_quick, 32 cells), the left half observed, frame 0 known in full,
  2 % noise;
- scalar: 2D Burgers viscosity (burgers_2d_quick, 16x16), the centre quarter observed, 2 % noise;
- parametric: heat_paper_quick (two bumps' heights and centres, a quarter observed), 2 % noise.
Coverage: the share of (seed, learned number) pairs whose truth lies inside the interval; the acceptance band
is 85-99 % (issue 30). Also per number, since a number the data do not determine may be covered differently.
Cost: the method's seconds / the mean seconds of a physical epoch of the same run (Laplace's target <= 1; the
ensemble's is about K times a physical training by construction).

    PYTHONPATH=src python -m benchmarks.uncertainty_calibration [--seeds N] [--cases burgers_1d scalar parametric]
        [--methods laplace ensemble] [--members 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import figure, machine, write_json

CASES = {
    "burgers_1d": ["experiment=burgers_1d_quick", "observation.initial=full", "observation.noise_level=0.02",
                   "trainer.physical.epochs=4", "trainer.physical.iterations=20"],
    "scalar": ["experiment=burgers_2d_quick", "observation=centre", "observation.noise_level=0.02",
               "trainer.physical.epochs=4", "trainer.physical.iterations=20"],
    "parametric": ["experiment=heat_paper_quick", "observation.noise_level=0.02",
                   "trainer.physical.epochs=4", "trainer.physical.iterations=20"],
}


METHODS = ("laplace", "ensemble")
DEFAULT_SEEDS = {"burgers_1d": 10, "scalar": 10, "parametric": 4}


def one_run(case: str, seed: int, root: Path, methods=METHODS, members: int = 8) -> dict:
    """One trained solver, its uncertainty by each of `methods`: {method: the run's figures}."""
    import hyco

    overrides = [*CASES[case], f"seed={seed}", f"observation.seed={1000 + seed}", "threads=1", "log_level=WARNING"]
    keys = {"output_dir": str(root / f"{case}_{seed}"), "data_dir": str(root / "data")}
    run = hyco.Run(hyco.compose(overrides, **keys), overwrite=True)
    run.generate()
    run.train("physical")
    epochs = [json.loads(line)["seconds"] for line in (run.mode_dir("physical") / "metrics.jsonl").read_text()
              .splitlines() if line.strip()]
    out = {}
    for method in methods:
        extra = [f"evaluation.uncertainty={method}", f"evaluation.ensemble_size={members}"]
        metrics = hyco.Run(hyco.compose([*overrides, *extra], **keys)).evaluate()
        out[method] = _figures(metrics, seed, epochs)
    return out


def _figures(metrics: dict, seed: int, epochs: list[float]) -> dict:
    entry = metrics["runs"]["physical"]
    truth = metrics["true_coefficients"]
    rows = []
    for name, c in entry["coefficients"].items():
        if "interval" in c:
            low, high = c["interval"]
            rows.append({"number": name, "truth": float(truth[name]), "low": low, "high": high,
                         "class": c["class"], "std": c["std"]})
        for group, (lows, highs) in c.get("parameter_interval", {}).items():
            true = np.asarray(c["true_parameters"][group], dtype=float).reshape(-1)
            for i, (low, high) in enumerate(zip(lows, highs)):
                rows.append({"number": f"{name}.{group}[{i}]", "truth": float(true[i]), "low": low, "high": high,
                             "class": c["parameter_class"][group][i], "std": c["parameter_std"][group][i]})
    for row in rows:
        row["inside"] = row["low"] <= row["truth"] <= row["high"]
    return {"seed": seed, "numbers": rows, "posterior_seconds": entry["uncertainty"]["seconds"],
            "epoch_seconds": statistics.mean(epochs), "noise_std": entry["uncertainty"]["noise_std"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="data seeds per case (default: "
                        "burgers_1d 10, scalar 10, parametric 4: both methods in about 15 min alone, one thread)")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--members", type=int, default=8, help="the ensemble's K")
    args = parser.parse_args()
    result: dict = {"machine": machine(), "cases": {}, "figures": [], "members": args.members}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            start = time.perf_counter()
            seeds = args.seeds or DEFAULT_SEEDS[case]
            runs = [one_run(case, seed, Path(tmp), args.methods, args.members) for seed in range(seeds)]
            result["cases"][case] = {"overrides": CASES[case], "seeds": seeds,
                                     "seconds": time.perf_counter() - start}
            for method in args.methods:
                summary = summarise([r[method] for r in runs])
                result["cases"][case][method] = summary
                result["figures"] += [
                    figure(f"{case}, {method}: truth inside the 95 % interval", summary["coverage"],
                           note=f"{seeds} seeds; band 0.85-0.99"),
                    figure(f"{case}, {method}: seconds / physical epoch", summary["posterior_over_epoch_median"],
                           1.0 if method == "laplace" else None, higher_is_better=False)]
                print(f"{case}, {method}: coverage {summary['coverage']:.3f} over {summary['pairs']} (seed, number) "
                      f"pairs from {seeds} seeds; per number {summary['coverage_per_number']}; median std "
                      f"{summary['median_std_per_number']}; seconds / epoch "
                      f"{summary['posterior_over_epoch_median']:.2f}", flush=True)
            if len(args.methods) == 2:
                ratio = [e["std"] / lp["std"] for a, b in ((r["ensemble"], r["laplace"]) for r in runs)
                         for e, lp in zip(a["numbers"], b["numbers"]) if lp["std"] > 0]
                result["cases"][case]["ensemble_over_laplace_std_median"] = statistics.median(ratio)
                print(f"{case}: ensemble std / Laplace std, median over (seed, number) {statistics.median(ratio):.2f} "
                      f"(range {min(ratio):.2f}-{max(ratio):.2f}); {time.perf_counter() - start:.0f} s", flush=True)
    print(write_json("uncertainty_calibration", result))


def summarise(runs: list[dict]) -> dict:
    """Coverage over the (seed, number) pairs of one method's runs, per number, and its cost."""
    pairs = [row for run in runs for row in run["numbers"]]
    per_number: dict[str, list] = {}
    for row in pairs:
        per_number.setdefault(row["number"], []).append(row)
    return {"coverage": float(np.mean([row["inside"] for row in pairs])), "pairs": len(pairs),
            "coverage_per_number": {k: float(np.mean([r["inside"] for r in v])) for k, v in per_number.items()},
            "median_std_per_number": {k: float(np.median([r["std"] for r in v])) for k, v in per_number.items()},
            "classes_per_number": {k: sorted({r["class"] for r in v}) for k, v in per_number.items()},
            "posterior_over_epoch_median": statistics.median(r["posterior_seconds"] / r["epoch_seconds"]
                                                             for r in runs),
            "runs": runs}


if __name__ == "__main__":
    main()
