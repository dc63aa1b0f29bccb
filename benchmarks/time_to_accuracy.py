"""Time to accuracy of HYCO on the issue-16 case: a named baseline configuration against the new defaults,
in the SAME run, their cycles interleaved.

The case (`CASE`, overrides of the shipped `burgers_2d` experiment): 2D Burgers with a viscosity FIELD at
64x64, 4 training simulations of 20 frames (2 validation, 2 test), full observations with 2 % noise, the
rollout curriculum 1,1,2,3, HYCO cycles of 2 synthetic and 1 physical epoch, a UNet of width 64, depth 3
(max_width 64: 0.72 M parameters). The two configurations differ only in how the work is done:

- `baseline` (`BASELINE`): what hyco did before issue 16 -- torch's circular pad per convolution, GELU,
  the default memory layout, no torch.compile, a synthetic validation rollout after every epoch and
  another one for the trust weights, no early stop of the physical epochs, every physics batch size traced
  as it comes, micro-batches of the synthetic rollout sized to 0.5 GB of activations (now 0.35);
- `new`: the shipped defaults.

Each configuration runs in its own process (so that its peak RSS is its own), built the way `hyco train
mode=hybrid` builds it, on one dataset the parent generated first. The parent asks the two processes for
one cycle at a time, alternating, so that a burst of load from other processes hits both alike. A cycle is
measured in CPU-seconds of its process (`time.process_time`: with one torch thread, what the cycle cost,
however loaded the machine was) and in wall seconds. After every cycle, outside the timed part, each
process reports the network's observed-validation error (rollout from frame 0 of the validation
simulations, `SyntheticTrainer.validate`) and the viscosity field's relative error.

Figures: the steady cycle's CPU-seconds (median of the cycles after the first), new / baseline; the first
cycle over the steady one (what tracing costs) for each; CPU-seconds to reach the stated accuracy
(`TARGETS`), new / baseline; the final errors of both; peak RSS of both.

    PYTHONPATH=src python -m benchmarks.time_to_accuracy [--quick] [--cycles N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import figure, machine, write_json

CASE = [
    "experiment=burgers_2d",
    "physics.resolution=[64,64]",
    "physics.viscosity.kind=field",
    "physics.viscosity.truth.type=sinusoid",
    "physics.viscosity.truth.value=0.005",
    "physics.viscosity.truth.amplitude=0.5",
    "physics.viscosity.guess.value=0.0025",
    "data.num_train=4",
    "data.num_val=2",
    "data.num_test=2",
    "data.num_frames=20",
    "data.rollout_steps=3",
    "trainer.synthetic.curriculum=[1,1,2,3]",
    "trainer.hybrid.cycles=2",
    "trainer.hybrid.synthetic_epochs_per_cycle=2",
    "trainer.hybrid.physical_epochs_per_cycle=1",
    "network.width=64",
    "network.depth=3",
    "network.max_width=64",
]
QUICK = [  # the same case, small: a smoke test of the benchmark, not a figure
    "physics.resolution=[32,32]",
    "physics.viscosity.truth.value=0.02",
    "physics.viscosity.guess.value=0.01",
    "data.num_frames=8",
    "network.width=8",
    "network.max_width=16",
]
BASELINE = [
    "network.periodic_pad=torch",
    "network.activation=gelu",
    "network.channels_last=false",
    "network.compile=false",
    "trainer.synthetic.validate_every=1",
    "trainer.physical.early_stop=false",
    "physics.batch_buckets=false",
    "trainer.hybrid.release_memory=false",
    "trainer.synthetic.memory_budget_gb=0.5",
]
CONFIGURATIONS = {"baseline": BASELINE, "new": []}
# the stated accuracy: network observed-validation MSE and viscosity relative error, both at most
TARGETS = {"network_val_loss": None, "coefficient_rel_error": None}
RATIO_TARGET = 1 / 3
FIRST_CYCLE_TARGET = 1.3
RSS_TARGET_MB = 1.6 * 1024


# ---------------------------------------------------------------------------- child process
def _worker(conn, overrides: list[str], root: str, name: str) -> None:
    """One configuration: build the HYCO trainer, then run one cycle per request and report it."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    try:
        hybrid, windows, physical_windows, close = _build(overrides, Path(root), name)
        conn.send({"ready": True, "cpu_setup": time.process_time()})
        while conn.recv() == "cycle":
            conn.send(_one_cycle(hybrid, windows, physical_windows))
        close()
    except Exception as exc:  # noqa: BLE001 - the parent reports it
        import traceback

        conn.send({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


def _build(overrides: list[str], root: Path, name: str):
    """The HybridTrainer exactly as `hyco train mode=hybrid` builds it (hyco.tasks.train.train_hybrid)."""
    import torch

    from hyco.config.validate import load
    from hyco.tasks.context import RunContext
    from hyco.tasks.experiment import RUN_DIRS, open_experiment
    from hyco.training.hybrid import HybridTrainer

    run_dir = root / name
    cfg = load("train", [*overrides, f"output_dir={run_dir}", f"data_dir={root / 'data'}", "mode=hybrid"])
    ctx = RunContext(cfg=cfg, run_dir=run_dir, device=torch.device("cpu"))
    exp = open_experiment(ctx)
    hcfg = cfg.trainer.hybrid
    hybrid_dir = run_dir / RUN_DIRS["hybrid"]
    synthetic = exp.synthetic_trainer(hybrid_dir / "synthetic",
                                      total_epochs=hcfg.cycles * hcfg.synthetic_epochs_per_cycle, per_cycle=True)
    synthetic.progress = False
    physical = exp.physical_trainer(hybrid_dir / "physical")
    windows = exp.train_windows()
    completion = exp.completion(windows)
    physical_windows = exp.physical_windows(physical)
    hybrid = HybridTrainer(hcfg, synthetic, physical, cache_dir=ctx.cache_dir, run_dir=hybrid_dir, seed=cfg.seed,
                           batch_size=cfg.trainer.synthetic.batch_size, device=ctx.device,
                           validation=exp.validation_data(), completion=completion)
    real_physical = physical_windows if physical_windows.from_start else None  # as train_hybrid passes it

    def close() -> None:
        synthetic.close()
        if completion is not None:
            completion.close()

    return hybrid, windows, real_physical, close


def _one_cycle(hybrid, windows, real_physical) -> dict[str, Any]:
    from hyco.utils.memory import peak_rss_mb

    cpu, wall = time.process_time(), time.perf_counter()
    metrics = hybrid.train(windows, hybrid.cycle + 1, real_physical=real_physical)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    validation = hybrid.synthetic.validate()  # not timed: the same figure for both configurations
    errors = [v for k, v in metrics.items() if k.endswith("_rel_error") and isinstance(v, float)]
    return {"cycle": hybrid.cycle, "cpu_seconds": cpu, "wall_seconds": wall,
            "network_val_loss": validation["val_loss"], "network_val_rel_l2": validation["val_rel_l2_mean"],
            "coefficient_rel_error": max(errors) if errors else None,
            "physical_val_loss": metrics.get("physical_val_loss"), "peak_rss_mb": peak_rss_mb(),
            "phases": {k[len("seconds_"):]: v for k, v in metrics.items() if k.startswith("seconds_")}}


# ---------------------------------------------------------------------------- parent
def _generate(overrides: list[str], root: Path) -> None:
    """The dataset both configurations read (generation is not part of either's time)."""
    import torch

    from hyco.config.validate import load
    from hyco.data.generate import ensure_dataset
    from hyco.physics import build_physics

    cfg = load("generate", [*overrides, f"output_dir={root / 'generate'}", f"data_dir={root / 'data'}"])
    ensure_dataset(cfg, build_physics(dict(cfg.physics), torch.device("cpu"), torch.float32), root / "data")


def time_to_target(cycles: list[dict[str, Any]], targets: dict[str, float | None]) -> float | None:
    """CPU-seconds until the end of the first cycle that meets every stated target (None: never)."""
    total = 0.0
    for c in cycles:
        total += c["cpu_seconds"]
        if all(t is None or (c.get(k) is not None and c[k] <= t) for k, t in targets.items()):
            return total
    return None


def summarise(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    steady = [c["cpu_seconds"] for c in cycles[1:]] or [cycles[0]["cpu_seconds"]]
    median = statistics.median(steady)
    return {"first_cycle_cpu_s": cycles[0]["cpu_seconds"], "steady_cycle_cpu_s": median,
            "steady_cycle_wall_s": statistics.median([c["wall_seconds"] for c in cycles[1:]] or
                                                     [cycles[0]["wall_seconds"]]),
            "first_over_steady": cycles[0]["cpu_seconds"] / median,
            "final": {k: cycles[-1][k] for k in ("network_val_loss", "network_val_rel_l2", "coefficient_rel_error",
                                                 "physical_val_loss")},
            "peak_rss_mb": max(c["peak_rss_mb"] for c in cycles)}


def run(quick: bool = False, cycles: int | None = None,
        variants: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """`variants`: more configurations (name -> overrides on top of the new defaults), timed interleaved with
    the two and reported beside them, not judged."""
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    cycles = cycles or (2 if quick else 4)
    case = [*CASE, *(QUICK if quick else []), f"trainer.hybrid.cycles={cycles}"]
    load_before = list(os.getloadavg())
    context = mp.get_context("spawn")
    configurations = {**CONFIGURATIONS, **(variants or {})}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _generate(case, root)
        workers = {}
        for name, extra in configurations.items():
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, [*case, *extra], tmp, name), daemon=True)
            process.start()
            workers[name] = (process, parent)
        try:
            for name, (_, conn) in workers.items():
                _check(name, conn.recv())
            for _ in range(cycles):
                for name, (_, conn) in workers.items():
                    conn.send("cycle")
                    results[name].append(_check(name, conn.recv()))
                    c = results[name][-1]
                    print(f"{name:>9} cycle {c['cycle']}: {c['cpu_seconds']:7.1f} CPU-s ({c['wall_seconds']:6.1f} s "
                          f"wall), network val loss {c['network_val_loss']:.4g}, coefficient error "
                          f"{_fmt(c['coefficient_rel_error'])}, peak RSS {c['peak_rss_mb']:.0f} MB", flush=True)
        finally:
            for process, conn in workers.values():
                if process.is_alive():
                    conn.send("stop")
                process.join(timeout=60)
    summary = {name: summarise(c) for name, c in results.items()}
    targets = _targets(results)
    reach = {name: time_to_target(c, targets) for name, c in results.items()}
    base, new = summary["baseline"], summary["new"]
    ratio = new["steady_cycle_cpu_s"] / base["steady_cycle_cpu_s"]
    reach_ratio = reach["new"] / reach["baseline"] if reach["new"] and reach["baseline"] else None
    result = {"benchmark": "time_to_accuracy", "quick": quick, "case": case, "baseline_overrides": BASELINE,
              "cycles": results, "summary": summary, "targets": targets, "cpu_s_to_targets": reach,
              "steady_cycle_ratio": ratio, "time_to_targets_ratio": reach_ratio,
              "machine": machine() | {"load_average_before": load_before}}
    result["figures"] = [
        figure("steady HYCO cycle CPU-s, new / baseline", ratio, RATIO_TARGET, higher_is_better=False,
               note=f"{new['steady_cycle_cpu_s']:.1f} / {base['steady_cycle_cpu_s']:.1f} CPU-s"),
        figure("CPU-s to the stated accuracy, new / baseline", reach_ratio, RATIO_TARGET, higher_is_better=False,
               note=f"{_fmt(reach['new'])} / {_fmt(reach['baseline'])} CPU-s"),
        figure("first cycle / steady cycle, new", new["first_over_steady"], FIRST_CYCLE_TARGET, higher_is_better=False),
        figure("first cycle / steady cycle, baseline", base["first_over_steady"]),
        figure("network val loss, new / baseline (final)",
               new["final"]["network_val_loss"] / base["final"]["network_val_loss"], 1.0, higher_is_better=False,
               note="equal or better accuracy; noise of a few % is expected"),
        figure("coefficient error, new / baseline (final)", _ratio(new["final"]["coefficient_rel_error"],
                                                                   base["final"]["coefficient_rel_error"]), 1.0,
               higher_is_better=False),
        figure("peak RSS, new", new["peak_rss_mb"], RSS_TARGET_MB, higher_is_better=False, unit="MB"),
        figure("peak RSS, baseline", base["peak_rss_mb"], unit="MB"),
    ]
    for name in variants or {}:
        v = summary[name]
        result["figures"].append(figure(f"steady HYCO cycle CPU-s, {name} / baseline",
                                        v["steady_cycle_cpu_s"] / base["steady_cycle_cpu_s"],
                                        note=f"variant: new defaults + {' '.join(variants[name])}"))
        result["figures"].append(figure(f"peak RSS, {name}", v["peak_rss_mb"], unit="MB"))
    print_table(result)
    for name in variants or {}:
        v = summary[name]
        print(f"variant {name} ({' '.join(variants[name])}): steady cycle {v['steady_cycle_cpu_s']:.1f} CPU-s "
              f"({v['steady_cycle_cpu_s'] / base['steady_cycle_cpu_s']:.3f} of the baseline's), first / steady "
              f"{v['first_over_steady']:.3f}, peak RSS {v['peak_rss_mb']:.0f} MB, final network val loss "
              f"{v['final']['network_val_loss']:.5g}, coefficient error {_fmt(v['final']['coefficient_rel_error'])}, "
              f"CPU-s to targets {_fmt(reach[name])}")
    print(f"wrote {write_json('time_to_accuracy', result)}")
    return result


def _targets(results: dict[str, list[dict[str, Any]]]) -> dict[str, float | None]:
    """`TARGETS`, or where none is stated (quick runs), what the baseline reached at its last cycle."""
    out = dict(TARGETS)
    for key, value in out.items():
        if value is None:
            final = results["baseline"][-1].get(key)
            out[key] = None if final is None else final * 1.05
    return out


def _check(name: str, message: dict[str, Any]) -> dict[str, Any]:
    if "error" in message:
        raise RuntimeError(f"{name}: {message['error']}\n{message.get('traceback', '')}")
    return message


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'':<28}{'baseline':>12}{'new':>12}{'new/base':>10}")
    rows = [("first cycle CPU-s", "first_cycle_cpu_s"), ("steady cycle CPU-s", "steady_cycle_cpu_s"),
            ("steady cycle wall s", "steady_cycle_wall_s"), ("first / steady", "first_over_steady"),
            ("peak RSS MB", "peak_rss_mb")]
    s = result["summary"]
    for label, key in rows:
        b, n = s["baseline"][key], s["new"][key]
        print(f"{label:<28}{b:>12.3g}{n:>12.3g}{n / b:>10.3f}")
    for key in ("network_val_loss", "network_val_rel_l2", "coefficient_rel_error"):
        b, n = s["baseline"]["final"][key], s["new"]["final"][key]
        print(f"{'final ' + key:<28}{_fmt(b):>12}{_fmt(n):>12}{_fmt(_ratio(n, b)):>10}")
    reach = result["cpu_s_to_targets"]
    print(f"{'CPU-s to targets':<28}{_fmt(reach['baseline']):>12}{_fmt(reach['new']):>12}"
          f"{_fmt(result['time_to_targets_ratio']):>10}")
    print(f"targets: {result['targets']}; load average {result['machine']['load_average_before']} -> "
          f"{result['machine']['load_average']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small case, two cycles (a smoke test)")
    parser.add_argument("--cycles", type=int, default=None, help="HYCO cycles per configuration (default 4)")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:OVERRIDE[,OVERRIDE...]",
                        help="one more configuration, the new defaults plus these overrides (repeatable)")
    args = parser.parse_args()
    variants = {}
    for text in args.variant:
        name, sep, overrides = text.partition(":")
        if not sep or not name or not overrides:
            parser.error(f"--variant {text!r}: expected NAME:OVERRIDE[,OVERRIDE...]")
        variants[name] = overrides.split(",")
    run(quick=args.quick, cycles=args.cycles, variants=variants)


if __name__ == "__main__":
    main()
