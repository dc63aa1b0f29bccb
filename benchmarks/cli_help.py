"""`hyco --help` must answer at once (target: at most 0.5 s wall time): it imports no torch.

Measured as fresh processes, interleaved with a bare `python -c pass` reference (the interpreter's own start
on this machine): the figures are the median seconds of `hyco --help` and `hyco list`, and their ratio to the
bare start. Whether torch was imported is checked once in a child process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.common import figure, interleaved, seconds, write_json

SRC = str(Path(__file__).resolve().parents[1] / "src")
TARGET_S = 0.5


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    return env


def _command(*args: str):
    env = _env()
    return lambda: subprocess.run([sys.executable, *args], env=env, check=True, capture_output=True)


def imports_torch() -> bool:
    probe = ("import sys\nfrom hyco.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('torch' in sys.modules, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], env=_env(), capture_output=True, text=True, check=True)
    return done.stderr.strip().splitlines()[-1] == "True"


def run(quick: bool = True) -> dict:
    repeats = 5 if quick else 15
    timing = interleaved({"python -c pass (reference)": seconds(_command("-c", "pass")),
                          "hyco --help": seconds(_command("-m", "hyco", "--help")),
                          "hyco list": seconds(_command("-m", "hyco", "list"))},
                         repeats=repeats, warmup=1, reference="python -c pass (reference)")
    help_s = timing["cases"]["hyco --help"]["median"]
    list_s = timing["cases"]["hyco list"]["median"]
    torch_loaded = imports_torch()
    result = {"benchmark": "cli_help", "quick": quick, "timing": timing, "imports_torch": torch_loaded,
              "figures": [
                  figure("hyco --help wall seconds", help_s, TARGET_S, higher_is_better=False, unit="s"),
                  figure("hyco list wall seconds", list_s, TARGET_S, higher_is_better=False, unit="s"),
                  figure("hyco --help vs bare python start", timing["ratio"]["hyco --help"],
                         note="information: time beyond the interpreter's start"),
              ]}
    for name, case in timing["cases"].items():
        print(f"{name:<28} median {case['median']:.3f} s (min {case['min']:.3f}, max {case['max']:.3f}), "
              f"x{timing['ratio'][name]:.2f} of the bare start")
    print(f"hyco --help imports torch: {torch_loaded}; target <= {TARGET_S} s")
    print(f"wrote {write_json('cli_help', result)}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    run(quick=parser.parse_args(argv).quick)


if __name__ == "__main__":
    main(sys.argv[1:])
