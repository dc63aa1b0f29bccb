"""Shipped networks: shapes in 1D and 2D, periodic padding, config validation, surrogate wrapper."""

import pytest
import torch

from hyco.errors import ConfigError
from hyco.networks import Surrogate, build_network, compute_stats

SMALL = {"unet": {"width": 4, "depth": 2}, "resnet": {"width": 4, "depth": 2}, "convnet": {"width": 4, "depth": 2},
         "fno": {"width": 4, "depth": 2, "modes": 3}}
GRIDS = {1: (16,), 2: (8, 12)}


@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("name", sorted(SMALL))
def test_output_shape_and_static_channels_copied(name, ndim):
    torch.manual_seed(0)
    model = build_network({"name": name, **SMALL[name]}, 3, [0, 2], ndim)
    for p in model.net.parameters():  # leave the zero-initialised identity start
        torch.nn.init.normal_(p, std=0.1)
    state = torch.randn(2, 3, *GRIDS[ndim])
    nxt = model(state)
    assert nxt.shape == state.shape
    assert torch.equal(nxt[:, 1], state[:, 1])  # the static channel is an input only
    assert not torch.allclose(nxt[:, [0, 2]], state[:, [0, 2]])
    assert model.rollout(state, 3).shape == (2, 3, 3, *GRIDS[ndim])
    nxt.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net.parameters())


@pytest.mark.parametrize("name", sorted(SMALL))
def test_untrained_residual_surrogate_is_identity(name):
    model = build_network({"name": name, **SMALL[name]}, 2, [0, 1], 2)
    state = torch.randn(1, 2, 8, 8)
    assert torch.equal(model(state), state)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_periodic_padding_commutes_with_shifts(name):
    """With periodic padding the network is translation-equivariant on the torus."""
    torch.manual_seed(1)
    periodic = {} if name == "fno" else {"padding": "periodic"}  # the FNO is periodic by construction
    model = build_network({"name": name, **SMALL[name], **periodic, "residual": False}, 1, [0], 2)
    for p in model.net.parameters():
        torch.nn.init.normal_(p, std=0.2)
    state = torch.randn(1, 1, 8, 8)
    shift = (4, 4)  # a multiple of the UNet's 2**depth so strided levels stay aligned
    a = torch.roll(model(state), shift, dims=(2, 3))
    b = model(torch.roll(state, shift, dims=(2, 3)))
    assert torch.allclose(a, b, atol=1e-5)


def test_normalisation_and_non_residual_output_scale():
    torch.manual_seed(2)
    traj = 5.0 + 3.0 * torch.randn(4, 6, 2, 8, 8)
    stats = compute_stats(traj, [0])
    assert abs(stats["mean"][0].item() - 5.0) < 0.1 and abs(stats["std"][0].item() - 3.0) < 0.1
    model = build_network({"name": "convnet", "width": 4, "depth": 1, "residual": False}, 2, [0], 2, stats)
    # a zero-initialised head predicts the normalised value 0, i.e. the dynamic channel's mean
    out = model(traj[:, 0])
    assert torch.allclose(out[:, 0], torch.full_like(out[:, 0], stats["mean"][0].item()))
    assert torch.equal(out[:, 1], traj[:, 0, 1])


def test_bad_network_config_names_the_key():
    with pytest.raises(ConfigError, match=r"^network\.width: expected an integer >= 1, got 0$"):
        build_network({"name": "unet", "width": 0}, 1, [0], 2)
    with pytest.raises(ConfigError, match=r"^network\.name: expected one of .*unet"):
        build_network({"name": "transformer"}, 1, [0], 2)
    model = build_network({"name": "unet", "width": 4, "depth": 3}, 1, [0], 2)
    with pytest.raises(ConfigError, match=r"^network\.depth: expected at most 2 for a grid of \(4, 4\)"):
        model(torch.zeros(1, 1, 4, 4))


def test_fingerprint_depends_on_architecture_only():
    a = build_network({"name": "unet", "width": 4}, 2, [0, 1], 2)
    b = build_network({"name": "unet", "width": 4}, 2, [0, 1], 2, compute_stats(torch.randn(2, 3, 2, 8, 8), [0, 1]))
    c = build_network({"name": "unet", "width": 8}, 2, [0, 1], 2)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_stats_are_saved_with_the_state_dict():
    stats = compute_stats(torch.randn(2, 3, 2, 8) * 4 + 1, [1])
    a = build_network({"name": "convnet", "width": 4}, 2, [1], 1, stats)
    b = build_network({"name": "convnet", "width": 4}, 2, [1], 1)
    b.load_state_dict(a.state_dict())
    for key, value in stats.items():
        assert torch.allclose(b.stats()[key], value)


def test_surrogate_rejects_bad_channels():
    with pytest.raises(ValueError, match="dynamic_channels"):
        Surrogate(torch.nn.Identity(), 2, [2], 2)
    model = build_network({"name": "convnet", "width": 4}, 2, [0], 2)
    with pytest.raises(ValueError, match="state: expected"):
        model(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("name", ["unet", "resnet", "convnet", "fno"])
def test_shipped_network_configs_validate_and_build(name):
    from hyco.config.validate import load

    cfg = load("train", [f"network={name}"])
    assert cfg.network["name"] == name
    model = build_network(cfg.network, 2, [0, 1], 2)
    assert model(torch.zeros(1, 2, 16, 16)).shape == (1, 2, 16, 16)


def test_streamed_store_stats_equal_in_memory_stats(tmp_path):
    import numpy as np

    from hyco.data.store import TrajectoryStore, create_store
    from hyco.networks.stats import store_stats

    data = (np.random.default_rng(0).normal(size=(3, 4, 2, 8)) * np.array([2.0, 0.5])[:, None] + 1.0).astype(np.float32)
    attrs = {"config_hash": "h", "field_specs": [{"name": "u", "channels": 1}, {"name": "v", "channels": 1,
             "dynamic": False}], "dynamic_channels": [0], "bounds": [1.0], "dt": 0.1}
    with create_store(tmp_path / "d.h5", split_sizes={"train": 3}, num_frames=4, num_channels=2, spatial_shape=(8,),
                      attrs=attrs, coefficients={}) as writer:
        writer.write(0, data, np.arange(3))
    streamed = store_stats(TrajectoryStore(tmp_path / "d.h5"))
    in_memory = compute_stats(torch.from_numpy(data), [0])
    assert all(torch.allclose(streamed[k], in_memory[k]) for k in in_memory)
    assert streamed["delta_std"].shape == (1,)


def test_position_channels_by_hand_and_a_network_that_sees_them():
    from hyco.networks.surrogate import position_channels

    like = torch.zeros(2, 1, 4, 8)  # [B, C, y, x]
    channels = position_channels(like)
    assert channels.shape == (2, 4, 4, 8)
    # y axis first (tensor order): sin and cos of 2 pi (j + 1/2) / 4, constant along x
    assert channels[1, 0, :, 3].tolist() == pytest.approx([0.7071068, 0.7071068, -0.7071068, -0.7071068], abs=1e-6)
    assert channels[0, 1, :, 0].tolist() == pytest.approx([0.7071068, -0.7071068, -0.7071068, 0.7071068], abs=1e-6)
    assert channels[0, 2, 0, 2] == pytest.approx(float(torch.sin(torch.tensor(2 * torch.pi * 2.5 / 8))), abs=1e-6)
    # off by default, and then the fingerprint of networks made before the key existed is unchanged
    plain = build_network({"name": "convnet", "width": 4, "depth": 1}, 1, [0], 2)
    assert "coordinates" not in plain.config["params"]
    torch.manual_seed(0)
    seeing = build_network({"name": "convnet", "width": 4, "depth": 1, "coordinates": True}, 1, [0], 2)
    assert seeing.fingerprint() != plain.fingerprint()
    for p in seeing.net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    uniform = torch.ones(1, 1, 8, 8)
    with torch.no_grad():
        out = seeing(uniform)
    assert out.shape == uniform.shape
    # a uniform state gives a non-uniform step only through the position channels (a convolution alone cannot)
    assert float(out.std()) > 1e-3
    plain_out = build_network({"name": "convnet", "width": 4, "depth": 1, "padding": "periodic"}, 1, [0], 2)
    for p in plain_out.net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    with torch.no_grad():
        assert float(plain_out(uniform).std()) < 1e-6
