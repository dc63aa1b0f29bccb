"""Scaling of a HYCO cycle on 2D Burgers with the number of training simulations and the resolution,
and the memory bound of the generated data.

Every configuration runs in a fresh Python process, so its peak RSS (VmHWM) is its own: the
process builds the trainer on a dataset the parent generated beforehand (generation does not count),
runs one warm-up cycle (jit tracing) and `repeats` measured cycles; it reports the median cycle time,
its phases and the peak RSS.

1. Simulations: cycle time for 1, 2, 4, 8 training simulations (quick: 1, 2, 4); the least-squares
   slope is the time per added simulation, the intercept the fixed cost of a cycle.
2. Resolution: cycle time and peak RSS at 32, 64, 128 cells per axis (quick: 32, 64).
3. Memory budget: a dataset whose generated windows (alpha = 1) are several times `memory_budget_gb`.
   With `strategy: auto` the trainer must choose on_the_fly; the peak RSS increase due to the generated
   data is the peak RSS of that run minus the peak RSS of a baseline run whose alpha yields ONE chunk
   of generated windows (same real data, same batches, and the same generation code paths and jit
   traces, but negligible generated data); it must stay under the budget. The same run with the memory
   strategy forced shows what keeping the data costs (about their size: the measurement can see it).

    PYTHONPATH=src python -m benchmarks.scaling [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks.common import figure, machine, write_json
from benchmarks.hyco_setup import HycoSize
from hyco.utils.memory import peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
MARKER = "SCALING_RESULT "
BASELINE = "one generated chunk (baseline)"


# ---------------------------------------------------------------------------- child process
def measure_one(size: HycoSize, data_dir: Path, repeats: int) -> dict[str, Any]:
    """One configuration, in this (fresh) process: cycle time and peak RSS."""
    import statistics

    import torch

    from benchmarks.hyco_setup import build, one_cycle, phase_summary
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    with tempfile.TemporaryDirectory() as cache:
        hybrid, real = build(size, data_dir, Path(cache), torch.device("cpu"))
        rss_setup = peak_rss_mb()
        warm = one_cycle(hybrid, real)
        cycles = [one_cycle(hybrid, real) for _ in range(repeats)]
        hybrid.synthetic.close()
    return {"size": asdict(size), "real_windows": len(real), "generated_per_model": warm["num_generated_physical"],
            "strategy": cycles[-1]["strategy"], "seconds_cycle": statistics.median(c["seconds_cycle"] for c in cycles),
            "seconds_warmup_cycle": warm["seconds_cycle"], "phases": phase_summary(cycles),
            "peak_rss_after_setup_mb": rss_setup, "peak_rss_mb": peak_rss_mb(), "threads": torch.get_num_threads()}


def _child(argv: list[str]) -> None:
    spec = json.loads(argv[0])
    size = HycoSize(**spec["size"])
    print(MARKER + json.dumps(measure_one(size, Path(spec["data_dir"]), spec["repeats"])), flush=True)


# ---------------------------------------------------------------------------- parent
def _prepare_dataset(size: HycoSize, data_dir: Path) -> None:
    """Generate the dataset in the parent, so that no child's peak RSS includes the generation."""
    import torch

    from benchmarks.hyco_setup import burgers_section
    from hyco.config.schema import DataConfig, HycoConfig
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    section = burgers_section(size.resolution)
    cfg = HycoConfig(task="generate", experiment_name="bench", physics=section, network=dict(size.network),
                     data=DataConfig(num_train=size.sims, num_val=0, num_test=0, num_frames=size.frames,
                                     rollout_steps=size.rollout_steps, generation_batch=min(size.sims, 8)))
    ensure_dataset(cfg, build_physics(section, torch.device("cpu"), torch.float32), data_dir)


def run_in_subprocess(size: HycoSize, data_dir: Path, repeats: int, timeout: float = 900) -> dict[str, Any]:
    _prepare_dataset(size, data_dir)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH")) if p)
    spec = json.dumps({"size": asdict(size), "data_dir": str(data_dir), "repeats": repeats})
    done = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--one", spec], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    for line in done.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER):])
    raise RuntimeError(f"scaling child failed (exit {done.returncode}) for {asdict(size)}:\n{done.stderr[-2000:]}")


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def run(quick: bool = False) -> dict:
    from hyco.training.augmentation import estimate_bytes

    repeats = 1 if quick else 2
    base = HycoSize(resolution=32, frames=10 if quick else 16, rollout_steps=2,
                    network={"name": "convnet", "width": 8, "depth": 2}, physical_iterations=2, chunk_size=32)
    sim_counts = [1, 2, 4] if quick else [1, 2, 4, 8]
    resolutions = [32, 64] if quick else [32, 64, 128]
    # generated windows are a whole number of chunks (one jit trace per chunk size, as in the baseline);
    # quick: 2 x 360 windows at 32^2 = 18 MB against 8 MB (RSS noise is about +-15 MB: indicative only);
    # full: 2 x 768 windows at 64^2 = 144 MB against 51 MB
    budget_gb = 0.008 if quick else 0.05
    memory_size = replace(base, resolution=32 if quick else 64, sims=12 if quick else 16, frames=32 if quick else 50,
                          alpha=1.0, memory_budget_gb=budget_gb, chunk_size=24 if quick else 32, batch_size=64,
                          physical_batch_windows=64,  # the same physical objective with and without generated data
                          network={"name": "convnet", "width": 4, "depth": 1})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        by_sims = [run_in_subprocess(replace(base, sims=n), data_dir, repeats) for n in sim_counts]
        by_resolution = [by_sims[sim_counts.index(2)] if r == base.resolution else  # the same configuration
                         run_in_subprocess(replace(base, sims=2, resolution=r), data_dir, repeats)
                         for r in resolutions]
        one_chunk = memory_size.chunk_size / (memory_size.sims * (memory_size.frames - memory_size.rollout_steps))
        memory_runs = {
            BASELINE: run_in_subprocess(replace(memory_size, alpha=one_chunk), data_dir, repeats),
            "auto, tiny budget": run_in_subprocess(memory_size, data_dir, repeats),
            "memory strategy forced": run_in_subprocess(replace(memory_size, strategy="memory"), data_dir, repeats),
        }
    slope, intercept = linear_fit([float(n) for n in sim_counts], [r["seconds_cycle"] for r in by_sims])
    baseline = memory_runs[BASELINE]["peak_rss_mb"]
    auto = memory_runs["auto, tiny budget"]
    generated = auto["generated_per_model"]
    generated_mb = 2 * estimate_bytes(generated, memory_size.rollout_steps, 2, (memory_size.resolution,) * 2) / 2**20
    increase = {name: r["peak_rss_mb"] - baseline for name, r in memory_runs.items()}
    budget_mb = budget_gb * 1024
    result = {
        "benchmark": "scaling", "quick": quick, "repeats": repeats,
        "by_sims": [{"sims": n, **r} for n, r in zip(sim_counts, by_sims)],
        "by_resolution": [{"resolution": res, **r} for res, r in zip(resolutions, by_resolution)],
        "seconds_per_added_sim": slope, "seconds_fixed_per_cycle": intercept,
        "memory": {"budget_mb": budget_mb, "generated_data_mb": generated_mb, "strategy_chosen": auto["strategy"],
                   "peak_rss_increase_mb": increase, "runs": memory_runs},
        "machine": machine(),
    }
    result["figures"] = [
        figure("HYCO cycle time per added simulation", slope, unit="s",
               note=f"{base.resolution}^2, {base.frames - base.rollout_steps} windows per sim"),
        *[figure(f"HYCO cycle at {r['resolution']}^2 (2 sims)", r["seconds_cycle"], unit="s")
          for r in result["by_resolution"]],
        *[figure(f"peak RSS at {r['resolution']}^2 (2 sims)", r["peak_rss_mb"], unit="MB")
          for r in result["by_resolution"]],
        figure(f"auto strategy with {generated_mb:.0f} MB generated > {budget_mb:.0f} MB budget is on_the_fly",
               1.0 if auto["strategy"] == "on_the_fly" else 0.0, 1.0),
        figure("peak RSS increase of generated data (on_the_fly)", increase["auto, tiny budget"], budget_mb,
               higher_is_better=False, unit="MB"),
        figure("peak RSS increase of generated data (memory, reference)", increase["memory strategy forced"],
               unit="MB", note=f"generated data {generated_mb:.0f} MB"),
    ]
    print_table(result)
    print(f"wrote {write_json('scaling', result)}")
    return result


def print_table(result: dict) -> None:
    print(f"{'sims':>5} {'res':>5} {'real':>6} {'gen':>6} {'cycle s':>9} {'peak RSS MB':>12}  strategy")
    for row in result["by_sims"] + result["by_resolution"]:
        s = row["size"]
        print(f"{s['sims']:>5} {s['resolution']:>5} {row['real_windows']:>6} {row['generated_per_model']:>6} "
              f"{row['seconds_cycle']:>9.2f} {row['peak_rss_mb']:>12.0f}  {row['strategy']}")
    print(f"time per added simulation {result['seconds_per_added_sim']:.3f} s, "
          f"fixed {result['seconds_fixed_per_cycle']:.3f} s")
    m = result["memory"]
    print(f"memory: generated {m['generated_data_mb']:.0f} MB vs budget {m['budget_mb']:.0f} MB -> "
          f"{m['strategy_chosen']}")
    for name, mb in m["peak_rss_increase_mb"].items():
        run = m["runs"][name]
        print(f"  {name:<30} peak RSS {run['peak_rss_mb']:8.0f} MB  (+{mb:6.0f} MB)  "
              f"cycle {run['seconds_cycle']:.2f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer points, smaller data")
    parser.add_argument("--one", metavar="JSON", help=argparse.SUPPRESS)  # child process: one configuration
    args = parser.parse_args(argv)
    if args.one:
        _child([args.one])
    else:
        run(quick=args.quick)


if __name__ == "__main__":
    main(sys.argv[1:])
