import logging
import random

import numpy as np
import pytest
import torch

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


def test_atomic_files_get_ordinary_permissions(tmp_path):
    import os
    import stat

    atomic_torch_save({"a": 1}, tmp_path / "x.pt")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "x.pt").stat().st_mode) == 0o666 & ~umask
