"""The data pipeline with the real PhiFlow Burgers model (1D, tiny grid)."""

import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("hyco.physics.convert", reason="needs the physics branch's Field <-> tensor converter")

from hyco.config.schema import ObservationConfig  # noqa: E402
from hyco.config.validate import load  # noqa: E402
from hyco.data.generate import simulation_seed  # noqa: E402
from hyco.data.store import TrajectoryStore  # noqa: E402
from hyco.data.windows import WindowDataset  # noqa: E402
from hyco.physics import build_physics  # noqa: E402
from hyco.physics.convert import fields_to_tensor  # noqa: E402
from hyco.tasks.context import RunContext  # noqa: E402
from hyco.tasks.generate import generate  # noqa: E402

# the test plugin's network; the real Burgers model
NET = ["plugins=[fake_models]", "~network", "+network.name=fake_net"]
SMALL = ["physics=burgers_1d", "physics.resolution=[32]", "experiment_name=tiny", "data.num_train=3",
         "data.num_val=1", "data.num_test=1", "data.num_frames=6", "data.rollout_steps=2", "data.generation_batch=2",
         "data.reference.refine=1"]  # the model's own rollouts (the default experiment simulates a finer reference)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("burgers")
    cfg = load("generate", [*NET, *SMALL, f"data_dir={root}/data", f"output_dir={root}/run"])
    ctx = RunContext(cfg=cfg, run_dir=root / "run", device=torch.device("cpu"))
    path = generate(ctx)
    return cfg, path


def test_generate_task_writes_burgers_rollouts(generated, capsys):
    cfg, path = generated
    store = TrajectoryStore(path)
    assert store.shape == (5, 6, 1, 32)
    assert store.true_coefficients["viscosity"].item() == pytest.approx(0.005)
    assert store.attrs["physics"]["name"] == "burgers" and store.attrs["versions"]["phiflow"] == "3.4.0"
    model = build_physics(cfg.physics, "cpu", torch.float32)
    seed = simulation_seed(cfg.data.seed, "test", 0)
    state = model.initial_state(1, seed)
    frames = model.rollout(state, model.true_coefficients(), 5)
    np.testing.assert_allclose(store.read_simulation("test", 0)[1:], frames[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(store.read_simulation("test", 0)[0], state[0].numpy())


def test_field_view_matches_tensor_view(generated):
    cfg, path = generated
    model = build_physics(cfg.physics, "cpu", torch.float32)
    observation = ObservationConfig(spatial="centre", centre_fraction=0.5, states="full")
    ds = WindowDataset(path, "train", 2, observation=observation)
    index = torch.tensor([0, 5, 11])
    batch = ds.batch(index)
    inputs, targets, masks = batch.inputs, batch.targets, batch.mask
    in_fields, target_fields, mask = ds.fields(index, model)
    assert torch.equal(fields_to_tensor(in_fields), inputs)
    assert target_fields[0].shape.get_size("time") == 2 and target_fields[0].shape.get_size("b") == 3
    back = target_fields[0].values.native(["b", "time", "vector", "x"])
    assert torch.equal(back, targets)
    assert torch.equal(mask.native(["b", "time", "x"]), masks[:, :, 0])


def test_cli_refuses_with_the_differing_keys(generated, tmp_path):
    cfg, path = generated
    result = subprocess.run(
        [sys.executable, "-m", "hyco", "generate", *NET, *SMALL, f"data_dir={path.parent}", f"output_dir={tmp_path}",
         "data.regenerate=never", "physics.viscosity.truth.value=0.006"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("hyco: error:")]
    assert len(error) == 1 and "data.regenerate=never" in error[0] and result.stderr.strip().endswith(error[0])
    assert "physics.params.viscosity.truth.value (0.005 -> 0.006)" in error[0]
