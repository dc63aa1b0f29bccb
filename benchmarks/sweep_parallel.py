"""A sweep's jobs in parallel against the same sweep one job at a time (issue 31).

The sweep: `hyco run -m experiment=heat_2d_quick trainer.hybrid.alpha=0.1,0.5 seed=0,1` (2 x 2 jobs, the
baselines trained once per seed and reused). "parallel": the joblib launcher with two jobs at a time; "one at
a time": Hydra's basic launcher. Both with `threads=auto`, which divides the cores between the parallel jobs
(one thread each on 2 cores) and gives the single job all of them. Each case is a fresh `python -m hyco`
process on a dataset generated beforehand, the cases interleaved. Figure: wall(parallel) / wall(one at a
time), target <= 0.65. The machine is shared: the load average before and after each case is recorded, and
the CPU seconds of each sweep's processes (a parallel sweep imports torch and PhiFlow once per worker).

    PYTHONPATH=src python -m benchmarks.sweep_parallel [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import figure, machine, summarize, write_json

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["experiment=heat_2d_quick", "device=cpu", "evaluation.animation=false", "threads=auto",
         "trainer.hybrid.alpha=0.1,0.5", "seed=0,1"]
CASES = {"one at a time": [], "parallel": ["hydra/launcher=parallel", "hydra.launcher.n_jobs=2"]}
TARGET = 0.65


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _hyco(args: list[str], log: Path) -> float:
    """Seconds of one `python -m hyco ...`; raises when it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(ROOT / "src")
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "hyco", *args], stdout=out, stderr=subprocess.STDOUT,
                              env=env).returncode
    if code != 0:
        raise RuntimeError(f"hyco {' '.join(args)} failed ({code}); see {log}")
    return time.perf_counter() - start


def measure(repeats: int, root: Path) -> dict[str, Any]:
    data = f"data_dir={root}/data"
    _hyco(["generate", "experiment=heat_2d_quick", data, f"output_dir={root}/generate"], root / "generate.log")
    walls: dict[str, list[float]] = {name: [] for name in CASES}
    loads: dict[str, list[tuple[float, float]]] = {name: [] for name in CASES}
    cpu: dict[str, list[float]] = {name: [] for name in CASES}  # CPU seconds of the sweep's processes
    for repeat in range(repeats):
        for name, launcher in CASES.items():
            before, cpu_before = os.getloadavg()[0], _children_cpu()
            out = root / f"{name.replace(' ', '_')}-{repeat}"
            walls[name].append(_hyco(["run", "-m", *launcher, *SWEEP, data, f"output_dir={out}"],
                                     root / f"{out.name}.log"))
            loads[name].append((before, os.getloadavg()[0]))
            cpu[name].append(_children_cpu() - cpu_before)
            print(f"{name}: {walls[name][-1]:.1f} s wall, {cpu[name][-1]:.1f} s CPU (load {before:.2f} -> "
                  f"{loads[name][-1][1]:.2f})", flush=True)
    ratio = summarize(walls["parallel"])["median"] / summarize(walls["one at a time"])["median"]
    return {"walls_s": {k: summarize(v) for k, v in walls.items()}, "cpu_s": {k: summarize(v) for k, v in cpu.items()},
            "load_average": loads,
            "figures": [figure("sweep wall, parallel / one at a time", ratio, TARGET, higher_is_better=False,
                               note="2 x 2 heat_2d_quick sweep, n_jobs=2, threads=auto")]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hyco-sweep-bench-") as tmp:
        result = {"machine": machine(), **measure(args.repeats, Path(tmp))}
    for fig in result["figures"]:
        print(f"{fig['name']}: {fig['value']:.3f} (target <= {fig['target']}) {fig['status']}")
    print(f"wrote {write_json('sweep_parallel', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
