"""Data made elsewhere, end to end through the `hyco` command: a The Well file (a heat equation simulated with
NumPy) and a PDEBench file train the network and are evaluated; the solver learns the diffusivity from the
The Well file, reported as unknown unless the config says the truth; a malformed file ends in one line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import torch

from hyco.evaluation.comparison import coefficient_table
from hyco.evaluation.verdict import setting_lines

from .data.external_layouts import cell_centres, numpy_heat, write_pdebench_groups, write_well

KAPPA = 0.05
# The `hyco` entry point, called once per command in one process (the commands are those a user types; one
# interpreter start instead of several keeps the test short). Stops at the first command that fails.
CHILD = textwrap.dedent("""
    import json, shutil, sys
    from hyco.cli import main
    for command in json.loads(sys.argv[1]):
        if command[0] == "copy":
            shutil.copy(command[1], command[2])
            continue
        main(command)
""")


def hyco_commands(*commands: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(commands)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def well_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("well")
    temperature = numpy_heat(4, 8, (16, 12), (2.0, 0.75), KAPPA, dt=0.01, substeps=4)
    path = write_well(root / "heat_train.hdf5", coords={"x": cell_centres(16, 2.0), "y": cell_centres(12, 0.75)},
                      time=np.arange(8) * 0.01, fields={"temperature": (0, temperature)})
    common = ["experiment=heat_2d_quick", "physics.resolution=[16,12]", "physics.diffusivity.kind=scalar",
              "physics.diffusivity.truth.type=constant", f"physics.diffusivity.truth.value={KAPPA}",
              "observation=full", "observation.noise_level=0", "network.width=4", "trainer.synthetic.epochs=1",
              "data.num_frames=6",
              f"data.external.path={path}", f"output_dir={root}/run", f"data_dir={root}/data"]
    result = hyco_commands(["train", "mode=synthetic", *common], ["train", "mode=physical", *common],
                           ["evaluate", *common],
                           ["copy", f"{root}/run/metrics.json", f"{root}/metrics_unknown_truth.json"],
                           ["evaluate", *common, "data.external.known_truth=[diffusivity]"], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return root, temperature


@pytest.mark.slow  # its module fixture trains: about 20-40 s
def test_the_well_file_trains_the_network_and_the_solver(well_run):
    root, temperature = well_run
    metrics = json.loads((root / "run" / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"synthetic", "physical"}
    assert metrics["runs"]["synthetic"]["rollout"]["rel_l2"] < 1.0  # a finite, sensible network rollout
    assert metrics["dt"] == pytest.approx(0.01, rel=1e-5)
    # the solver, on the file's 2 x 0.75 box (not the config's unit square), finds the diffusivity of the NumPy run
    assert metrics["runs"]["physical"]["coefficients"]["diffusivity"]["rel_error"] < 1e-2
    assert metrics["learned_coefficients"]["physical"]["diffusivity"] == pytest.approx(KAPPA, rel=1e-2)
    assert metrics["unknown_coefficients"] == []
    # the evaluation's truth is the file's last trajectory (the test split), in hyco's [T, C, y, x] order
    rollouts = torch.load(root / "run" / "evaluation" / "rollouts.pt")
    np.testing.assert_allclose(rollouts["truth"][:, 0].numpy(), np.swapaxes(temperature[3, :6], 1, 2), atol=1e-6)


@pytest.mark.slow  # shares the training fixture above
def test_a_truth_not_given_is_reported_as_unknown(well_run):
    root, _ = well_run
    metrics = json.loads((root / "metrics_unknown_truth.json").read_text())
    entry = metrics["runs"]["physical"]["coefficients"]["diffusivity"]
    assert {k: entry[k] for k in ("rel_error", "truth")} == {"rel_error": None, "truth": "unknown"}
    assert len(entry["interval"]) == 2  # the posterior needs no truth
    assert metrics["unknown_coefficients"] == ["diffusivity"] and metrics["true_coefficients"] == {}
    assert metrics["learned_coefficients"]["physical"]["diffusivity"] == pytest.approx(KAPPA, rel=1e-2)
    table = coefficient_table(metrics)
    physical = next(row for row in table.rows if row[0] == "solver alone")
    assert physical[table.header.index("diffusivity rel. error")] == "unknown"
    summary = " ".join(setting_lines(metrics))
    assert "True value unknown" in summary and "diffusivity" in summary


@pytest.mark.slow  # about 15-35 s
def test_a_pdebench_file_trains_the_network_end_to_end(tmp_path):
    """2D diffusion-reaction layout (`0000/data` [T, x, y, 2]) onto Gray-Scott's u and v: patterns that move
    one cell per frame, learned by the network alone and judged on the file's test trajectory."""
    rng = np.random.default_rng(3)
    base = rng.uniform(0.2, 0.8, size=(4, 12, 8, 2))
    data = np.stack([np.roll(base, shift=t, axis=1) for t in range(6)], axis=1)  # [N, T, x, y, C]
    path = write_pdebench_groups(tmp_path / "2D_diff-react_NA_NA.h5", data,
                                 {"x": cell_centres(12, 18.75), "y": cell_centres(8, 12.5)}, np.arange(6) * 20.0)
    common = ["experiment=gray_scott_quick", "physics.resolution=[12,8]", f"data.external.path={path}",
              "data.external.format=pdebench", "network.width=4", "trainer.synthetic.epochs=1", "data.num_frames=6",
              f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"]
    result = hyco_commands(["train", "mode=synthetic", *common], ["evaluate", *common], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["synthetic"] and set(metrics["runs"]["synthetic"]["fields"]) == {"u", "v"}
    assert metrics["runs"]["synthetic"]["rollout"]["rel_l2"] < 1.0
    rollouts = torch.load(tmp_path / "run" / "evaluation" / "rollouts.pt")
    np.testing.assert_allclose(rollouts["truth"].numpy(), np.moveaxis(np.swapaxes(data[3], 1, 2), -1, 1), atol=1e-6)
    dataset = next((tmp_path / "data").glob("*.h5"))
    assert dataset.name.startswith("gray_scott_quick-gray_scott-")


def test_a_malformed_file_ends_the_command_in_one_line(tmp_path):
    path = write_well(tmp_path / "broken.hdf5", coords={"x": cell_centres(16, 1.0), "y": cell_centres(12, 1.0)},
                      time=np.arange(8) * 0.01, fields={"temperature": (0, np.zeros((4, 8, 16, 12)))})
    with h5py.File(path, "r+") as f:
        del f["dimensions"]
    result = subprocess.run([sys.executable, "-m", "hyco", "train", "mode=synthetic", "experiment=heat_2d_quick",
                             "physics.resolution=[16,12]", f"data.external.path={path}", f"output_dir={tmp_path}/run",
                             f"data_dir={tmp_path}/data"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"hyco: error: {path}: group 'dimensions' missing (The Well layout)", result.stderr[-2000:]
    assert "Traceback" not in result.stderr and not list((tmp_path / "data").glob("*.h5"))  # nothing imported


@pytest.mark.slow  # about 20-40 s
def test_a_well_dataset_folder_with_several_files_per_split_trains_end_to_end(tmp_path):
    """The Well's own tree, data/train/*.hdf5 (two files), data/valid, data/test, read in place: the solver finds
    the diffusivity of the NumPy run, the network trains, the evaluation judges the test file's trajectory."""
    root = tmp_path / "heat" / "data"
    files = {}
    for split, count in (("train", 2), ("valid", 1), ("test", 1)):
        (root / split).mkdir(parents=True)
        for k in range(count):
            temperature = numpy_heat(2, 8, (16, 12), (2.0, 0.75), KAPPA, dt=0.01, substeps=4, seed=len(files))
            files[(split, k)] = temperature
            write_well(root / split / f"heat_{k:02d}.hdf5", coords={"x": cell_centres(16, 2.0),
                                                                  "y": cell_centres(12, 0.75)},
                       time=np.arange(8) * 0.01, fields={"temperature": (0, temperature)})
    common = ["experiment=heat_2d_quick", "physics.resolution=[16,12]", "physics.diffusivity.kind=scalar",
              "physics.diffusivity.truth.type=constant", f"physics.diffusivity.truth.value={KAPPA}",
              "data.external.known_truth=[diffusivity]", "observation=full", "network.width=4",
              "trainer.synthetic.epochs=1", "data.num_frames=6", "data.num_train=4", "data.num_val=1",
              "data.num_test=1", f"data.external.splits.train={root}/train", f"data.external.splits.valid={root}/valid",
              f"data.external.splits.test={root}/test", "data.external.in_place=true", "data.max_cached_sims=2",
              f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"]
    result = hyco_commands(["train", "mode=synthetic", *common], ["train", "mode=physical", *common],
                           ["evaluate", *common], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"synthetic", "physical"}
    assert metrics["runs"]["physical"]["coefficients"]["diffusivity"]["rel_error"] < 1e-2
    assert metrics["runs"]["synthetic"]["rollout"]["rel_l2"] < 1.0
    rollouts = torch.load(tmp_path / "run" / "evaluation" / "rollouts.pt")
    np.testing.assert_allclose(rollouts["truth"][:, 0].numpy(), np.swapaxes(files[("test", 0)][0, :6], 1, 2),
                               atol=1e-6)
    dataset = next((tmp_path / "data").glob("*.h5"))
    with h5py.File(dataset) as f:  # read in place: the file holds no trajectory
        assert f.attrs["in_place"] == 1 and f["trajectories"].id.get_num_chunks() == 0
