"""The bad inputs of the fault-injection study: each ends before any work in one line naming the key.

In-process through the CLI's own pre-start check (`validate_command_line`: config, paths, memory); the slow
test runs each through `python -m hyco` and records its wall time (exit 2, one line, no traceback)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hyco.cli import validate_command_line
from hyco.errors import HycoError

from .conftest import QUICK, hyco, one_error_line


def bad_inputs(tmp_path):
    """(task, overrides, the error's beginning); directories under `tmp_path`."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    dirs = [f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"]
    return {
        "appended unknown key": ("train", ["+foo=1"], "foo: unknown key"),
        "appended unknown nested key": ("train", ["+trainer.hybrid.foo=1"], "trainer.hybrid.foo: unknown key"),
        "infinite learning rate": ("train", ["trainer.physical.lr=inf"], "trainer.physical.lr: expected a finite"),
        "NaN learning rate": ("train", ["trainer.synthetic.lr=nan"], "trainer.synthetic.lr: expected a finite"),
        "infinite domain": ("train", ["experiment=burgers_1d_quick", "physics.bounds=[inf]"],
                            "physics.bounds[0]: expected a finite"),
        "output_dir is a file": ("train", [f"output_dir={a_file}"], f"output_dir: {a_file} is a file"),
        "output_dir below a file": ("run", [f"output_dir={a_file}/run"], f"output_dir: cannot create {a_file}/run"),
        "data_dir is a file": ("generate", [f"data_dir={a_file}"], f"data_dir: {a_file} is a file"),
        "cache_dir is a file": ("train", ["mode=hybrid", f"cache_dir={a_file}"], f"cache_dir: {a_file} is a file"),
        "output_dir not creatable": ("train", ["output_dir=/proc/hyco-run"],
                                     "output_dir: cannot create /proc/hyco-run"),
        "10^10-cell grid": ("train", ["physics.resolution=[100000,100000]", "physics.bounds=[20000,20000]"],
                            "physics.resolution=[100000, 100000]"),
        "2048^3 grid": ("train", ["physics.resolution=[2048,2048,2048]", "physics.bounds=[400,400,400]",
                                  "physics.viscosity.truth.wavenumber=[1,1,1]",
                                  "physics.viscosity.guess.wavenumber=[1,1,1]"],
                        "physics.resolution=[2048, 2048, 2048]"),
        "10^9 simulations": ("generate", ["data.num_train=1000000000"], "data.num_train=1000000000"),
    }, dirs


def _args(dirs, overrides):
    """The quick experiment, the test's directories unless the case sets them, the case's overrides."""
    keys = {o.split("=")[0] for o in overrides}
    return [*QUICK, *(d for d in dirs if d.split("=")[0] not in keys), *overrides]


def _names():
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        return list(bad_inputs(Path(tmp))[0])


@pytest.mark.parametrize("name", _names())
def test_bad_input_is_refused_before_any_work(name, tmp_path):
    cases, dirs = bad_inputs(tmp_path)
    task, overrides, expected = cases[name]
    with pytest.raises(HycoError) as info:
        validate_command_line(task, _args(dirs, overrides), multirun=False)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value), str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing created


@pytest.mark.slow
def test_each_bad_input_through_the_command_line(tmp_path):
    cases, dirs = bad_inputs(tmp_path)
    timings = {}
    for name, (task, overrides, expected) in cases.items():
        start = time.perf_counter()
        result = hyco(task, *_args(dirs, overrides), cwd=tmp_path)
        timings[name] = time.perf_counter() - start
        assert one_error_line(result).startswith(expected), result.stderr
    start = time.perf_counter()
    hyco("train", *QUICK, "trainer.hybrid.alpha=2", cwd=tmp_path)  # the oldest check, for comparison
    plain = time.perf_counter() - start
    # the checks that need a PDE model's Params (the memory estimate) read the torch-free schemas
    # (tests/faults/test_refusals_without_torch.py); importing torch and PhiFlow is printed for comparison
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import hyco.physics"], check=True, cwd=tmp_path)
    imports = time.perf_counter() - start
    print("bad inputs, seconds each:", {k: round(v, 1) for k, v in timings.items()},
          f"(a plain range error takes {plain:.1f} s without torch; importing torch and PhiFlow {imports:.1f} s)")
    assert max(timings.values()) < plain + 5
