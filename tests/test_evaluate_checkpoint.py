"""`hyco evaluate checkpoint=PATH [data=PATH]`: a network or physical checkpoint on any compatible dataset,
one line when it does not fit."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hyco.config.validate import load
from hyco.errors import ConfigError, DataError
from hyco.evaluation.metrics import rollout_metrics
from hyco.physics.coefficients import encode_value
from hyco.tasks.context import RunContext
from hyco.tasks.evaluate_checkpoint import METRICS, evaluate_checkpoint
from hyco.tasks.generate import generate

HEAT = ["experiment=heat_2d_quick", "physics.resolution=[12,12]", "physics.diffusivity.kind=scalar",
        "physics.diffusivity.truth.type=constant", "physics.diffusivity.truth.value=0.05",
        "physics.diffusivity.guess.value=0.02", "network=convnet", "network.width=4", "data.num_frames=5",
        "device=cpu", "observation=full", "observation.noise_level=0"]  # frame 0 as it is: rollouts start there
CPU = torch.device("cpu")


def context(tmp_path, overrides, name="run"):
    cfg = load("evaluate", [*overrides, f"data_dir={tmp_path}/data", f"output_dir={tmp_path}/{name}"])
    return RunContext(cfg=cfg, run_dir=tmp_path / name, device=CPU)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A heat dataset, the same PDE on a coarser grid, a Burgers dataset; a network and a physical
    checkpoint (the latter holding the true diffusivity) made for the first."""
    from hyco.physics import build_physics
    from hyco.training.physical import PhysicalTrainer
    from hyco.training.synthetic import SyntheticTrainer

    root = tmp_path_factory.mktemp("evaluate_checkpoint")
    heat = generate(context(root, HEAT))
    coarse = generate(context(root, [*HEAT, "physics.resolution=[8,8]"]))
    burgers = generate(context(root, ["experiment=burgers_2d_quick", "physics.resolution=[12,12]", "device=cpu",
                                      "data.num_frames=5"]))
    ctx = context(root, HEAT)
    from hyco.tasks.experiment import open_experiment

    exp = open_experiment(ctx)
    network = SyntheticTrainer(ctx.cfg.trainer.synthetic, exp.surrogate(), CPU, None, total_epochs=1)
    network_path = network.save(root / "network.pt")
    physics = build_physics(ctx.cfg.physics, CPU, torch.float32)
    trainer = PhysicalTrainer(ctx.cfg.trainer.physical, physics, device=CPU)
    spec = next(s for s in physics.coefficient_specs if s.name == "diffusivity")
    trainer.raw["diffusivity"] = encode_value(torch.tensor(0.05), spec)
    truth_path = trainer.save(root / "physical_truth.pt")
    return {"root": root, "heat": heat, "coarse": coarse, "burgers": burgers, "network": network_path,
            "physical": truth_path}


def test_the_true_coefficients_reproduce_the_data(files, tmp_path):
    """The physical checkpoint holds the diffusivity the data were simulated with: its rollout is the data."""
    ctx = context(tmp_path, [*HEAT, f"checkpoint={files['physical']}", f"data={files['heat']}"])
    result = evaluate_checkpoint(ctx)
    assert result["kind"] == "physical" and result["split"] == "test"
    assert result["rollout"]["rel_l2"] < 1e-5
    assert result["coefficients"]["diffusivity"]["rel_error"] == pytest.approx(0.0, abs=1e-6)
    assert json.loads((tmp_path / "run" / METRICS).read_text())["rollout"]["num_steps"] == 4


def test_a_scalar_coefficient_runs_on_another_grid_of_the_same_pde(files, tmp_path):
    ctx = context(tmp_path, [*HEAT, f"checkpoint={files['physical']}", f"data={files['coarse']}"])
    result = evaluate_checkpoint(ctx)
    assert result["rollout"]["rel_l2"] < 1e-5 and result["data"] == str(files["coarse"])


def test_the_network_checkpoint_is_rolled_out_from_frame_zero(files, tmp_path):
    from hyco.data.store import TrajectoryStore
    from hyco.training.synthetic import load_surrogate

    ctx = context(tmp_path, [*HEAT, f"checkpoint={files['network']}", f"data={files['heat']}"])
    result = evaluate_checkpoint(ctx)
    with TrajectoryStore(files["heat"]) as store:
        truth = store.trajectories("test")
    with torch.no_grad():
        prediction = load_surrogate(files["network"]).rollout(truth[:, 0], truth.shape[1] - 1)
    expected = rollout_metrics(prediction, truth[:, 1:])
    assert result["kind"] == "network"
    assert result["rollout"]["rel_l2"] == pytest.approx(expected["rel_l2"], rel=1e-5)
    assert result["rollout"]["rel_l2"] > 1e-3  # an untrained network is not the data


@pytest.mark.parametrize(("checkpoint", "data", "extra", "words"), [
    ("network", "burgers", [], "{checkpoint} does not fit {data}: channels 1 in the checkpoint, 2 in the data"),
    ("physical", "heat", ["physics.diffusivity.kind=field"],
     "{checkpoint} does not fit {data}: coefficients {{'diffusivity': []}} in the checkpoint, "
     "{{'diffusivity': [12, 12]}} in physics=heat there"),
    ("physical", "burgers", [], "{data}: fields ['velocity'], but the configured PDE model (physics=heat) has "
                                "['temperature']; choose the experiment the checkpoint was trained in"),
])
def test_a_checkpoint_that_does_not_fit_is_one_line(files, tmp_path, checkpoint, data, extra, words):
    ctx = context(tmp_path, [*HEAT, *extra, f"checkpoint={files[checkpoint]}", f"data={files[data]}"])
    with pytest.raises(DataError) as info:
        evaluate_checkpoint(ctx)
    assert str(info.value) == words.format(checkpoint=files[checkpoint], data=files[data])


def test_the_command_line(files, tmp_path):
    """`data=PATH` and `checkpoint=PATH` as typed; a mismatch ends in one line, exit code 2."""
    common = [sys.executable, "-m", "hyco", "evaluate", *HEAT, f"data_dir={files['root']}/data"]
    done = subprocess.run([*common, f"checkpoint={files['physical']}", f"data={files['heat']}",
                           f"output_dir={tmp_path}/ok"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(tmp_path / "ok" / METRICS)
    bad = subprocess.run([*common, f"checkpoint={files['network']}", f"data={files['burgers']}",
                          f"output_dir={tmp_path}/bad"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith(f"hyco: error: {files['network']} does not fit")
    assert "Traceback" not in bad.stderr


def test_without_experiment_the_checkpoints_run_directory_names_it(files, tmp_path):
    """Was: the default experiment's data were simulated, then the checkpoint refused. The run directory's Hydra
    record (.hydra/) names the experiment and the keys it was trained with; they are composed again."""
    run = tmp_path / "trained"
    record = subprocess.run([sys.executable, "-m", "hyco", "generate", *HEAT, f"data_dir={files['root']}/data",
                             f"output_dir={run}"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert record.returncode == 0, record.stderr
    (run / "physical").mkdir()
    (run / "physical" / "best.pt").write_bytes(files["physical"].read_bytes())
    cfg = load("evaluate", [f"checkpoint={run}/physical/best.pt", f"output_dir={tmp_path}/eval"])
    assert cfg.experiment_name == "heat_2d_quick" and cfg.physics["resolution"] == [12, 12]
    assert (cfg.network["name"], cfg.data.num_frames, cfg.output_dir) == ("convnet", 5, f"{tmp_path}/eval")
    done = subprocess.run([sys.executable, "-m", "hyco", "evaluate", f"checkpoint={run}/physical/best.pt",
                           f"output_dir={tmp_path}/eval"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "eval" / METRICS).read_text())
    assert result["data"] == str(files["heat"])  # the trained experiment's dataset, found, not simulated anew
    assert result["coefficients"]["diffusivity"]["rel_error"] < 1e-5


def test_without_experiment_data_or_run_record_it_is_one_line(files, tmp_path):
    with pytest.raises(ConfigError, match=r"^experiment: no run record \(.hydra/\) above .*network.pt names the "
                                          r"experiment it was trained in; pass experiment=<name> or data="):
        load("evaluate", [f"checkpoint={files['network']}", f"output_dir={tmp_path}/eval"])
    cfg = load("evaluate", [f"checkpoint={files['network']}", f"data={files['heat']}", f"output_dir={tmp_path}/e"])
    assert cfg.evaluation.data == str(files["heat"])  # a network on a named dataset needs no experiment
