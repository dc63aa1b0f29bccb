import tracemalloc

import pytest
import torch

from hyco.config.schema import ObservationConfig
from hyco.data.generate import ensure_dataset
from hyco.data.loader import make_loader
from hyco.data.store import TrajectoryStore
from hyco.data.windows import WindowDataset

from .conftest import make_config
from .fake_physics import FakeDiffusion


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = make_config(num_train=5, num_val=2, num_test=1, num_frames=7)
    return TrajectoryStore(ensure_dataset(cfg, FakeDiffusion(), tmp_path_factory.mktemp("windows")))


@pytest.mark.parametrize("rollout", [1, 3, 6])
def test_window_count_and_contents_equal_the_stored_frames(store, rollout):
    for split in ("train", "val", "test"):
        data = store.trajectories(split)
        ds = WindowDataset(store, split, rollout, max_cached_sims=2)
        n, t = data.shape[:2]
        assert len(ds) == n * (t - rollout)
        batch = ds.batch(torch.arange(len(ds)).flip(0))  # more sims than the cache: grouped path
        inputs, targets = batch.inputs, batch.targets
        assert batch.mask is None and batch.term is None  # no observation: every value counts, all DATA
        expected_in = torch.stack([data[s, k] for s in range(n) for k in range(t - rollout)]).flip(0)
        expected_tg = torch.stack([data[s, k + 1:k + 1 + rollout] for s in range(n) for k in range(t - rollout)])
        assert torch.equal(inputs, expected_in) and torch.equal(targets, expected_tg.flip(0))
        single = ds[len(ds) - 1]
        assert torch.equal(single.inputs[0], data[n - 1, t - rollout - 1]) and single.size == 1


def test_observed_windows_carry_their_masks_and_consistent_noise(store):
    obs_cfg = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2,
                                noise_level=0.2, seed=5,
                                states="full")  # the window pipeline itself: oracle states
    ds = WindowDataset(store, "train", 2, observation=obs_cfg, max_cached_sims=1)  # evicts constantly
    again = WindowDataset(store, "train", 2, observation=obs_cfg, max_cached_sims=64)
    batch, other = ds.batch(torch.arange(len(ds))), again[torch.arange(len(ds))]
    inputs, targets, masks = batch.inputs, batch.targets, batch.mask
    assert torch.equal(inputs, other.inputs) and torch.equal(targets, other.targets) and torch.equal(masks, other.mask)
    assert masks.shape == (len(ds), 2, 1, 16)
    starts = torch.arange(len(ds)) % ds.windows_per_sim
    # by hand: centre_fraction 0.5 of 16 cells is cells 4..11; every_k=2 observes the even frames; the targets
    # of the window starting at t are frames t+1 and t+2
    expected = torch.zeros(len(ds), 2, 1, 16)
    for i, t in enumerate(starts.tolist()):
        for j in range(2):
            if (t + 1 + j) % 2 == 0:
                expected[i, j, 0, 4:12] = 1.0
    assert torch.equal(masks, expected)
    # the noisy frame t+1 is the same as target of window t and as input of window t+1
    assert torch.equal(targets[:-1, 0][starts[:-1] < ds.windows_per_sim - 1],
                       inputs[1:][starts[:-1] < ds.windows_per_sim - 1])
    clean_inputs = WindowDataset(store, "train", 2).batch(torch.arange(len(ds))).inputs
    noise = inputs - clean_inputs
    assert torch.equal(noise[:, 1], torch.zeros_like(noise[:, 1]))  # static channel clean
    assert noise[:, 0].std().item() == pytest.approx(0.2 * store.channel_std[0].item(), rel=0.25)


def test_loader_epochs_cover_every_window_once_and_are_reproducible(store):
    ds = WindowDataset(store, "train", 2, observation=ObservationConfig(spatial="centre", states="full"))
    loader = make_loader(ds, batch_size=4, shuffle=True, seed=3, device="cpu")
    assert len(loader) == -(-len(ds) // 4)
    seen_inputs = []
    for batch in loader:
        assert batch.inputs.shape[1:] == (2, 16) and batch.targets.shape[1:] == (2, 2, 16)
        assert batch.mask.shape[1:] == (2, 1, 16)
        seen_inputs.append(batch.inputs)
    first_epoch = torch.cat(seen_inputs)
    all_inputs = ds.batch(torch.arange(len(ds))).inputs
    key = lambda x: sorted(map(tuple, x.reshape(len(x), -1).tolist()))  # noqa: E731
    assert key(first_epoch) == key(all_inputs)
    second_epoch = torch.cat([b.inputs for b in loader])
    assert not torch.equal(first_epoch, second_epoch)
    replay = make_loader(ds, batch_size=4, shuffle=True, seed=3)
    assert torch.equal(torch.cat([b.inputs for b in replay]), first_epoch)
    replay.epoch = 1
    assert torch.equal(torch.cat([b.inputs for b in replay]), second_epoch)


def test_loader_with_worker_processes_matches(store):
    ds = WindowDataset(store, "train", 2)
    plain = [b for b in make_loader(ds, 8, shuffle=True, seed=1)]
    workers = [b for b in make_loader(ds, 8, shuffle=True, seed=1, num_workers=2)]
    assert len(plain) == len(workers)
    assert all(torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets) for a, b in zip(plain, workers))


def test_worker_processes_take_their_threads_from_the_training_process(store):
    ds = WindowDataset(store, "train", 2)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        during = [torch.get_num_threads() for _ in make_loader(ds, 8, shuffle=True, seed=1, num_workers=2)]
        assert set(during) == {1} and torch.get_num_threads() == 3  # 3 threads - 2 workers, then given back
    finally:
        torch.set_num_threads(before)


def test_memory_stays_bounded_with_200_simulations(tmp_path):
    cfg = make_config(num_train=200, num_val=0, num_test=0, num_frames=6, generation_batch=50)
    store = TrajectoryStore(ensure_dataset(cfg, FakeDiffusion(resolution=128, nu=1e-4), tmp_path))
    ds = WindowDataset(store, "train", 2, max_cached_sims=8)  # 200 sims x 6 KB = 1.2 MB; the cache holds 48 KB
    loader = make_loader(ds, batch_size=16, shuffle=True, seed=0)
    tracemalloc.start()
    count = 0
    for batch in loader:
        count += batch.size
        assert ds.cache.resident <= 8
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 200 * 4
    assert ds.cache.nbytes == 8 * 6 * 2 * 128 * 4  # the slab never grows
    assert ds.cache.loads == 200  # block shuffling: every simulation read exactly once per epoch ...
    assert peak < 256 * 1024  # ... without Python/NumPy-side copies piling up


def test_block_shuffle_mixes_simulations_within_cache_sized_blocks():
    from hyco.data.loader import BatchOrder

    order = BatchOrder(40 * 5, 10, shuffle=True, seed=0, windows_per_sim=5, sims_per_block=4)
    epoch = order.order(0)
    assert sorted(epoch.tolist()) == list(range(200))
    blocks = (epoch // 5).reshape(10, 20)  # 4 sims x 5 windows per block
    assert all(len(set(b.tolist())) == 4 for b in blocks)
    assert not torch.equal(epoch, order.order(1))


def test_from_config_applies_the_observation_and_cache_size(store):
    cfg = make_config(observation={"spatial": "centre", "centre_fraction": 0.5}, max_cached_sims=3, rollout_steps=2)
    observed = WindowDataset.from_config(cfg, store, "train")
    clean = WindowDataset.from_config(cfg, store, "val", rollout_steps=1, observed=False)
    assert observed.has_mask and observed.cache.capacity == 3 and observed.rollout_steps == 2
    assert observed[0].mask.mean().item() == 0.5
    assert not clean.has_mask and len(clean) == 2 * 6


def test_negative_indices_count_from_the_end_and_out_of_range_is_refused(store):
    ds = WindowDataset(store, "train", 2)  # 5 simulations x 5 windows
    n = len(ds)
    assert n == 25
    last, first = ds.batch([n - 1]).inputs, ds.batch([0]).inputs
    assert torch.equal(ds.batch([-1]).inputs, last) and torch.equal(ds.batch([-n]).inputs, first)
    for bad in (n, -n - 1):
        with pytest.raises(IndexError, match="out of range for 25 windows"):
            ds.batch([bad])
    assert torch.equal(ds.__getitems__([3, 1]).targets, ds.batch([3, 1]).targets)


def test_a_cache_holding_every_simulation_gathers_the_same_windows_in_any_dtype(store):
    """The direct gather (every simulation resident), in float32 and float64, against the stored frames."""
    data = store.trajectories("train")
    for dtype in (torch.float32, torch.float64):
        ds = WindowDataset(store, "train", 3, max_cached_sims=64, dtype=dtype)
        ds.batch(torch.arange(len(ds)))  # loads every simulation
        assert ds.cache.holds_all
        index = torch.tensor([0, 7, 12, 3])
        batch = ds.batch(index)
        inputs, targets = batch.inputs, batch.targets
        assert inputs.dtype == targets.dtype == dtype
        sims, starts = index // 4, index % 4  # 4 windows per simulation of 7 frames
        assert torch.equal(inputs, data[sims, starts].to(dtype))
        assert torch.equal(targets, torch.stack([data[s, t + 1:t + 4] for s, t in zip(sims, starts)]).to(dtype))
        whole = ds.observed_trajectories([1, 4])
        assert whole.dtype == dtype and torch.equal(whole, data[[1, 4]].to(dtype))


def test_completed_inputs_with_every_simulation_resident(store):
    from hyco.data.completion import StateCompletion

    hidden = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2)
    ds = WindowDataset(store, "train", 2, observation=hidden, max_cached_sims=64)
    completion = StateCompletion(ds, strategy="memory")
    ds.attach_completion(completion)
    completion.refresh(lambda s: s + 1.0)  # reads every simulation
    assert ds.cache.holds_all
    inputs = ds.batch(torch.arange(len(ds))).inputs
    sims, starts = ds.locate(torch.arange(len(ds)))
    assert torch.equal(inputs, completion.trajectories()[sims, starts])
    second = (starts == 1).nonzero().squeeze(1)  # a batch whose latest start is frame 1
    assert torch.equal(ds.batch(second).inputs, completion.trajectories()[sims[second], 1])


def test_epoch_order_groups_windows_by_completed_chunk_reproducibly(store, tmp_path):
    from hyco.data.chunks import CacheManager
    from hyco.data.completion import StateCompletion

    hidden = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2)
    ds = WindowDataset(store, "train", 2, observation=hidden, max_cached_sims=2)
    assert ds.epoch_order(torch.Generator().manual_seed(0)) is None  # nothing completed: the loader's own order
    ds.attach_completion(StateCompletion(ds, strategy="memory", sims_per_chunk=2))
    assert ds.epoch_order(torch.Generator().manual_seed(0)) is None  # in memory: any order is as cheap
    completion = StateCompletion(ds, strategy="on_the_fly", cache=CacheManager(tmp_path), sims_per_chunk=2)
    ds.attach_completion(completion)
    orders = [ds.epoch_order(torch.Generator().manual_seed(seed)) for seed in (3, 3, 4)]
    assert torch.equal(orders[0], orders[1]) and not torch.equal(orders[0], orders[2])
    assert sorted(orders[0].tolist()) == list(range(len(ds)))


def test_describe_fit_says_what_the_solver_fits(store):
    assert WindowDataset(store, "train", 6, from_start=True).describe_fit() == \
        "whole trajectories (6 frames) rolled out from frame 0"
    assert WindowDataset(store, "train", 2, from_start=True).describe_fit() == \
        "the first 2 of 6 frames of each trajectory, rolled out from frame 0"
    assert WindowDataset(store, "train", 2).describe_fit() == "2-step windows from every frame"
    hidden = ObservationConfig(spatial="centre", centre_fraction=0.5)
    assert WindowDataset(store, "train", 2, observation=hidden).describe_fit() == \
        "2-step windows from every frame (inputs after frame 0 completed by the models)"


def test_the_cache_is_least_recently_used_and_counts_its_loads_and_hits(store):
    """Capacity 2 over 5 simulations: touching simulation 0 again before loading 2 keeps 0 and evicts 1."""
    ds = WindowDataset(store, "train", 2, max_cached_sims=2)
    cache = ds.cache
    assert (cache.capacity, cache.loads, cache.hits) == (2, 0, 0)
    for sims in ([0], [1], [0], [2]):
        cache.ensure(sims)
    assert (cache.loads, cache.hits) == (3, 1)
    cache.ensure([0])  # still resident: the least recently used one (1) was evicted
    assert (cache.loads, cache.hits) == (3, 2)
    cache.ensure([1])
    assert cache.loads == 4
    assert WindowDataset(store, "train", 2, max_cached_sims=1).cache.capacity == 1


def test_a_dataset_opened_by_path_from_frame_0_and_its_refusals(store):
    from hyco.errors import DataError

    by_path = WindowDataset(str(store.path), "train", 6, from_start=True)
    assert len(by_path) == 5 and by_path.windows_per_sim == 1 and "split='train'" in repr(by_path)
    batch = by_path.batch([3])
    inputs, targets = batch.inputs, batch.targets
    data = store.trajectories("train")
    assert torch.equal(inputs[0], data[3, 0]) and torch.equal(targets[0], data[3, 1:])
    first_two = WindowDataset(store, "train", 2, from_start=True)  # the first 2 steps of each trajectory only
    assert len(first_two) == 5 and torch.equal(first_two.batch([4]).targets[0], data[4, 1:3])
    for steps in (0, 7):  # 7 frames: 1 <= R <= 6
        with pytest.raises(DataError, match=r"rollout length .* needs 1 <= R <= 6"):
            WindowDataset(store, "train", steps)
