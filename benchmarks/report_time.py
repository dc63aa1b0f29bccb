"""How long the report of a quick experiment takes (target: at most 2 s wall for `heat_2d_quick`).

One `hyco run experiment=heat_2d_quick` (3 test simulations, OMP_NUM_THREADS=1) makes the run directory. Each
case is then a fresh process that imports hyco's report task (matplotlib with it, as `hyco run` has before
its report phase) and times `Run.report()` alone: the first figure's font loading is inside the clock, the
interpreter's start and the imports are not. Cases, interleaved:

- `report, threads=1`: every figure drawn in the one process;
- `report, threads=2`: the figures drawn in two forked processes (the report uses the job's thread budget);
- reference: one bare matplotlib figure of 20 image panels (the size of the snapshot grid) drawn with pyplot
  and saved with a tight bounding box, as the earlier report drew each of its figures.

Figures: the median wall seconds of each report case (targets: at most 2 s), the CPU seconds of the one-process
case (its own, the cost on an idle machine), and each report case as a multiple of the bare figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import figure, interleaved, write_json

SRC = str(Path(__file__).resolve().parents[1] / "src")
TARGET_S = 2.0
EXPERIMENT = "heat_2d_quick"

_REPORT = """
import json, resource, sys, time
from hyco.api import Run
run = Run([f"experiment={sys.argv[1]}", f"threads={sys.argv[3]}", "log_level=warning"], output_dir=sys.argv[2])
import hyco.tasks.report  # noqa: F401  (imported by `hyco run` before its report phase)
children = resource.getrusage(resource.RUSAGE_CHILDREN)
wall, cpu = time.perf_counter(), time.process_time()
run.report()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
after = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": cpu,
                  "children_cpu": after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime}))
"""

_BARE = """
import json, time
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
data = np.random.default_rng(0).standard_normal((5, 4, 16, 16))
wall = time.perf_counter()
fig, axes = plt.subplots(5, 4, figsize=(9.6, 11.5))
for row, panels in zip(axes, data):
    for ax, values in zip(row, panels):
        ax.imshow(values, origin="lower")
fig.savefig(sys.argv[1], dpi=100, bbox_inches="tight")
plt.close(fig)
print(json.dumps({"wall": time.perf_counter() - wall}))
""".replace("import json, time", "import json, sys, time")


def _env(threads: int = 1) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def make_run(root: Path) -> Path:
    run_dir = root / "run"
    subprocess.run([sys.executable, "-m", "hyco", "run", f"experiment={EXPERIMENT}", f"output_dir={run_dir}",
                    f"data_dir={root / 'data'}", "data.num_test=3"], cwd=root, env=_env(), check=True,
                   capture_output=True, timeout=1800)
    return run_dir


def _case(code: str, args: list[str], threads: int, extra: dict[str, list[float]]):
    """A case measuring, in a fresh process, what the script prints; its CPU seconds are kept in `extra`."""

    def case() -> float:
        done = subprocess.run([sys.executable, "-c", code, *args], env=_env(threads), capture_output=True,
                              text=True, check=True, timeout=600)
        out = json.loads(done.stdout.strip().splitlines()[-1])
        for key in ("cpu", "children_cpu"):
            if key in out:
                extra.setdefault(key, []).append(out[key])
        return out["wall"]

    return case


def run(quick: bool = True) -> dict:
    repeats = 3 if quick else 7
    with tempfile.TemporaryDirectory(prefix="hyco-report-bench-") as tmp:
        root = Path(tmp)
        run_dir = make_run(root)
        serial_cpu: dict[str, list[float]] = {}
        parallel_cpu: dict[str, list[float]] = {}
        timing = interleaved({
            "bare matplotlib figure (reference)": _case(_BARE, [str(root / "bare.png")], 1, {}),
            "report, threads=1": _case(_REPORT, [EXPERIMENT, str(run_dir), "1"], 1, serial_cpu),
            "report, threads=2": _case(_REPORT, [EXPERIMENT, str(run_dir), "2"], 2, parallel_cpu),
        }, repeats=repeats, warmup=1, reference="bare matplotlib figure (reference)")
        figures_drawn = sorted(p.name for p in (run_dir / "figures").iterdir())
    serial = timing["cases"]["report, threads=1"]["median"]
    parallel = timing["cases"]["report, threads=2"]["median"]
    cpu = sorted(serial_cpu["cpu"])[len(serial_cpu["cpu"]) // 2]
    result = {"benchmark": "report_time", "quick": quick, "experiment": EXPERIMENT, "timing": timing,
              "cpu_seconds": {"threads=1": serial_cpu, "threads=2": parallel_cpu}, "figures_drawn": figures_drawn,
              "figures": [
                  figure(f"report of {EXPERIMENT}, threads=1, wall s", serial, TARGET_S, higher_is_better=False,
                         unit="s"),
                  figure(f"report of {EXPERIMENT}, threads=2, wall s", parallel, TARGET_S, higher_is_better=False,
                         unit="s"),
                  figure(f"report of {EXPERIMENT}, threads=1, CPU s (the wall time of an idle core)", cpu, TARGET_S,
                         higher_is_better=False, unit="s"),
                  figure("report, threads=1, in bare 20-panel figures", timing["ratio"]["report, threads=1"],
                         note="information: what the report costs in figures drawn the earlier way"),
              ]}
    for name, case in timing["cases"].items():
        print(f"{name:<38} median {case['median']:.2f} s (min {case['min']:.2f}, max {case['max']:.2f}), "
              f"x{timing['ratio'][name]:.2f} of the bare figure")
    print(f"CPU seconds of the report, threads=1: {', '.join(f'{v:.2f}' for v in serial_cpu['cpu'])}; "
          f"threads=2: own {', '.join(f'{v:.2f}' for v in parallel_cpu['cpu'])}, drawing processes "
          f"{', '.join(f'{v:.2f}' for v in parallel_cpu['children_cpu'])}")
    print(f"load average {timing['machine']['load_average_before']} before, {timing['machine']['load_average']} after;"
          f" target <= {TARGET_S} s; {len(figures_drawn)} figures")
    print(f"wrote {write_json('report_time', result)}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    run(quick=parser.parse_args(argv).quick)


if __name__ == "__main__":
    main(sys.argv[1:])
