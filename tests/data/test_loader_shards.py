"""The loader under torchrun: a rank's round-robin part of every global batch, computed here for each rank in one
process (no process group needed: the part is a function of rank and world size)."""

from __future__ import annotations

import pytest
import torch

from hyco.data.loader import BatchOrder
from hyco.errors import DataError
from hyco.utils.distributed import ProcessInfo, rank_parts, rank_share


def batches(order: BatchOrder, epoch: int) -> list[list[int]]:
    order.epoch = epoch
    return [b.tolist() for b in order]


@pytest.mark.parametrize("size, global_batch, world", [(12, 8, 2), (10, 4, 2), (9, 6, 3), (16, 4, 4), (10, 4, 3),
                                                       (7, 3, 3), (11, 5, 2)])
def test_the_ranks_step_k_together_is_one_process_step_k(size, global_batch, world):
    one = BatchOrder(size, global_batch, shuffle=True, seed=5)
    ranks = [BatchOrder(size, global_batch, shuffle=True, seed=5, ranks=ProcessInfo(r, world)) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1 and len(ranks[0]) == len(one)  # the same number of steps everywhere
    for epoch in range(3):
        single = batches(one, epoch)
        per_rank = [batches(r, epoch) for r in ranks]
        assert {len(r) for r in per_rank} == {len(single)}
        for k, step in enumerate(single):
            together = [i for r in per_rank for i in r[k]]
            assert sorted(together) == sorted(step)  # the same global batch, each window once, uneven or not
            assert max(len(r[k]) for r in per_rank) - min(len(r[k]) for r in per_rank) <= 1
        assert sorted(i for r in per_rank for b in r for i in b) == list(range(size))  # nothing padded or dropped
    assert batches(ranks[0], 0) != batches(ranks[0], 1)  # reshuffled every epoch


def test_parts_are_dealt_round_robin_without_padding():
    order = torch.randperm(7, generator=torch.Generator().manual_seed(0))
    parts = [rank_parts(order, 4, ProcessInfo(r, 3)) for r in range(3)]
    assert [[p.numel() for p in rank] for rank in parts] == [[2, 1], [1, 1], [1, 1]]
    assert torch.equal(parts[0][0], order[[0, 3]]) and torch.equal(parts[2][1], order[[6]])
    assert sorted(torch.cat([p for rank in parts for p in rank]).tolist()) == list(range(7))
    # the first `count` positions of a global batch: rank r holds positions r, r + W, ...
    assert [rank_share(4, ProcessInfo(r, 3)) for r in range(3)] == [2, 1, 1]
    assert [rank_share(1, ProcessInfo(r, 3)) for r in range(3)] == [1, 0, 0]
    assert rank_share(5, ProcessInfo(0, 1)) == 5


def test_a_last_batch_smaller_than_the_ranks_leaves_some_parts_empty():
    ranks = [BatchOrder(9, 4, shuffle=False, seed=0, ranks=ProcessInfo(r, 3)) for r in range(3)]
    steps = [batches(r, 0) for r in ranks]
    assert [len(s) for s in steps] == [3, 3, 3]
    assert [s[-1] for s in steps] == [[8], [], []]


def test_block_shuffle_is_kept_under_sharding():
    """With a simulation cache smaller than the data, windows of a block of simulations stay together."""
    one = BatchOrder(24, 8, shuffle=True, seed=1, windows_per_sim=4, sims_per_block=2)
    rank = BatchOrder(24, 8, shuffle=True, seed=1, windows_per_sim=4, sims_per_block=2, ranks=ProcessInfo(1, 2))
    for whole, part in zip(batches(one, 0), batches(rank, 0)):  # a global batch of 8 = one block of 2 simulations
        assert set(part) <= set(whole) and len(part) == 4 and part == whole[1::2]
        assert len({i // 4 for i in whole}) == 2


def test_more_ranks_than_windows_is_refused_in_one_line():
    with pytest.raises(DataError, match=r"^3 window\(s\) cannot be shared by 4 ranks: lower --nproc_per_node to at "
                                        r"most 3"):
        BatchOrder(3, 2, shuffle=True, seed=0, ranks=ProcessInfo(0, 4))


def test_a_global_batch_smaller_than_the_ranks_is_refused_in_one_line():
    with pytest.raises(DataError, match=r"^a global batch of 2 window\(s\) cannot be shared by 3 ranks: raise "
                                        r"trainer.synthetic.batch_size to at least 3"):
        BatchOrder(12, 2, shuffle=True, seed=0, ranks=ProcessInfo(0, 3))
