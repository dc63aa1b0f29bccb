"""Run the benchmark suite: every benchmark module, one summary table, one JSON file.

    python -m benchmarks [--quick] [--only NAME ...]

Each module has `run(quick) -> dict`. Its figures (a ratio against a bare reference measured in the same
run, or a plain measurement) come from `figures(result)` when the module defines it, else from the
result's "figures" list. A figure that misses its target is printed as BELOW/ABOVE TARGET, never hidden.
A module that is not present is skipped with a note; one that fails is reported as ERROR (exit code 1)
and the others still run. Everything lands in `benchmarks/results/<timestamp>.json`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from typing import Any

from benchmarks import common

MODULES = ("data_pipeline", "synthetic_training", "physics_rollout", "physical_training", "hybrid_cycle",
           "network_step", "scaling", "threads", "cli_help", "report_time", "sensor_cost")


def _physics_rollout_figures(result: dict) -> list[dict]:
    """benchmarks.physics_rollout reports the wrapper's overhead against a bare PhiFlow loop per model."""
    figures = []
    for row in result.get("models", []):
        grid = "x".join(map(str, row.get("resolution", [])))
        figures.append(common.figure(f"rollout {row['config']} {grid} {row.get('mode', '')} vs bare PhiFlow loop",
                                     1.0 - row["overhead"], 0.8))
    return figures


EXTRACTORS = {"physics_rollout": _physics_rollout_figures}


def collect_figures(name: str, module: Any, result: dict) -> list[dict]:
    if hasattr(module, "figures"):
        return list(module.figures(result))
    if isinstance(result, dict) and "figures" in result:
        return list(result["figures"])
    if name in EXTRACTORS:
        return EXTRACTORS[name](result)
    return [common.figure(f"{name}: no figures declared (see JSON)", None)]


def run_module(name: str, quick: bool) -> dict[str, Any]:
    """Import and run one benchmark; never raises (a failure is part of the report)."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"benchmarks.{name}":
            return {"status": "skipped", "note": f"benchmarks/{name}.py is not present", "figures": []}
        module, failure = None, error
    except Exception as error:  # noqa: BLE001 - the other modules must still run and the failure be shown
        module, failure = None, error
    try:
        if module is None:
            raise failure
        result = module.run(quick=quick)
        figures = collect_figures(name, module, result)
    except Exception as error:  # noqa: BLE001
        traceback.print_exc()
        return {"status": "error", "error": f"{type(error).__name__}: {error}", "figures": [],
                "seconds": time.perf_counter() - start}
    return {"status": "ran", "seconds": time.perf_counter() - start, "result": result, "figures": figures}


def summary_table(modules: dict[str, dict[str, Any]]) -> str:
    rows = [("benchmark", "figure", "value", "target", "status")]
    for name, out in modules.items():
        if out["status"] == "skipped":
            rows.append((name, out["note"], "", "", "SKIPPED"))
        elif out["status"] == "error":
            rows.append((name, out["error"][:90], "", "", "ERROR"))
        for fig in out["figures"]:
            value = common.format_value(fig["value"]) + (f" {fig['unit']}" if fig.get("unit") else "")
            rows.append((name, fig["name"], value, common.target_text(fig), fig["status"]))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    lines = ["  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (about 3 minutes)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=MODULES,
                        help=f"run only these benchmarks (of: {', '.join(MODULES)})")
    args = parser.parse_args(argv)

    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    started = common.timestamp()
    start = time.perf_counter()
    machine_before = common.machine()
    modules: dict[str, dict[str, Any]] = {}
    for name in args.only or MODULES:
        print(f"\n===== {name} =====", flush=True)
        modules[name] = run_module(name, args.quick)
        if "seconds" in modules[name]:
            print(f"({name}: {modules[name]['seconds']:.0f} s)", flush=True)
    machine_after = common.machine()
    figures = [{"benchmark": name, **fig} for name, out in modules.items() for fig in out["figures"]]
    report = {"suite": "hyco benchmarks", "quick": args.quick, "started": started,
              "seconds": time.perf_counter() - start, "machine_before": machine_before,
              "machine_after": machine_after, "figures": figures, "modules": modules}
    print("\n" + summary_table(modules))
    misses = [f for f in figures if f["status"] in (common.BELOW, common.ABOVE)]
    load = machine_after["load_average"]
    print(f"\n{len(figures)} figures, {len(misses)} miss their target; {report['seconds']:.0f} s; load average "
          f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} on {machine_after['cpus']} CPUs, "
          f"{machine_after['torch_threads']} torch threads")
    print(f"wrote {common.write_json(None, report)}")
    return 1 if any(out["status"] == "error" for out in modules.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
