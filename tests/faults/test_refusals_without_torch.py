"""Issue 17: a bad input is refused in seconds because the refusal imports neither torch nor PhiFlow.

The checks that need a PDE model's or a network's `Params` (the memory estimate, the model sections' ranges)
and the path checks run on the torch-free schemas of `hyco.config.models`; a fresh interpreter runs the CLI's
entry function on each bad input and reports, after each refusal, whether torch or PhiFlow got imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import QUICK

PROBE = """
import json, sys
from hyco.cli import main

for args in json.loads(sys.argv[1]):
    try:
        main(args)
    except SystemExit as stop:
        code = stop.code
    else:
        code = 0
    loaded = sorted(m for m in ("torch", "phi", "phiml") if m in sys.modules)
    print(json.dumps({"args": args, "exit": code, "loaded": loaded}), flush=True)
"""


def test_refusals_that_need_model_params_or_paths_import_no_torch(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    dirs = [f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"]
    cases = [
        ["train", *QUICK, *dirs, "physics.resolution=[100000,100000]", "physics.bounds=[20000,20000]"],
        ["train", *QUICK, *dirs, "mode=physical", "physics=smoke", "physics.resolution=[100000,100000]",
         "physics.bounds=[20000,20000]"],
        ["generate", *QUICK, *dirs, "data.num_train=1000000000"],
        ["train", *QUICK, f"data_dir={tmp_path}/data", f"output_dir={a_file}"],
        ["run", *QUICK, f"data_dir={tmp_path}/data", f"output_dir={a_file}/run"],
        ["train", *QUICK, *dirs, "mode=hybrid", f"cache_dir={a_file}"],
        ["train", *QUICK, *dirs, "physics.viscosity.kind=curved"],
        ["train", *QUICK, *dirs, "network.width=0"],
        ["train", *QUICK, *dirs, "network.channels_last=sideways"],
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(cases)], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=300)
    reports = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(cases), result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("hyco: error:")]
    assert len(errors) == len(cases) and "Traceback" not in result.stderr, result.stderr[-2000:]
    for report, error in zip(reports, errors):
        assert report["exit"] == 2, (report, error)
        assert report["loaded"] == [], (report, error)
    assert "physics.resolution=[100000, 100000]" in errors[0] and "physics.resolution" in errors[1]
    assert "data.num_train=1000000000" in errors[2]
    assert f"output_dir: {a_file} is a file" in errors[3] and f"cannot create {a_file}/run" in errors[4]
    assert f"cache_dir: {a_file} is a file" in errors[5]
    assert "physics.viscosity.kind" in errors[6] and "network.width" in errors[7]
    assert "network.channels_last" in errors[8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing created

