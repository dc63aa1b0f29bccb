"""Completion of partly observed input states by direct insertion (hyco.data.completion)."""

import pytest
import torch

from hyco.config.schema import ObservationConfig
from hyco.data.chunks import CacheManager
from hyco.data.completion import StateCompletion, complete_trajectories
from hyco.data.generate import ensure_dataset
from hyco.data.store import TrajectoryStore
from hyco.data.windows import WindowDataset

from .conftest import make_config
from .fake_physics import FakeDiffusion

HIDDEN = ObservationConfig(spatial="centre", centre_fraction=0.5, temporal="every_k", every_k=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    cfg = make_config(num_train=5, num_val=1, num_test=1, num_frames=7)
    return TrajectoryStore(ensure_dataset(cfg, FakeDiffusion(), tmp_path_factory.mktemp("completion")))


def test_direct_insertion_leaves_frame_0_as_observed():
    """Frame 0 is the observation itself, even where it is unknown (the caller completes nothing there)."""
    observed = torch.arange(6.0).reshape(1, 2, 1, 3)
    known = torch.zeros(2, 1, 3, dtype=torch.bool)
    known[0, :, 0] = True
    completed = complete_trajectories(observed, known, lambda s: s + 100.0)
    assert completed[0, 0, 0].tolist() == [0.0, 1.0, 2.0] and completed[0, 1, 0].tolist() == [100.0, 101.0, 102.0]


def test_each_refresh_stores_its_chunks_under_its_own_cycle(store, tmp_path):
    windows = WindowDataset(store, "train", 2, observation=HIDDEN, max_cached_sims=2)
    completion = StateCompletion(windows, strategy="cache", cache=CacheManager(tmp_path), sims_per_chunk=2)
    for cycle in range(2):
        completion.refresh(lambda s: s)
        completion.states(torch.tensor([0]), torch.tensor([1]))
        cycles = sorted(p.name for p in (tmp_path / "generated" / "completion").iterdir())
        assert cycles == [f"cycle_{cycle:03d}"]  # the previous refresh's files are gone
    completion.close()


def test_direct_insertion_keeps_observations_and_steps_the_rest():
    observed = torch.arange(4.0).reshape(1, 4, 1, 1).expand(1, 4, 1, 3).clone()  # frame t holds t
    known = torch.zeros(4, 1, 3, dtype=torch.bool)
    known[0] = True
    known[2, :, 1] = True  # frame 2: only the middle point observed
    completed = complete_trajectories(observed, known, lambda s: s + 10.0)
    assert completed[0, :, 0].tolist() == [[0, 0, 0], [10, 10, 10], [20, 2, 20], [30, 12, 30]]


def test_windows_take_completed_inputs_and_never_hidden_values(store):
    windows = WindowDataset(store, "train", 2, observation=HIDDEN, max_cached_sims=2)
    with pytest.raises(RuntimeError, match="StateCompletion"):
        windows.batch(torch.arange(len(windows)))
    completion = StateCompletion(windows, strategy="memory", sims_per_chunk=2)
    windows.attach_completion(completion)
    completion.refresh(lambda s: s * 0.5)
    inputs = windows.batch(torch.arange(len(windows))).inputs
    sims, starts = windows.locate(torch.arange(len(windows)))
    completed = completion.trajectories()
    assert torch.equal(inputs, completed[sims, starts])
    observed = torch.stack([windows.observed_trajectories([s])[0] for s in range(windows.num_sims)])
    known = windows.observation.known
    assert torch.equal(completed[:, :][known.expand_as(completed)], observed[known.expand_as(observed)])
    assert torch.equal(inputs[starts == 0], observed[sims[starts == 0], 0])  # frame 0 as observed


@pytest.mark.parametrize("strategy", ["cache", "on_the_fly"])
def test_storage_strategies_give_the_memory_result(store, strategy, tmp_path):
    results = {}
    for kind in ("memory", strategy):
        windows = WindowDataset(store, "train", 2, observation=HIDDEN, max_cached_sims=2)
        completion = StateCompletion(windows, strategy=kind, cache=CacheManager(tmp_path), sims_per_chunk=2)
        windows.attach_completion(completion)
        completion.refresh(lambda s: 0.9 * s)
        order = windows.epoch_order(torch.Generator().manual_seed(0))
        if kind != "memory":  # windows come grouped by chunk: each chunk is made or read once per epoch
            chunk_of = windows.locate(order)[0] // 2
            assert int((chunk_of[1:] != chunk_of[:-1]).sum()) == completion.num_chunks - 1
        results[kind] = windows.batch(torch.arange(len(windows))).inputs
        completion.close()
    assert torch.equal(results["memory"], results[strategy])
    assert not (tmp_path / "generated").exists()  # closed: the cache files are gone


def test_completion_bookkeeping_chunks_budget_and_refusals(store, tmp_path):
    """5 simulations of 7 frames, 2 channels of 16 values: 4480 bytes in float32, by hand."""
    windows = WindowDataset(store, "train", 2, observation=HIDDEN, max_cached_sims=2)
    completion = StateCompletion(windows)
    assert completion.estimated_bytes == 5 * 7 * 2 * 16 * 4 and completion.strategy == "memory"
    assert completion.sims_per_chunk == 2 and completion.num_chunks == 3  # capped by the 2 cached simulations
    assert (completion.refreshes, completion.seconds) == (0, 0.0) and not completion.ready
    took = completion.refresh(lambda s: s) + completion.refresh(lambda s: s)
    assert completion.refreshes == 2 and completion.seconds == pytest.approx(took, abs=1e-12) and 0 < took < 60
    completion.close()
    assert not completion.ready
    wide = WindowDataset(store, "train", 2, observation=HIDDEN, max_cached_sims=64)
    assert StateCompletion(wide).sims_per_chunk == 5  # capped by the number of simulations
    assert StateCompletion(wide, sims_per_chunk=1).num_chunks == 5
    budget = 4480 / 2**30  # GB: the data take half of it and more -> the disk cache; all of it and more -> on the fly
    assert StateCompletion(wide, memory_budget_gb=2.5 * budget).strategy == "memory"
    assert StateCompletion(wide, memory_budget_gb=1.5 * budget, cache=CacheManager(tmp_path)).strategy == "cache"
    assert StateCompletion(wide, memory_budget_gb=0.5 * budget).strategy == "on_the_fly"
    with pytest.raises(ValueError, match="CacheManager"):
        StateCompletion(wide, memory_budget_gb=1.5 * budget)
    oracle = ObservationConfig(spatial="centre", states="full")
    for known_in_full in (WindowDataset(store, "train", 2), WindowDataset(store, "train", 2, observation=oracle)):
        with pytest.raises(ValueError, match="partly hidden"):
            StateCompletion(known_in_full)
