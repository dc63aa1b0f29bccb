"""Physical training: one batched L-BFGS-B objective over all windows against the seeds' loop of
one L-BFGS-B solve per window, on the same windows, in the same process.

2D Burgers 32x32 (the default experiment's model), viscosity from the guess 0.01 (truth 0.02), full
observations. Both approaches go through `PhysicalTrainer`:
- `batched`: one epoch whose objective is ONE masked MSE over all N windows (one batched rollout);
- `per-sample loop`: `batch_windows=1`, one epoch (= one L-BFGS-B solve) per window, the coefficient
  carried from window to window, N solves per repeat.
Each repeat starts from the initial guess; traces are compiled and warmed before timing; the cases
alternate so that machine load hits both alike. Reported: seconds per L-BFGS iteration and per objective
evaluation (value + gradient), seconds per window's value + gradient, and the final coefficient error.
Since the trainer stops an L-BFGS-B solve whose starting loss is at round-off, the loop's later solves
(which start at the coefficient the first solves found) cost one evaluation each.

    PYTHONPATH=src python -m benchmarks.physical_training [--quick]
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.common import figure, machine, write_json
from benchmarks.common import summarize as summary
from hyco.config.schema import PhysicalTrainerConfig
from hyco.physics import build_physics, shipped_config
from hyco.training.physical import PhysicalTrainer


def true_windows(model, sims: int, frames: int, rollout: int) -> tuple[torch.Tensor, torch.Tensor]:
    state = model.initial_state(sims, seed=0)
    with torch.no_grad():
        traj = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), frames - 1)], dim=1)
    inputs = torch.cat([traj[:, t] for t in range(frames - rollout)])
    targets = torch.cat([traj[:, t + 1:t + 1 + rollout] for t in range(frames - rollout)])
    return inputs, targets


def batched(model, data, iterations: int) -> dict[str, float]:
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=iterations), model,
                              true_coefficients=model.true_coefficients())
    start = time.perf_counter()
    metrics = trainer.train([data], 1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": metrics["iterations"], "evaluations": metrics["evaluations"],
            "rel_error": metrics["viscosity_rel_error"]}


def per_sample(model, data, iterations: int) -> dict[str, float]:
    """The seeds' `_train_sample`: one L-BFGS-B solve per window, one window after the other."""
    trainer = PhysicalTrainer(PhysicalTrainerConfig(iterations=iterations, batch_windows=1), model,
                              true_coefficients=model.true_coefficients())
    inputs, targets = data
    its = evals = 0
    start = time.perf_counter()
    for i in range(inputs.shape[0]):
        metrics = trainer.train([(inputs[i:i + 1], targets[i:i + 1])], 1)
        its, evals = its + metrics["iterations"], evals + metrics["evaluations"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "iterations": its, "evaluations": evals, "rel_error": metrics["viscosity_rel_error"]}


def run(quick: bool = True) -> dict:
    sims, frames, rollout, repeats = (2, 6, 2, 3) if quick else (8, 24, 2, 3)
    iterations = 5
    model = build_physics(shipped_config("burgers_2d"))
    data = true_windows(model, sims, frames, rollout)
    windows = int(data[0].shape[0])
    cases = {"batched": batched, "per-sample loop": per_sample}
    for case in cases.values():  # compile and warm the traces of both batch sizes
        case(model, (data[0][:2], data[1][:2]) if case is per_sample else data, 2)
        case(model, (data[0][:2], data[1][:2]) if case is per_sample else data, 2)
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            runs[name].append(case(model, data, iterations))
    result: dict = {"quick": quick, "model": "burgers 2D 32x32, viscosity 0.01 -> 0.02", "windows": windows,
                    "sims": sims, "frames": frames, "rollout_steps": rollout, "iterations_per_solve": iterations,
                    "cases": {}}
    for name, rs in runs.items():
        result["cases"][name] = {
            "s_per_iteration": summary([r["seconds"] / max(1, r["iterations"]) for r in rs]),
            "s_per_evaluation": summary([r["seconds"] / max(1, r["evaluations"]) for r in rs]),
            "s_per_window_evaluation": summary([r["seconds"] / max(1, r["evaluations"]) / (windows if name == "batched"
                                                                                           else 1) for r in rs]),
            "s_total": summary([r["seconds"] for r in rs]),
            "iterations": rs[-1]["iterations"], "evaluations": rs[-1]["evaluations"],
            "final_rel_error": rs[-1]["rel_error"],
        }
    b, p = result["cases"]["batched"], result["cases"]["per-sample loop"]
    result["speedup_per_window_evaluation"] = (p["s_per_window_evaluation"]["median"]
                                               / b["s_per_window_evaluation"]["median"])
    result["machine"] = machine()
    result["figures"] = [
        figure("physical L-BFGS: s per iteration, batched", b["s_per_iteration"]["median"], unit="s",
               higher_is_better=False, note=f"all {windows} windows per iteration"),
        figure("physical L-BFGS: s per iteration, per-sample loop", p["s_per_iteration"]["median"], unit="s",
               higher_is_better=False, note="one window per iteration"),
        figure("physical L-BFGS: per-window cost, per-sample / batched", result["speedup_per_window_evaluation"],
               unit="x"),
        figure("physical L-BFGS: final coefficient error, batched", b["final_rel_error"], higher_is_better=False),
    ]
    return result


def table(result: dict) -> str:
    lines = [f"Physical training, {result['model']}: {result['windows']} windows, R={result['rollout_steps']}, "
             f"{result['iterations_per_solve']} L-BFGS-B iterations per solve (median [min-max])",
             f"{'case':<17}{'s/iteration':>28}{'s/evaluation':>28}{'s/window-evaluation':>28}"
             f"{'its':>6}{'evals':>7}{'rel. error':>12}"]
    for name, c in result["cases"].items():
        cells = [f"{c[k]['median']:.4f} [{c[k]['min']:.4f}-{c[k]['max']:.4f}]"
                 for k in ("s_per_iteration", "s_per_evaluation", "s_per_window_evaluation")]
        lines.append(f"{name:<17}" + "".join(f"{x:>28}" for x in cells)
                     + f"{c['iterations']:>6}{c['evaluations']:>7}{c['final_rel_error']:>12.2e}")
    lines.append(f"batched: {result['speedup_per_window_evaluation']:.1f}x less time per window's loss + gradient; "
                 "one batched iteration sees every window, a per-sample iteration one window")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 windows instead of the default experiment's 176")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    print(table(result))
    path = write_json(f"physical_training{'_quick' if args.quick else ''}", result)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
