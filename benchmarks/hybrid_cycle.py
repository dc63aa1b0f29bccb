"""One HYCO cycle on 2D Burgers split into its phases, for each storage strategy of the generated data.

Phases (HybridTrainer's per-cycle `seconds_*` metrics): physical rollouts (generated windows for the
network), synthetic training, synthetic rollouts (generated windows for the solver), physical training,
storage (cache writes, reads and cleanup) and regeneration (on-the-fly chunks re-made while a trainer
reads them). The phases add up to the cycle; the rest ("other") is the trainer's bookkeeping.

The three strategies run as three HybridTrainers on the same data, same initial weights, same physical
model (so the same jit traces), their cycles interleaved so machine load hits them alike. Each is warmed
up by one cycle (jit tracing), then measured over `repeats` cycles (median with min and max). The
strategy figures are ratios of cycle time against the in-memory strategy measured in the same run.

    PYTHONPATH=src python -m benchmarks.hybrid_cycle [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.common import figure, machine, summarize, write_json
from benchmarks.hyco_setup import PHASES, HycoSize, build, one_cycle, phase_summary

STRATEGIES = ("memory", "cache", "on_the_fly")


def run(quick: bool = False) -> dict:
    from benchmarks.hyco_setup import burgers_section
    from hyco.physics import build_physics
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    if quick:
        size, repeats = HycoSize(resolution=32, sims=4, frames=10, rollout_steps=2, chunk_size=16), 2
    else:
        size, repeats = HycoSize(resolution=64, sims=4, frames=18, rollout_steps=2, chunk_size=16), 3
    device = torch.device("cpu")
    physics = build_physics(burgers_section(size.resolution), device, torch.float32)
    cycles: dict[str, list[dict]] = {s: [] for s in STRATEGIES}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {}
        for strategy in STRATEGIES:
            size.strategy = strategy
            trainers[strategy] = build(size, Path(tmp) / "data", Path(tmp) / f"cache_{strategy}", device, physics)
        for hybrid, real in trainers.values():  # warm-up: jit traces, first allocations
            one_cycle(hybrid, real)
        for _ in range(repeats):
            for strategy, (hybrid, real) in trainers.items():
                cycles[strategy].append(one_cycle(hybrid, real))
        num_real = len(trainers["memory"][1])
        for hybrid, _ in trainers.values():
            hybrid.synthetic.close()
    phases = {s: phase_summary(c) for s, c in cycles.items()}
    memory = phases["memory"]
    compute = {p: memory[p]["median"] for p in PHASES}
    bottleneck = max(compute, key=compute.get)
    cycle_ratio = {s: summarize([c["seconds_cycle"] for c in cycles[s]])["median"] / memory["cycle"]["median"]
                   for s in STRATEGIES}
    result = {
        "benchmark": "hybrid_cycle", "quick": quick, "device": str(device), "repeats": repeats,
        "size": {"resolution": size.resolution, "sims": size.sims, "frames": size.frames,
                 "rollout_steps": size.rollout_steps, "alpha": size.alpha, "network": size.network,
                 "batch_size": size.batch_size, "physical_iterations": size.physical_iterations,
                 "chunk_size": size.chunk_size, "real_windows": num_real,
                 "generated_windows_per_model": cycles["memory"][0]["num_generated_physical"]},
        "seconds": phases, "cycle_time_vs_memory": cycle_ratio,
        "strategy_seen": {s: sorted({c["strategy"] for c in cycles[s]}) for s in STRATEGIES},
        "bottleneck": bottleneck, "bottleneck_share": compute[bottleneck] / memory["cycle"]["median"],
        "peak_rss_mb": max(c["peak_rss_mb"] for cs in cycles.values() for c in cs), "machine": machine(),
    }
    result["figures"] = [
        figure("HYCO cycle, memory strategy", memory["cycle"]["median"], unit="s",
               note=f"{size.resolution}^2, {num_real} real windows"),
        figure(f"bottleneck phase: {bottleneck}", result["bottleneck_share"], unit="of cycle"),
        figure("cache strategy cycle time vs memory", cycle_ratio["cache"], note="information: cost of the disk cache"),
        figure("on_the_fly strategy cycle time vs memory", cycle_ratio["on_the_fly"],
               note="information: cost of re-generating"),
    ]
    print_table(result)
    print(f"wrote {write_json('hybrid_cycle', result)}")
    return result


def print_table(result: dict) -> None:
    s = result["size"]
    print(f"HYCO cycle, 2D Burgers {s['resolution']}^2, {s['real_windows']} real + "
          f"{s['generated_windows_per_model']} generated windows per model, R={s['rollout_steps']}, "
          f"median (min-max) seconds over {result['repeats']} cycles")
    header = f"{'phase':<20}" + "".join(f"{name:>27}" for name in STRATEGIES)
    print(header)
    print("-" * len(header))
    for phase in (*PHASES, "other", "cycle"):
        cells = []
        for strategy in STRATEGIES:
            p = result["seconds"][strategy][phase]
            share = p["median"] / result["seconds"][strategy]["cycle"]["median"]
            spread = f" ({p['min']:.2f}-{p['max']:.2f})"
            cells.append(f"{p['median']:.3f}{spread}" + (f" {share:4.0%}" if phase != "cycle" else ""))
        print(f"{phase:<20}" + "".join(f"{cell:>27}" for cell in cells))
    print(f"bottleneck (memory strategy): {result['bottleneck']} ({result['bottleneck_share']:.0%} of the cycle)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grid, few cycles")
    run(quick=parser.parse_args().quick)


if __name__ == "__main__":
    main()
