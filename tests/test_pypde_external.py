"""Data from another PDE library through `data.external`: py-pde simulates periodic heat (adaptive DOP853,
rtol 1e-10), the trajectories are written in The Well's layout, and `hyco train mode=physical` learns the
diffusivity from them with explicit Euler and with Heun. Each learned error is judged against its scheme's floor,
computed here on the same data (the diffusivity that fits them best, benchmarks.time_step_floor): the trainer
must reach it, and no scheme can go below it by more than round-off."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from .data.external_layouts import cell_centres, write_well
from .test_external_data import hyco_commands

pde = pytest.importorskip("pde", reason="py-pde (the dev extra) makes the reference data")

KAPPA, GUESS, RESOLUTION, DT, FRAMES, TRAJECTORIES, SUBSTEPS = 0.025, 0.02, 32, 0.01, 8, 4, 4
TRAINER_SLACK = 2e-4  # what the trainer may leave above the floor (L-BFGS on float32 windows)


@pytest.fixture(scope="module")
def pypde_file(tmp_path_factory):
    from benchmarks.pypde_reference import simulate_heat
    from benchmarks.time_step_floor import _model

    root = tmp_path_factory.mktemp("pypde")
    initial = _model("euler", SUBSTEPS, torch.float64).initial_state(TRAJECTORIES, seed=7)[:, 0].numpy()
    trajectories = simulate_heat(initial, KAPPA, (1.0, 1.0), DT, FRAMES)  # [n, T, y, x]
    centres = cell_centres(RESOLUTION, 1.0)
    path = write_well(root / "pypde_heat.hdf5", coords={"x": centres, "y": centres}, time=np.arange(FRAMES) * DT,
                      fields={"temperature": (0, np.swapaxes(trajectories, 2, 3))})  # The Well stores x first
    return root, path, trajectories


def scheme_floor(time_step: str, trajectories: np.ndarray) -> float:
    """The scheme's floor on the training split (the file's first two trajectories, as hyco reads them: float32)."""
    from benchmarks.time_step_floor import floor, windows

    model = _heat(time_step)
    data = torch.from_numpy(trajectories[:2].astype(np.float32).astype(np.float64)).unsqueeze(2)
    return floor(model, *windows(data), truth=KAPPA)["rel_error"]


def _heat(time_step: str):
    from hyco.physics import build_physics

    return build_physics({"name": "heat", "resolution": [RESOLUTION, RESOLUTION], "dt": DT, "substeps": SUBSTEPS,
                          "time_step": time_step,
                          "diffusivity": {"kind": "scalar", "truth": {"type": "constant", "value": KAPPA},
                                          "guess": {"type": "constant", "value": GUESS}}}, "cpu", torch.float64)


@pytest.mark.slow  # two trainings of the solver in a subprocess each: about a minute
@pytest.mark.parametrize("time_step", ["euler", "heun"])
def test_the_solver_learns_py_pde_s_diffusivity_down_to_its_time_step_s_floor(pypde_file, time_step):
    root, path, trajectories = pypde_file
    run = root / time_step
    common = ["experiment=heat_2d_quick", f"physics.resolution=[{RESOLUTION},{RESOLUTION}]",
              f"physics.substeps={SUBSTEPS}", f"physics.time_step={time_step}", "physics.diffusivity.kind=scalar",
              "physics.diffusivity.truth.type=constant", f"physics.diffusivity.truth.value={KAPPA}",
              "physics.diffusivity.guess.type=constant", f"physics.diffusivity.guess.value={GUESS}",
              "observation=full", "observation.noise_level=0", "data.num_train=2", "data.num_val=1", "data.num_test=1",
              f"data.num_frames={FRAMES}", "data.rollout_steps=1", "trainer.physical.epochs=6",
              "trainer.physical.iterations=30", f"data.external.path={path}", "data.external.known_truth=[diffusivity]",
              f"output_dir={run}", f"data_dir={root}/data"]
    result = hyco_commands(["train", "mode=physical", *common], ["evaluate", *common], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    error = metrics["runs"]["physical"]["coefficients"]["diffusivity"]["rel_error"]
    floor = scheme_floor(time_step, trajectories)
    print(f"{time_step}: learned error {error:.3g}, floor {floor:.3g}")
    assert error <= floor + TRAINER_SLACK
    assert error >= floor - 1e-5  # nothing beats the floor: the data are not the solver's own
    if time_step == "heun":
        assert error <= 1e-3  # Heun's floor on these data: 1.7e-4, Euler's 1.4e-2 (benchmarks.time_step_floor)


@pytest.mark.slow  # py-pde on 512 cells and five fits: ~20 CPU-s
def test_burgers_method_of_lines_leaves_a_fraction_of_the_semi_lagrangian_floor():
    """py-pde's 1D Burgers on an 8x finer grid, cell-averaged onto burgers_1d's 64 cells: the viscosity that fits
    best with the semi-Lagrangian Euler step is far off (its interpolation diffuses more than ν = 0.005 does);
    the method of lines under RK4 is left with its spatial error (measured 2026-12-07: 0.62 against 0.022)."""
    from benchmarks.time_step_floor import burgers_floors

    rows = {row["case"]: row for row in burgers_floors(samples=2, frames=4, repeats=1)}
    semi_lagrangian, lines = rows["euler x2"]["rel_error"], rows["rk4 x1"]["rel_error"]
    assert semi_lagrangian > 0.3
    assert lines < semi_lagrangian / 10 and lines < 0.05
    assert rows["heun x2"]["rel_error"] == pytest.approx(lines, rel=0.2)  # the time step is no longer the floor
