"""Frame 0 as an observation (`observation.initial=observed`) and the data seed of masks and noise (issue 28)."""

import math

import pytest
import torch

from hyco.config.schema import ObservationConfig
from hyco.data.generate import ensure_dataset
from hyco.data.inpaint import fill_hidden
from hyco.data.observation import Observation, check_observation, spatial_mask
from hyco.data.windows import WindowDataset
from hyco.errors import ConfigError

from .conftest import make_config

SPECS = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "source", "channels": 1, "dynamic": False}]


def test_observed_frame_zero_is_known_where_the_mask_says():
    config = ObservationConfig(spatial="centre", centre_fraction=0.5, initial="observed")
    observation = Observation(config, (16,), 5, torch.ones(2), [0], SPECS)
    assert observation.hides_initial and observation.hides_states
    assert torch.equal(observation.known[0, 0], observation.spatial[0].bool())  # the dynamic channel: the mask
    assert bool(observation.known[0, 1].all())  # the static input: known in full
    full = Observation(ObservationConfig(spatial="centre", centre_fraction=0.5), (16,), 5, torch.ones(2), [0], SPECS)
    assert bool(full.known[0].all()) and not full.hides_initial  # initial=full: frame 0 in full (the paper's)


def test_the_fill_keeps_every_observed_value_and_reads_no_hidden_one():
    config = ObservationConfig(spatial="centre", centre_fraction=0.5, initial="observed")
    observation = Observation(config, (16,), 3, torch.ones(2), [0], SPECS)
    trajectory = torch.randn(3, 2, 16)
    clean = trajectory.clone()
    poisoned = trajectory.clone()
    poisoned[0, 0, ~observation.known[0, 0]] = float("nan")
    for t in (trajectory, poisoned):
        observation.hide_(t)
        observation.fill_initial_(t)
    assert torch.equal(trajectory, poisoned) and bool(torch.isfinite(trajectory).all())
    seen = observation.known[0, 0]
    assert torch.equal(trajectory[0, 0, seen], clean[0, 0, seen]) and torch.equal(trajectory[0, 1], clean[0, 1])
    assert not torch.equal(trajectory[0, 0, ~seen], torch.zeros(int((~seen).sum())))  # filled, not left erased


def test_harmonic_fill_reproduces_a_linear_profile_between_walls():
    """Between two observed stretches of a line with walls, Laplace's equation is solved by the straight line
    through them; the mean fill gives the observed mean instead."""
    x = torch.arange(12, dtype=torch.float64)
    values = (2.0 + 0.5 * x).reshape(1, 1, 12)
    known = torch.zeros(1, 12, dtype=torch.bool)
    known[0, :3] = True
    known[0, 9:] = True
    filled = fill_hidden(values * known, known, "harmonic", periodic=False)
    torch.testing.assert_close(filled, values, rtol=0, atol=1e-6)
    mean = fill_hidden(values * known, known, "mean", periodic=False)
    assert mean[0, 0, 5].item() == pytest.approx(values[0, 0, known[0]].mean().item())


def test_harmonic_fill_of_a_smooth_periodic_field_beats_the_mean():
    n = 32
    axis = (torch.arange(n) + 0.5) / n
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    field = (torch.sin(2 * math.pi * x) + 0.5 * torch.cos(2 * math.pi * y))[None, None].double()
    known = torch.rand(1, n, n, generator=torch.Generator().manual_seed(0)) < 0.1  # 10 % of the points
    errors = {}
    for scheme in ("harmonic", "mean"):
        filled = fill_hidden(field * known, known, scheme, periodic=True)
        errors[scheme] = float((filled - field)[0, 0, ~known[0]].norm() / field[0, 0, ~known[0]].norm())
    assert errors["harmonic"] < 0.3 < 0.9 < errors["mean"]


def test_initial_observed_is_refused_where_it_cannot_hold():
    with pytest.raises(ConfigError, match="observation.initial.*oracle states"):
        ObservationConfig(states="full", initial="observed")
    with pytest.raises(ConfigError, match="observation.frames.*frame 0 observed"):
        ObservationConfig(temporal="frames", frames=[2, 4], initial="observed")
    specs = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "v", "channels": 1, "dynamic": True}]
    with pytest.raises(ConfigError, match="observation.initial.*field 'v' is not observed"):
        check_observation(ObservationConfig(spatial="centre", fields=["u"], initial="observed"), specs, (8,), 4)
    with pytest.raises(ConfigError, match="observation.initial_fill"):
        ObservationConfig(initial_fill="zeros")


def test_masks_and_noise_follow_the_data_seed(tmp_path, fake_model):
    config = ObservationConfig(spatial="random_points", point_fraction=0.3)
    assert torch.equal(spatial_mask(config, (40,), 0), spatial_mask(config, (40,), 0))
    assert not torch.equal(spatial_mask(config, (40,), 0), spatial_mask(config, (40,), 1))
    observed = {}
    for key, kwargs in {"a": {}, "training seed": {"seed": 9}, "data seed": {"data_seed": 9}}.items():
        path = ensure_dataset(make_config(**kwargs), fake_model, tmp_path)
        windows = WindowDataset(path, "train", 1, observation=ObservationConfig(noise_level=0.1))
        observed[key] = windows.observed_trajectories([0])
    assert torch.equal(observed["a"], observed["training seed"])  # `seed` changes neither data nor noise
    assert not torch.equal(observed["a"], observed["data seed"])


def test_the_test_split_initial_states_are_what_an_observer_has(tmp_path, fake_model):
    cfg = make_config(observation={"spatial": "centre", "centre_fraction": 0.5, "initial": "observed",
                                   "noise_level": 0.05})
    path = ensure_dataset(cfg, fake_model, tmp_path)
    windows = WindowDataset(path, "test", 1, observation=cfg.observation, from_start=True)
    initial = windows.batch(torch.arange(len(windows))).inputs
    truth = windows.store.trajectories("test")[:, 0]
    known = windows.observation.known[0, 0]
    noise = (initial - truth)[:, 0, known]
    assert 0.01 < float(noise.std() / truth[:, 0].std()) < 0.2  # observed values carry their noise
    assert not torch.allclose(initial[:, 0, ~known], truth[:, 0, ~known], atol=1e-3)  # hidden ones are a fill
    # what the solver's data term is said to cover (the run's summary and the report): the start was filled
    whole = windows.num_frames - 1
    shooting = WindowDataset(path, "train", whole, observation=cfg.observation, from_start=True)
    fitted = f"whole trajectories ({whole} frames) rolled out from frame 0"
    assert shooting.describe_fit() == fitted + " (filled where hidden)"
    full = dict(cfg.observation.__dict__, initial="full")
    shooting = WindowDataset(path, "train", whole, observation=ObservationConfig(**full), from_start=True)
    assert shooting.describe_fit() == fitted
