"""Batches of windows for the trainers: seeded shuffling, vectorised fetch, device transfer.

A loader is re-iterable; each pass is one epoch with a new order drawn from (seed, epoch), so a run is
reproducible and a resumed run can continue the sequence by restoring `epoch`.

Shuffling: when the dataset's simulation cache holds every simulation, the order is a uniform
permutation of all windows. When it holds fewer (a dataset larger than `max_cached_sims`), a uniform
permutation would touch a different set of simulations in every batch and read each one from disk
many times per epoch; instead the simulations are shuffled into blocks of half the cache size and the
windows are shuffled within each block (block shuffling, as with sharded datasets), so every
simulation is read about once per epoch while batches still mix windows of many simulations.

Under torchrun the epoch's order (block shuffle included) is drawn identically on every rank and cut into
batches of `batch_size` windows, the GLOBAL batch; each batch is dealt round robin among the ranks
(`hyco.utils.distributed.rank_parts`). Step k of all ranks together trains on exactly the windows of step k
of one process: nothing is padded (torch's DistributedSampler repeats windows to even the shards out) or
dropped, every rank takes the same number of steps, and a rank's part of a batch is empty where the batch
holds fewer windows than there are ranks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from hyco.data.batch import Batch
from hyco.data.windows import WindowDataset
from hyco.errors import DataError
from hyco.utils.distributed import ProcessInfo, check_shareable, process_info, rank_parts
from hyco.utils.seed import seeded_generator
from hyco.utils.threads import lend_to_workers


class BatchOrder(Sampler):
    """Tensors of window indices, one per batch, reshuffled each epoch from (seed, epoch).

    With `windows_per_sim` and `sims_per_block` set, the shuffle is block-wise over simulations (see the
    module docstring); otherwise it is a uniform permutation.
    """

    def __init__(self, size: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False,
                 windows_per_sim: int | None = None, sims_per_block: int | None = None,
                 order_fn: Callable[[torch.Generator], torch.Tensor] | None = None, ranks: ProcessInfo | None = None):
        self.ranks = ranks or ProcessInfo(0, 1)  # this process's share of the order (one process: all of it)
        check_shareable(size, self.ranks)
        if self.ranks.world_size > 1 and batch_size < self.ranks.world_size:
            raise DataError(f"a global batch of {batch_size} window(s) cannot be shared by {self.ranks.world_size} "
                            f"ranks: raise trainer.synthetic.batch_size to at least {self.ranks.world_size} or lower "
                            "--nproc_per_node")
        # the GLOBAL batch: under torchrun each rank takes its round-robin part of every batch
        self.size, self.batch_size, self.shuffle, self.seed, self.drop_last = size, batch_size, shuffle, seed, drop_last
        self.windows_per_sim, self.sims_per_block = windows_per_sim, sims_per_block
        self.order_fn = order_fn  # a dataset's own locality-aware shuffle (e.g. generated chunks kept together)
        self.epoch = 0

    def __len__(self) -> int:
        """Steps per epoch, the same on every rank."""
        return self.size // self.batch_size if self.drop_last else math.ceil(self.size / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        generator = seeded_generator(self.seed, epoch)
        if self.order_fn is not None:  # a dataset's own order, or None when it has no preference
            order = self.order_fn(generator)
            if order is not None:
                return order
        if not self.sims_per_block or not self.windows_per_sim:
            return torch.randperm(self.size, generator=generator)
        per_sim = self.windows_per_sim
        sims = torch.randperm(self.size // per_sim, generator=generator)
        blocks = []
        for block in sims.split(self.sims_per_block):
            windows = (block[:, None] * per_sim + torch.arange(per_sim)).reshape(-1)
            blocks.append(windows[torch.randperm(windows.numel(), generator=generator)])
        return torch.cat(blocks)

    def __iter__(self) -> Iterator[torch.Tensor]:
        parts = rank_parts(self.order(self.epoch), self.batch_size, self.ranks)
        self.epoch += 1
        yield from parts[: len(self)]


class WindowLoader:
    """Iterable of `Batch`es of the dataset's windows on `device`."""

    def __init__(self, dataset: WindowDataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                 device: torch.device | str = "cpu", drop_last: bool = False, num_workers: int = 0,
                 ranks: ProcessInfo | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.device = torch.device(device)
        # A dataset may define its own shuffle (`epoch_order(generator)`); one with a simulation cache smaller
        # than its data is block-shuffled; any other is shuffled uniformly.
        cache = getattr(dataset, "cache", None)
        blocks = cache is not None and cache.capacity < cache.num_sims and num_workers == 0
        self.order = BatchOrder(len(dataset), batch_size, shuffle, seed, drop_last,
                                windows_per_sim=dataset.windows_per_sim if blocks else None,
                                sims_per_block=max(1, cache.capacity // 2) if blocks else None,
                                order_fn=getattr(dataset, "epoch_order", None),
                                ranks=process_info() if ranks is None else ranks)
        self.pin = self.device.type == "cuda"
        self.num_workers = num_workers

    @property
    def epoch(self) -> int:
        return self.order.epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self.order.epoch = int(value)

    def __len__(self) -> int:
        return len(self.order)

    def _batches(self) -> Iterator[Batch]:
        if self.num_workers == 0:
            parts = list(self.order)
            # the epoch's batches are known: the simulations they need are read ahead (hyco.data.sim_cache)
            planned = hasattr(self.dataset, "read_ahead") and self.dataset.read_ahead(parts)
            try:
                for indices in parts:
                    yield self.dataset.batch(indices)
            finally:
                if planned:
                    self.dataset.stop_read_ahead()
            return
        # Workers each hold their own simulation cache (memory = workers x max_cached_sims).
        loader = DataLoader(self.dataset, sampler=self.order, batch_size=None, num_workers=self.num_workers,
                            pin_memory=self.pin, persistent_workers=False)
        with lend_to_workers(self.num_workers):  # the workers' threads come out of this process's budget
            yield from loader

    def __iter__(self) -> Iterator[Batch]:
        for batch in self._batches():
            if self.device.type == "cpu":
                yield batch
            elif self.pin:
                yield batch.pin_memory().to(self.device, non_blocking=True)
            else:
                yield batch.to(self.device)


def make_loader(dataset: WindowDataset, batch_size: int, shuffle: bool = True, seed: int = 0,
                device: torch.device | str = "cpu", drop_last: bool = False, num_workers: int = 0) -> WindowLoader:
    """A re-iterable loader of batched windows; pinned host memory and async copies when `device` is CUDA.
    Under torchrun, this rank's round-robin part of every global batch of `batch_size` (see the module docstring)."""
    return WindowLoader(dataset, batch_size, shuffle, seed, device, drop_last, num_workers)
