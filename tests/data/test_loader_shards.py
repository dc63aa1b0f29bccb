"""The loader under torchrun: a rank's shard of every epoch (DistributedSampler semantics), computed here for
each rank in one process (no process group needed: the shard is a function of rank and world size)."""

from __future__ import annotations

import pytest
import torch

from hyco.data.loader import BatchOrder
from hyco.errors import DataError
from hyco.utils.distributed import ProcessInfo, shard


def batches(order: BatchOrder, epoch: int) -> list[list[int]]:
    order.epoch = epoch
    return [b.tolist() for b in order]


@pytest.mark.parametrize("size, global_batch, world", [(12, 8, 2), (10, 4, 2), (9, 6, 3), (16, 4, 4)])
def test_the_ranks_step_k_together_is_one_process_step_k(size, global_batch, world):
    one = BatchOrder(size, global_batch, shuffle=True, seed=5)
    ranks = [BatchOrder(size, global_batch, shuffle=True, seed=5, ranks=ProcessInfo(r, world)) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(one)  # the same number of steps everywhere
    for epoch in range(3):
        single = batches(one, epoch)
        per_rank = [batches(r, epoch) for r in ranks]
        for k, step in enumerate(single):
            together = sorted(i for r in per_rank for i in r[k])
            assert together == sorted(step)  # the same global batch (size divisible by the world size)
            assert len({len(r[k]) for r in per_rank}) == 1  # equal shards
    assert batches(ranks[0], 0) != batches(ranks[0], 1)  # reshuffled every epoch


def test_shards_are_padded_to_equal_sizes_and_cover_everything():
    order = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    shards = [shard(order, ProcessInfo(r, 3)) for r in range(3)]
    assert [s.numel() for s in shards] == [3, 3, 3]
    assert set(torch.cat(shards).tolist()) == set(range(7))  # two windows seen twice (wrapped), as torch pads
    assert torch.equal(torch.cat(shards).sort().values, torch.cat([order, order[:2]]).sort().values)


def test_block_shuffle_is_kept_under_sharding():
    """With a simulation cache smaller than the data, windows of a block of simulations stay together."""
    one = BatchOrder(24, 8, shuffle=True, seed=1, windows_per_sim=4, sims_per_block=2)
    rank = BatchOrder(24, 8, shuffle=True, seed=1, windows_per_sim=4, sims_per_block=2, ranks=ProcessInfo(1, 2))
    for whole, part in zip(batches(one, 0), batches(rank, 0)):  # a global batch of 8 = one block of 2 simulations
        assert set(part) <= set(whole) and len(part) == 4
        assert len({i // 4 for i in whole}) == 2


def test_more_ranks_than_windows_is_refused_in_one_line():
    with pytest.raises(DataError, match=r"^3 window\(s\) cannot be shared by 4 ranks: lower --nproc_per_node to at "
                                        r"most 3"):
        BatchOrder(3, 2, shuffle=True, seed=0, ranks=ProcessInfo(0, 4))
