"""Calibration and cost of the Laplace posterior (hyco.training.laplace): over data seeds, how often the truth
lies inside the 95 % interval of a learned number, and the posterior's seconds against a physical epoch's.

Two cases, each over `--seeds` data seeds (a seed draws the trajectories' initial states, `seed`, and the
observation noise, `observation.seed`); every run goes through the public pipeline (generate, train physical,
evaluate) in a temporary directory, one thread:
- scalar: 2D Burgers viscosity (burgers_2d_quick, 16x16), the centre quarter observed, 2 % noise;
- parametric: heat_paper_quick (two bumps' heights and centres, a quarter observed), 2 % noise.
Coverage: the share of (seed, learned number) pairs whose truth lies inside the interval; the acceptance band
is 85-99 % (issue 30). Also per number, since a number the data do not determine may be covered differently.
Cost: posterior seconds / the mean seconds of a physical epoch of the same run (target <= 1).

    PYTHONPATH=src python -m benchmarks.uncertainty_calibration [--seeds 20] [--cases scalar parametric]
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
    "scalar": ["experiment=burgers_2d_quick", "observation=centre", "observation.noise_level=0.02",
               "trainer.physical.epochs=4", "trainer.physical.iterations=20"],
    "parametric": ["experiment=heat_paper_quick", "observation.noise_level=0.02",
                   "trainer.physical.epochs=4", "trainer.physical.iterations=20"],
}


def one_run(case: str, seed: int, root: Path) -> dict:
    import hyco

    overrides = [*CASES[case], f"seed={seed}", f"observation.seed={1000 + seed}", "threads=1", "log_level=WARNING"]
    cfg = hyco.compose(overrides, output_dir=str(root / f"{case}_{seed}"), data_dir=str(root / "data"))
    run = hyco.Run(cfg, overwrite=True)
    run.generate()
    run.train("physical")
    metrics = run.evaluate()
    entry = metrics["runs"]["physical"]
    epochs = [json.loads(line)["seconds"] for line in (run.mode_dir("physical") / "metrics.jsonl").read_text()
              .splitlines() if line.strip()]
    truth = metrics["true_coefficients"]
    rows = []
    for name, c in entry["coefficients"].items():
        if "interval" in c:
            low, high = c["interval"]
            rows.append({"number": name, "truth": float(truth[name]), "low": low, "high": high,
                         "class": c["class"]})
        for group, (lows, highs) in c.get("parameter_interval", {}).items():
            true = np.asarray(c["true_parameters"][group], dtype=float).reshape(-1)
            for i, (low, high) in enumerate(zip(lows, highs)):
                rows.append({"number": f"{name}.{group}[{i}]", "truth": float(true[i]), "low": low, "high": high,
                             "class": c["parameter_class"][group][i]})
    for row in rows:
        row["inside"] = row["low"] <= row["truth"] <= row["high"]
    return {"seed": seed, "numbers": rows, "posterior_seconds": entry["uncertainty"]["seconds"],
            "epoch_seconds": statistics.mean(epochs), "noise_std": entry["uncertainty"]["noise_std"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    args = parser.parse_args()
    result: dict = {"machine": machine(), "cases": {}, "figures": []}
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            start = time.perf_counter()
            runs = [one_run(case, seed, Path(tmp)) for seed in range(args.seeds)]
            pairs = [row for run in runs for row in run["numbers"]]
            coverage = float(np.mean([row["inside"] for row in pairs]))
            per_number = {}
            for row in pairs:
                per_number.setdefault(row["number"], []).append(row)
            cost = statistics.median(r["posterior_seconds"] / r["epoch_seconds"] for r in runs)
            result["cases"][case] = {
                "overrides": CASES[case], "seeds": args.seeds, "coverage": coverage,
                "coverage_per_number": {k: float(np.mean([r["inside"] for r in v])) for k, v in per_number.items()},
                "classes_per_number": {k: sorted({r["class"] for r in v}) for k, v in per_number.items()},
                "posterior_over_epoch_median": cost, "seconds": time.perf_counter() - start, "runs": runs}
            result["figures"] += [
                figure(f"{case}: truth inside the 95 % interval", coverage, note=f"{args.seeds} seeds; band 0.85-0.99"),
                figure(f"{case}: Laplace seconds / physical epoch", cost, 1.0, higher_is_better=False)]
            print(f"{case}: coverage {coverage:.3f} over {len(pairs)} (seed, number) pairs from {args.seeds} seeds; "
                  f"per number {result['cases'][case]['coverage_per_number']}; posterior / epoch {cost:.2f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(write_json("uncertainty_calibration", result))


if __name__ == "__main__":
    main()
