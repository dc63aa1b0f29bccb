"""The physical model's real windows with hidden states: trajectories shot from the known frame 0, over as
many frames as fit the memory budget (`trainer.physical.horizon`), never windows whose inputs are hidden."""

from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.data.windows import WindowDataset
from hyco.errors import ConfigError
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import open_experiment

OVERRIDES = ["experiment=burgers_2d_quick", "observation=centre", "physics.resolution=[12,12]", "data.num_frames=7",
             "data.num_train=4"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("horizon")
    cfg = load("generate", [*OVERRIDES, f"output_dir={tmp / 'gen'}", f"data_dir={tmp / 'data'}"])
    open_experiment(RunContext(cfg, tmp / "gen", torch.device("cpu")))
    return tmp / "data"


def _experiment(data_dir: Path, tmp_path: Path, *extra: str):
    cfg = load("train", [*OVERRIDES, *extra, f"output_dir={tmp_path / 'run'}", f"data_dir={data_dir}"])
    ctx = RunContext(cfg, tmp_path / "run", torch.device("cpu"))
    exp = open_experiment(ctx)
    return exp, exp.physical_trainer(tmp_path / "run" / "physical")


def test_from_start_windows_are_the_beginnings_of_the_trajectories(dataset, tmp_path):
    exp, _ = _experiment(dataset, tmp_path)
    whole = exp.trajectory_windows()
    first = exp.trajectory_windows(frames=2)
    assert isinstance(first, WindowDataset) and first.from_start and not first.needs_completion
    assert len(first) == len(whole) == exp.store.num_sims("train") == 4
    a, b = first.batch(torch.arange(4)), whole.batch(torch.arange(4))
    assert torch.equal(a.inputs, b.inputs)  # frame 0, known in full
    assert torch.equal(a.targets, b.targets[:, :2]) and torch.equal(a.mask, b.mask[:, :2])  # the first 2, same mask
    sliding = exp.train_windows()
    assert sliding.needs_completion and len(sliding) == 4 * 5  # what the solver no longer fits on
    assert whole.describe_fit() == "whole trajectories (6 frames) rolled out from frame 0"
    assert first.describe_fit() == "the first 2 of 6 frames of each trajectory, rolled out from frame 0"
    assert sliding.describe_fit() == "2-step windows from every frame (inputs after frame 0 completed by the models)"


@pytest.mark.parametrize("budget_frames, expected", [(10_000, 6), (4 * 3, 3), (4 * 3 + 3, 3), (2, 1)])
def test_the_horizon_is_the_longest_that_fits_every_simulation(dataset, tmp_path, budget_frames, expected):
    """Horizon 0 (default): whole trajectories when all 4 fit the budget, else the longest beginning of them
    that does; at least one frame (the objective then takes the simulations that fit)."""
    exp, trainer = _experiment(dataset, tmp_path)
    trainer.config.memory_budget_gb = budget_frames * trainer._window_step_bytes() / 2**30
    windows = exp.physical_windows(trainer)
    assert windows.from_start and windows.rollout_steps == expected and len(windows) == 4


def test_a_chosen_horizon_and_the_sliding_windows(dataset, tmp_path):
    exp, trainer = _experiment(dataset, tmp_path, "trainer.physical.horizon=2")
    assert exp.physical_windows(trainer).rollout_steps == 2
    exp, trainer = _experiment(dataset, tmp_path, "trainer.physical.windows=sliding")
    windows = exp.physical_windows(trainer)
    assert not windows.from_start and windows.rollout_steps == exp.cfg.data.rollout_steps
    exp, trainer = _experiment(dataset, tmp_path, "trainer.physical.horizon=7")
    with pytest.raises(ConfigError, match=r"trainer.physical.horizon: expected at most 6 .*, got 7"):
        exp.physical_windows(trainer)


def test_validation_scores_the_first_frames_when_asked(dataset, tmp_path):
    """data.validation_frames: validation (best states, trust weights, the best cycle) scores the observed values
    of the first K frames of each validation trajectory; 0 = all of them."""
    exp, _ = _experiment(dataset, tmp_path / "all")
    short, _ = _experiment(dataset, tmp_path / "short", "data.validation_frames=3")
    full, first = exp.validation_data(), short.validation_data()
    assert full.steps == 6 and first.steps == 3
    assert torch.equal(first.inputs, full.inputs) and torch.equal(first.targets, full.targets[:, :3])
    assert torch.equal(first.mask, full.mask[:, :3])
