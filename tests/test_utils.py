import logging
import random

import numpy as np
import pytest
import torch

from hyco.training.loss import masked_mse
from hyco.utils.io import atomic_path, atomic_torch_save
from hyco.utils.log import LOG_FILE_NAME, setup_logging
from hyco.utils.seed import rng_state, seed_everything, set_rng_state


def test_seeding_is_reproducible_and_state_round_trips():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_atomic_write_keeps_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"a": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("crash mid-write")
    assert torch.load(target, weights_only=True) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pt"]


def test_logging_writes_console_and_run_file(tmp_path):
    path = setup_logging(tmp_path)
    logging.getLogger("hyco.test").info("hello %d", 42)
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert path == tmp_path / LOG_FILE_NAME
    assert "hello 42" in path.read_text()
    setup_logging(None)


def test_masked_mse_counts_observed_values_only():
    pred = torch.zeros(2, 3, 2, 4, 4)  # [B, R, C, y, x]
    target = torch.ones_like(pred)
    target[..., :2, :] = 5.0  # unobserved half differs a lot
    mask = torch.zeros(2, 3, 1, 4, 4)
    mask[..., 2:, :] = 1.0
    # observed values all have error 1 -> MSE exactly 1, whatever the channel count or mask size
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    assert masked_mse(pred, target).item() == pytest.approx((25 + 1) / 2)
    full = torch.ones(2, 3, 1, 4, 4)
    assert masked_mse(pred, target, full).item() == pytest.approx(masked_mse(pred, target).item())


def test_masked_mse_weighs_every_sample_the_same():
    pred = torch.zeros(2, 1, 1, 4, 4)
    target = torch.zeros_like(pred)
    target[0] = 1.0  # sample 0: error 1 everywhere, fully observed
    target[1] = 3.0  # sample 1: error 3, observed on a quarter of the grid only
    mask = torch.ones(2, 1, 1, 4, 4)
    mask[1] = 0.0
    mask[1, ..., :2, :2] = 1.0
    assert masked_mse(pred, target, mask).item() == pytest.approx((1.0 + 9.0) / 2)
    # a sample without any observed value is left out instead of counting as zero error
    mask[1] = 0.0
    assert masked_mse(pred, target, mask).item() == pytest.approx(1.0)
    # non-binary mask values weight a sample on top of the per-sample mean
    weights = torch.ones(2, 1, 1, 4, 4)
    weights[1] = 0.5
    assert masked_mse(pred, target, weights).item() == pytest.approx((1.0 + 0.5 * 9.0) / 2)


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    atomic_torch_save({"a": 1}, tmp_path / "x.pt")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.pt").stat().st_mode) == 0o666 & ~umask
