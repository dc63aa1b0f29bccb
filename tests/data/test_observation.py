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


def test_a_sparse_time_alone_is_a_mask():
    """Every value of the observed frames, but not every frame: still a mask (the loss must not count the others)."""
    obs = Observation(ObservationConfig(temporal="every_k", every_k=3), (4,), 7, torch.ones(1), [0])
    assert obs.has_mask and obs.temporal.tolist() == [True, False, False, True, False, False, True]
    assert not Observation(ObservationConfig(), (4,), 7, torch.ones(1), [0]).has_mask


def test_window_masks_follow_the_frames_of_each_window_by_hand():
    """Frames 0, 2 and 3 of 7 observed, only channel 1 of two (per-channel masks): the targets of the window
    starting at t are frames t+1, t+2, t+3."""
    specs = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "v", "channels": 1, "dynamic": True}]
    config = ObservationConfig(spatial="box", box_lower=[0.5], box_upper=[1.0], temporal="frames", frames=[0, 2, 3],
                               fields=["v"])
    obs = Observation(config, (4,), 7, torch.ones(2), [0, 1], specs)
    masks = obs.window_masks(torch.tensor([0, 1, 3]), 3)
    assert masks.shape == (3, 3, 2, 4)
    observed_frames = {0, 2, 3}
    for row, t in enumerate((0, 1, 3)):
        for step in range(3):
            expected = [[0.0] * 4, [0.0, 0.0, 1.0, 1.0] if t + 1 + step in observed_frames else [0.0] * 4]
            assert masks[row, step].tolist() == expected, (t, step)


def test_the_noise_is_the_documented_draw_of_each_simulation():
    """Gaussian, sigma = noise_level x the channel's std, drawn from (observation.seed, the noise's stream,
    data.seed, split, simulation)."""
    from hyco.data.observation import NOISE_STREAM
    from hyco.utils.seed import seeded_generator

    specs = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "f", "channels": 1, "dynamic": False}]
    std = torch.tensor([2.0, 5.0])
    obs = Observation(ObservationConfig(noise_level=0.1, seed=4), (3,), 2, std, [0], specs, data_seed=3)
    clean = torch.zeros(2, 2, 3, dtype=torch.float64)
    noisy = obs.add_noise_(clean.clone(), "val", 7)
    draw = torch.randn((2, 2, 3), generator=seeded_generator(4, NOISE_STREAM, 3, 1, 7))  # split "val" is 1
    assert torch.allclose(noisy[:, 0], 0.1 * 2.0 * draw[:, 0].double()) and torch.equal(noisy[:, 1], clean[:, 1])
    other_seed = Observation(ObservationConfig(noise_level=0.1, seed=5), (3,), 2, std, [0], specs, data_seed=3)
    assert not torch.equal(other_seed.add_noise_(clean.clone(), "val", 7), noisy)
    other_data = Observation(ObservationConfig(noise_level=0.1, seed=4), (3,), 2, std, [0], specs, data_seed=4)
    assert not torch.equal(other_data.add_noise_(clean.clone(), "val", 7), noisy)


def test_the_store_names_the_fields_an_observation_reads(tmp_path):
    """A noise level given by field name reaches that field's channels: the store's field specs are used."""
    from hyco.data.generate import ensure_dataset
    from hyco.data.store import TrajectoryStore

    from .conftest import make_config
    from .fake_physics import FakeDiffusion

    with TrajectoryStore(ensure_dataset(make_config(num_train=1, num_val=0, num_test=0), FakeDiffusion(),
                                        tmp_path)) as store:
        obs = Observation.from_store(ObservationConfig(noise_levels={"u": 0.3}), store)
        assert obs.noise_std.tolist() == pytest.approx([0.3 * float(store.channel_std[0]), 0.0])


def test_describe_says_what_the_models_see():
    full = Observation(ObservationConfig(), (4,), 5, torch.ones(1), [0])
    assert full.describe() == ("spatial=full (100.0% of the grid), temporal=all (100.0% of the frames), "
                               "states: known in full")
    specs = [{"name": "u", "channels": 1, "dynamic": True}, {"name": "v", "channels": 1, "dynamic": True}]
    sparse = Observation(ObservationConfig(spatial="box", box_lower=[0.0], box_upper=[0.5], fields=["u", "v"],
                                           noise_level=0.05, noise_levels={"v": 0.1}), (4,), 5, torch.ones(2),
                         [0, 1], specs)
    assert sparse.describe() == ("spatial=box (50.0% of the grid), temporal=all (100.0% of the frames), "
                                 "fields=u,v, noise=0.05 x channel std ({'v': 0.1}), "
                                 "states: frame 0 known, later ones only where observed")
    oracle = Observation(ObservationConfig(spatial="box", box_lower=[0.0], box_upper=[0.5], states="full",
                                           noise_level=0.05), (4,), 5, torch.ones(1), [0])
    assert oracle.describe().endswith("noise=0.05 x channel std, states: known in full (oracle)")


def test_mask_shapes_edges_and_the_smallest_masks_by_hand():
    assert spatial_mask(ObservationConfig(), (3, 4)).shape == (1, 3, 4)
    assert spatial_mask(ObservationConfig(spatial="random_points", point_fraction=0.5), (3, 4)).shape == (1, 3, 4)
    # box edges on 5 cells (centres 0.1, 0.3, 0.5, 0.7, 0.9): the lower edge is in, the upper edge out
    box = lambda lo, hi: spatial_mask(ObservationConfig(spatial="box", box_lower=[lo], box_upper=[hi]), (5,))  # noqa: E731
    assert box(0.5, 0.9)[0].tolist() == [0, 0, 1, 1, 0]
    assert box(0.1, 0.5)[0].tolist() == [1, 1, 0, 0, 0]
    assert box(0.5, 0.6)[0].tolist() == [0, 0, 1, 0, 0]  # one cell is enough
    with pytest.raises(ConfigError, match="at least one grid cell centre"):
        box(0.55, 0.65)  # between two centres: nothing observed
    # the smallest masks: one cell, one point
    assert spatial_mask(ObservationConfig(spatial="centre", centre_fraction=0.01), (8,))[0].tolist() == \
        [0, 0, 0, 1, 0, 0, 0, 0]
    assert spatial_mask(ObservationConfig(spatial="random_points", point_fraction=0.01), (8,)).sum() == 1


def test_temporal_masks_are_bool_and_explicit_frames_must_exist():
    assert temporal_mask(ObservationConfig(), 3).dtype == torch.bool
    assert temporal_mask(ObservationConfig(temporal="frames", frames=[0, 6]), 7).tolist() == \
        [True, False, False, False, False, False, True]
    for frames in ([0, 7], [0, 9]):
        with pytest.raises(ConfigError, match=r"observation.frames: expected frame indices < 7"):
            temporal_mask(ObservationConfig(temporal="frames", frames=frames), 7)


def test_an_observation_must_leave_a_target_after_frame_0():
    from hyco.data.observation import check_observation

    specs = [{"name": "u", "channels": 1, "dynamic": True}]
    only_first = ObservationConfig(temporal="frames", frames=[0])
    with pytest.raises(ConfigError, match="observation.temporal: expected a temporal mask that observes at least"):
        check_observation(only_first, specs, (4,), 2)
    check_observation(ObservationConfig(temporal="frames", frames=[0, 1]), specs, (4,), 3)  # frame 1 is a target
    check_observation(ObservationConfig(), specs, (4,), 1)  # a single frame: nothing to require
