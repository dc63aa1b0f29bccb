import pytest
import torch

from hyco.config.schema import ObservationConfig
from hyco.data.observation import Observation, spatial_mask, temporal_mask
from hyco.errors import ConfigError


@pytest.mark.parametrize("shape", [(64,), (32, 32), (30, 40), (12, 16, 20)])
def test_centre_mask_covers_the_fraction_within_one_grid_row(shape):
    mask = spatial_mask(ObservationConfig(spatial="centre", centre_fraction=0.25), shape)
    assert mask.shape == (1, *shape)
    one_row = max(torch.tensor(shape).prod().item() / n for n in shape) / torch.tensor(shape).prod().item()
    assert abs(mask.mean().item() - 0.25) <= one_row
    # centred: the observed block's centre is the domain's centre (to half a cell)
    for axis, n in enumerate(shape):
        others = [a for a in range(len(shape)) if a != axis]
        profile = mask[0].sum(dim=others) if others else mask[0]
        observed = profile.nonzero().squeeze(1).float()
        assert abs(observed.mean().item() - (n - 1) / 2) <= 0.5
        assert observed.numel() == observed.max().item() - observed.min().item() + 1  # contiguous


def test_exact_centre_quarter_on_32_squared():
    mask = spatial_mask(ObservationConfig(spatial="centre", centre_fraction=0.25), (32, 32))[0]
    assert mask.sum().item() == 256 and mask[8:24, 8:24].all()


def test_box_mask_is_x_first():
    cfg = ObservationConfig(spatial="box", box_lower=[0.0, 0.5], box_upper=[0.25, 1.0])  # x in [0, .25), y in [.5, 1)
    mask = spatial_mask(cfg, (8, 16))[0]  # tensor order (y, x)
    assert mask.sum().item() == 4 * 4
    assert mask[4:, :4].all() and not mask[:4].any() and not mask[:, 4:].any()
    with pytest.raises(ConfigError, match=r"observation.box_lower: expected 1 entries"):
        spatial_mask(cfg, (16,))


def test_random_points_fraction_and_seed():
    cfg = ObservationConfig(spatial="random_points", point_fraction=0.1, seed=7)
    a, b = spatial_mask(cfg, (40, 50)), spatial_mask(cfg, (40, 50))
    assert a.sum().item() == 200 and torch.equal(a, b)
    c = spatial_mask(ObservationConfig(spatial="random_points", point_fraction=0.1, seed=8), (40, 50))
    assert not torch.equal(a, c)


def test_temporal_masks():
    every = temporal_mask(ObservationConfig(temporal="every_k", every_k=3), 10)
    assert every.nonzero().squeeze(1).tolist() == [0, 3, 6, 9]
    ends = temporal_mask(ObservationConfig(temporal="first_last"), 10)
    assert ends.nonzero().squeeze(1).tolist() == [0, 9]
    assert temporal_mask(ObservationConfig(), 5).all()


def test_window_masks_combine_space_and_target_frames():
    cfg = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2)
    obs = Observation(cfg, (8,), 10, torch.ones(2), [0])
    masks = obs.window_masks(torch.tensor([0, 1, 5]), 3)  # targets 1..3, 2..4, 6..8
    assert masks.shape == (3, 3, 1, 8)
    frames_observed = masks.amax(dim=(2, 3))
    assert frames_observed.tolist() == [[0, 1, 0], [1, 0, 1], [1, 0, 1]]
    assert torch.equal(masks[1, 0, 0], obs.spatial[0])


def test_noise_statistics_and_determinism():
    std = torch.tensor([2.0, 5.0])
    obs = Observation(ObservationConfig(noise_level=0.1, seed=3), (64, 64), 20, std, dynamic_channels=[0])
    clean = torch.zeros(20, 2, 64, 64)
    noisy = obs.add_noise_(clean.clone(), "train", 4)
    assert noisy[:, 0].std().item() == pytest.approx(0.2, rel=0.02)
    assert abs(noisy[:, 0].mean().item()) < 0.005
    assert torch.equal(noisy[:, 1], clean[:, 1])  # static channel stays clean
    assert torch.equal(obs.add_noise_(clean.clone(), "train", 4), noisy)  # same simulation -> same noise
    assert not torch.equal(obs.add_noise_(clean.clone(), "train", 5), noisy)
    assert not torch.equal(obs.add_noise_(clean.clone(), "val", 4), noisy)


def test_hidden_states_know_frame_0_and_the_observed_values_only():
    cfg = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2)
    obs = Observation(cfg, (8,), 6, torch.ones(2), [0])  # channel 1 is a static input
    assert obs.hides_states and obs.known.shape == (6, 2, 8)
    assert bool(obs.known[0].all())  # frame 0 in full
    assert bool(obs.known[:, 1].all())  # the static channel always
    assert torch.equal(obs.known[2, 0], obs.spatial[0].bool()) and not bool(obs.known[1, 0].any())
    trajectory = torch.randn(6, 2, 8)
    trajectory[1, 0] = float("nan")  # a hidden frame: erased, NaN included
    hidden = obs.hide_(trajectory.clone())
    assert torch.isfinite(hidden).all() and bool((hidden[~obs.known] == 0).all())
    assert torch.equal(hidden[obs.known], trajectory[obs.known])
    oracle = Observation(ObservationConfig(spatial="centre", states="full"), (8,), 6, torch.ones(1), [0])
    clean = torch.randn(6, 1, 8)
    assert oracle.known is None and torch.equal(oracle.hide_(clean.clone()), clean)
    full = Observation(ObservationConfig(), (8,), 6, torch.ones(1), [0])
    assert not full.hides_states  # nothing hidden when everything is observed


def test_per_field_observation_masks_and_noise():
    specs = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "v", "channels": 1, "dynamic": True}]
    cfg = ObservationConfig(spatial="centre", centre_fraction=0.5, fields=["v"], noise_level=0.1,
                            noise_levels={"v": 0.3})
    obs = Observation(cfg, (8,), 5, torch.tensor([1.0, 2.0]), [0, 1], field_specs=specs)
    masks = obs.window_masks(torch.tensor([0, 2]), 2)
    assert masks.shape == (2, 2, 2, 8)
    assert not bool(masks[:, :, 0].any()) and torch.equal(masks[0, 0, 1], obs.spatial[0])  # u never observed
    assert obs.noise_std.tolist() == pytest.approx([0.1, 0.6])
    assert bool(obs.known[1:, 0].logical_not().all()) and bool(obs.known[0].all())


def test_explicit_observed_frames():
    assert temporal_mask(ObservationConfig(temporal="frames", frames=[0, 2, 5]), 7).nonzero().squeeze(1).tolist() == [
        0, 2, 5]
