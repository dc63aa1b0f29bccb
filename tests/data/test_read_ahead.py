"""Streaming a dataset larger than the simulation cache: the loader reads the simulations of an epoch's coming
batches in a background thread (hyco.data.sim_cache). The batches are those of on-demand loading, bit for bit;
the cache never holds more than its capacity; an epoch left early, an access the plan did not foresee and a
damaged file all end the read-ahead cleanly. Training on streamed data sees the same windows each epoch as
training on data held in memory: in another order (blocks of simulations), so only order-free results agree."""

from __future__ import annotations

import threading

import h5py
import pytest
import torch

from hyco.config.schema import ObservationConfig, SyntheticTrainerConfig
from hyco.data.generate import ensure_dataset
from hyco.data.loader import make_loader
from hyco.data.store import TrajectoryStore
from hyco.data.stored_chunks import frames_per_stored_chunk
from hyco.data.windows import WindowDataset
from hyco.errors import DataError

from .conftest import make_config
from .fake_physics import FakeDiffusion

OBSERVED = ObservationConfig(spatial="centre", centre_fraction=0.5, noise_level=0.1, states="full")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = make_config(num_train=24, num_val=0, num_test=0, num_frames=6, generation_batch=24)
    return TrajectoryStore(ensure_dataset(cfg, FakeDiffusion(resolution=32), tmp_path_factory.mktemp("stream")))


def read_ahead_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "hyco-read-ahead" and t.is_alive()]


def epoch(loader) -> list:
    return [(b.inputs.clone(), b.targets.clone(), None if b.mask is None else b.mask.clone()) for b in loader]


def test_read_ahead_gives_the_batches_of_on_demand_loading_within_the_cache(store, monkeypatch):
    streamed = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=6)
    on_demand = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=6)
    monkeypatch.setattr(on_demand, "read_ahead", lambda batches: False)
    resident = []
    original = streamed.cache.ensure

    def watched(sims):
        original(sims)
        resident.append(streamed.cache.resident)

    monkeypatch.setattr(streamed.cache, "ensure", watched)
    a, b = make_loader(streamed, 8, shuffle=True, seed=2), make_loader(on_demand, 8, shuffle=True, seed=2)
    for _ in range(2):
        first, second = epoch(a), epoch(b)
        assert len(first) == len(second) == 24 * 4 // 8
        for x, y in zip(first, second):
            assert all(torch.equal(p, q) for p, q in zip(x, y))
    assert max(resident) <= 6  # never more simulations than the cache holds
    assert streamed.cache.loads <= on_demand.cache.loads <= 2 * 24  # each simulation read at most once per epoch
    assert read_ahead_threads() == []  # every epoch's reader has finished


def test_an_epoch_left_early_stops_the_reader(store):
    dataset = WindowDataset(store, "train", 2, max_cached_sims=4)
    loader = make_loader(dataset, 8, shuffle=True, seed=0)
    for count, _ in enumerate(loader):
        if count == 2:
            break
    assert read_ahead_threads() == []
    assert dataset.cache.resident <= 4
    full = torch.cat([b.inputs for b in make_loader(dataset, 8, shuffle=False)])  # and the cache still works
    assert torch.equal(full, WindowDataset(store, "train", 2, max_cached_sims=24).batch(torch.arange(96)).inputs)


def test_an_access_the_plan_did_not_foresee_ends_it_and_still_reads_right(store):
    dataset = WindowDataset(store, "train", 2, max_cached_sims=4)
    reference = store.trajectories("train")
    seen = []
    for batch in make_loader(dataset, 8, shuffle=True, seed=1):
        seen.append(batch.inputs)
        if len(seen) == 3:  # e.g. a model reading whole trajectories in the middle of the epoch
            assert torch.equal(dataset.observed_trajectories([23, 0]), reference[[23, 0]])
    assert sum(b.shape[0] for b in seen) == 96 and read_ahead_threads() == []


def test_a_damaged_simulation_read_ahead_is_one_clear_error(tmp_path):
    cfg = make_config(num_train=12, num_val=0, num_test=0, num_frames=6, generation_batch=12)
    path = ensure_dataset(cfg, FakeDiffusion(resolution=32), tmp_path)
    with h5py.File(path, "r") as f:  # the byte offset of simulation 7's chunk
        offset = f["trajectories"].id.get_chunk_info_by_coord((7, 0, 0, 0)).byte_offset
    with open(path, "r+b") as handle:
        handle.seek(offset + 100)
        handle.write(b"\xff\xff\xff\xff")
    dataset = WindowDataset(TrajectoryStore(path), "train", 2, max_cached_sims=3)
    with pytest.raises(DataError, match=r"cannot read simulation 7 of split 'train', the file is corrupt"):
        for _ in make_loader(dataset, 4, shuffle=True, seed=0):
            pass
    assert read_ahead_threads() == []


def test_streamed_training_sees_the_same_windows_each_epoch_as_training_in_memory(store):
    """Same samples per epoch; the order differs (block shuffle), so a network trained in another order is not the
    same, but it is without shuffling; a sum over an epoch's windows (the physical objective) differs only by the
    order of its terms."""
    from hyco.networks import build_network
    from hyco.training.synthetic import SyntheticTrainer

    held = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=24)
    streamed = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=6)
    for shuffle in (True, False):
        a = make_loader(held, 8, shuffle=shuffle, seed=4)
        b = make_loader(streamed, 8, shuffle=shuffle, seed=4)
        windows = [sorted(map(bytes, (torch.cat([x.inputs for x in loader]).numpy()))) for loader in (a, b)]
        assert windows[0] == windows[1]  # the same windows in the epoch
    orders = [torch.cat([x.inputs for x in make_loader(d, 8, shuffle=True, seed=4)]) for d in (held, streamed)]
    assert not torch.equal(*orders)  # ... in another order

    weights = []
    for dataset in (held, streamed):
        torch.manual_seed(0)
        model = build_network({"name": "convnet", "width": 4, "depth": 1}, 2, [0], 1)
        trainer = SyntheticTrainer(SyntheticTrainerConfig(epochs=2, batch_size=8), model, progress=False)
        trainer.train(make_loader(dataset, 8, shuffle=False, seed=4), 2)
        weights.append(torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
    assert torch.equal(*weights)


def test_batches_that_each_need_the_whole_cache_are_read_ahead_without_waiting_forever(store):
    """A cache of 2 simulations and batches of 6 windows (4 per simulation): every batch needs both slots, so
    the reader may refill them only once the batch before has been gathered."""
    streamed = WindowDataset(store, "train", 2, max_cached_sims=2)
    on_demand = WindowDataset(store, "train", 2, max_cached_sims=24)
    result: list = []
    worker = threading.Thread(target=lambda: result.append(epoch(make_loader(streamed, 6, shuffle=True, seed=3))),
                              daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the read-ahead and the training thread wait for each other"
    expected = epoch(make_loader(on_demand, 6, shuffle=False, seed=3))
    order = torch.cat([b[0] for b in result[0]])
    assert sorted(map(bytes, order.numpy())) == sorted(map(bytes, torch.cat([b[0] for b in expected]).numpy()))


def _several_chunks(path) -> TrajectoryStore:
    """40 frames of 2 x 64 x 64 float32 (32 KiB each): chunks of 32 frames, the last one partly filled."""
    from hyco.data.store import create_store

    values = torch.randn(3, 40, 2, 64, 64, generator=torch.Generator().manual_seed(0)).numpy()
    attrs = {"config_hash": "t", "config": {}, "dynamic_channels": [0, 1], "bounds": [1.0, 1.0], "dt": 0.1,
             "field_specs": [{"name": "u", "channels": 2, "grid": "centered", "dynamic": True}]}
    with create_store(path, split_sizes={"train": 2, "test": 1}, num_frames=40, num_channels=2, spatial_shape=(64, 64),
                      attrs=attrs, coefficients={}) as writer:
        writer.write(0, values, [0, 1, 2])
    return TrajectoryStore(path)


def test_a_reread_copies_the_stored_chunks_bit_for_bit(tmp_path):
    store = _several_chunks(tmp_path / "s.h5")
    assert frames_per_stored_chunk(store._file()["trajectories"]) == 32
    for split, count in (("train", 2), ("test", 1)):
        for index in range(count):
            reread = store.reread_simulation(split, index, out=torch.full((40, 2, 64, 64), float("nan")).numpy())
            assert (reread == store.read_simulation(split, index)).all()
    with pytest.raises(IndexError, match="out of range"):
        store.reread_simulation("test", 1, out=torch.zeros(40, 2, 64, 64).numpy())


def test_a_simulation_read_again_skips_its_checksums_and_the_batches_stay_the_same(store, monkeypatch):
    """Its first read checks the chunks; after an eviction it is reread as stored; the epochs equal those read
    with every checksum checked each time."""
    calls = {"read": 0, "reread": 0}
    read, reread = TrajectoryStore.read_simulation, TrajectoryStore.reread_simulation

    def counted(name, method):
        def call(self, *args, **kwargs):
            calls[name] += 1
            return method(self, *args, **kwargs)
        return call

    checked = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=6)
    monkeypatch.setattr(checked.cache, "store", type("Checked", (), {  # a reader without `reread_simulation`
        "read_simulation": lambda _, *a, **k: store.read_simulation(*a, **k)})())
    loader = make_loader(checked, 8, shuffle=True, seed=2)
    expected = [epoch(loader) for _ in range(2)]
    monkeypatch.setattr(TrajectoryStore, "read_simulation", counted("read", read))
    monkeypatch.setattr(TrajectoryStore, "reread_simulation", counted("reread", reread))
    streamed = WindowDataset(store, "train", 2, observation=OBSERVED, max_cached_sims=6)
    loader = make_loader(streamed, 8, shuffle=True, seed=2)
    for want in expected:
        for x, y in zip(epoch(loader), want, strict=True):
            assert all((p is None and q is None) or torch.equal(p, q) for p, q in zip(x, y))
    assert calls["read"] == 24 and calls["reread"] == streamed.cache.loads - 24 > 0
