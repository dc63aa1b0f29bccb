import logging
import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from hyco.data.generate import config_hash, ensure_dataset, hashed_config, simulation_seed
from hyco.data.store import TrajectoryStore
from hyco.errors import DataError

from .conftest import make_config
from .fake_physics import FakeDiffusion


def test_generated_file_holds_the_model_rollouts(tmp_path, fake_model):
    cfg = make_config()
    path = ensure_dataset(cfg, fake_model, tmp_path)
    assert path.parent == tmp_path and path.name.startswith("unit-fake_diffusion-")
    store = TrajectoryStore(path)
    assert store.shape == (6, 6, 2, 16)
    assert store.attrs["config_hash"] == config_hash(hashed_config(cfg, fake_model))
    assert [f["name"] for f in store.field_specs] == ["u", "source"] and store.dynamic_channels == [0]
    # simulation 1 of val: initial state from its own seed, then the true-coefficient rollout
    seed = simulation_seed(cfg.data.seed, "val", 1)
    assert store.seeds("val")[1] == seed
    state = fake_model.initial_state(1, seed)
    expected = np.concatenate([state[:, None].numpy(), fake_model.rollout(state, fake_model.true_coefficients(),
                                                                             5).numpy()], axis=1)[0]
    np.testing.assert_allclose(store.read_simulation("val", 1), expected, rtol=1e-6, atol=1e-6)
    assert fake_model.rollout_calls == 2 + 1  # ceil(6 sims / batch 4) + the reference above
    seeds = np.concatenate([store.seeds(s) for s in ("train", "val", "test")])
    assert len(set(seeds.tolist())) == 6  # distinct seeds across splits


def test_data_do_not_depend_on_the_generation_batch(tmp_path):
    a = ensure_dataset(make_config(generation_batch=1), FakeDiffusion(), tmp_path / "a")
    b = ensure_dataset(make_config(generation_batch=5), FakeDiffusion(), tmp_path / "b")
    assert a.name == b.name  # generation_batch is not part of the hash
    np.testing.assert_allclose(TrajectoryStore(a).trajectories("test"), TrajectoryStore(b).trajectories("test"),
                               atol=1e-6)


def test_reuse_regenerate_and_refuse(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="hyco.data.generate")
    model = FakeDiffusion()
    first = ensure_dataset(make_config(), model, tmp_path)
    calls = model.rollout_calls
    mtime = first.stat().st_mtime_ns
    # same data config, different trainer settings -> reused without simulating
    cfg = make_config()
    cfg.trainer.synthetic.lr = 0.5
    cfg.data.max_cached_sims = 3
    assert ensure_dataset(cfg, model, tmp_path) == first
    assert model.rollout_calls == calls and first.stat().st_mtime_ns == mtime
    assert "reusing dataset" in caplog.text
    # regenerate=always simulates again into the same file
    assert ensure_dataset(make_config(regenerate="always"), model, tmp_path) == first
    assert model.rollout_calls > calls
    # a change that alters the data: auto generates a new file, never refuses naming the keys
    with pytest.raises(DataError) as info:
        ensure_dataset(make_config(regenerate="never", num_train=4, data_seed=3), model, tmp_path)
    message = str(info.value)
    assert "data.regenerate=never" in message and "data.num_train (3 -> 4)" in message
    assert "data.seed (0 -> 3)" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="differs in: physics.params.nu"):
        ensure_dataset(make_config(regenerate="never"), FakeDiffusion(nu=0.02), tmp_path)
    other = ensure_dataset(make_config(num_train=4), model, tmp_path)
    assert other != first and TrajectoryStore(other).num_sims("train") == 4
    assert ensure_dataset(make_config(regenerate="never", num_train=4), model, tmp_path) == other


def test_the_training_seed_leaves_the_data_alone_and_the_data_seed_does_not(tmp_path):
    """Issue 28: `seed` (weights, shuffling) is not part of the dataset's hash; `data.seed` (trajectories, masks,
    noise) is, and it changes the trajectories."""
    model = FakeDiffusion()
    digests = {key: config_hash(hashed_config(make_config(**key_value), model))
               for key, key_value in {"base": {}, "seed": {"seed": 5}, "data_seed": {"data_seed": 5}}.items()}
    assert digests["seed"] == digests["base"] and digests["data_seed"] != digests["base"]
    base = ensure_dataset(make_config(), model, tmp_path)
    assert ensure_dataset(make_config(seed=5), model, tmp_path) == base  # the same file, reused
    other = ensure_dataset(make_config(data_seed=5), model, tmp_path)
    assert other != base and TrajectoryStore(other).data_seed == 5
    a, b = TrajectoryStore(base).trajectories("train"), TrajectoryStore(other).trajectories("train")
    assert float((a - b).abs().max()) > 0.1  # other initial states


def test_truncated_dataset_is_regenerated_with_a_warning(tmp_path, caplog):
    model = FakeDiffusion()
    path = ensure_dataset(make_config(), model, tmp_path)
    good = TrajectoryStore(path).trajectories("train").clone()
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(DataError, match="truncated or corrupt"):
        ensure_dataset(make_config(regenerate="never"), model, tmp_path)
    with caplog.at_level(logging.WARNING, logger="hyco.data.generate"):
        assert ensure_dataset(make_config(), model, tmp_path) == path
    assert "truncated or corrupt" in caplog.text and "generating it anew" in caplog.text
    np.testing.assert_array_equal(TrajectoryStore(path).trajectories("train"), good)


def test_diverging_simulation_is_reported(tmp_path):
    model = FakeDiffusion(nu=5.0)  # far beyond the explicit scheme's stability limit
    with pytest.raises(DataError, match="non-finite values"):
        ensure_dataset(make_config(num_frames=40), model, tmp_path)
    assert not any(p.suffix == ".h5" for p in tmp_path.iterdir())


class SlowDiffusion(FakeDiffusion):
    def rollout(self, state, coefficients, steps):
        time.sleep(0.3)
        return super().rollout(state, coefficients, steps)


def _generate_in_process(data_dir, barrier, results):
    model = SlowDiffusion()
    barrier.wait()
    path = ensure_dataset(make_config(), model, data_dir)
    results.put((os.getpid(), str(path), model.rollout_calls))


def test_concurrent_generation_simulates_once(tmp_path):
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_generate_in_process, args=(tmp_path, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert outcomes[0][1] == outcomes[1][1]
    assert sorted(calls for _, _, calls in outcomes) == [0, 2]  # one simulated, the other waited and reused
    TrajectoryStore(outcomes[0][1]).verify()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".h5"] == [os.path.basename(outcomes[0][1])]


def test_lock_held_too_long_is_reported(tmp_path):
    from filelock import FileLock

    from hyco.data.generate import config_hash, dataset_path

    cfg = make_config(lock_timeout_s=0.2)
    path = dataset_path(cfg, tmp_path, config_hash(hashed_config(cfg, FakeDiffusion())))
    with FileLock(str(path) + ".lock"), pytest.raises(DataError, match=r"\.lock: still held .*lock_timeout_s=0.2"):
        ensure_dataset(cfg, FakeDiffusion(), tmp_path)
    assert not path.exists()
