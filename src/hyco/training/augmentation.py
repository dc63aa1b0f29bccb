"""Generated training data for HYCO: count-based augmentation, interaction regions, adaptive storage.

Per cycle, one model's predictions become extra training windows for the other. Alpha sizes the work:
`int(alpha * num_real)` generated windows per model and cycle. What a generated window is worth is NOT
set by the count: each window carries its interaction region (the values where the partner's prediction
is a target: by default the ghost points, the complement of the real window's observation mask) and the
loss term it belongs to, and the loss (hyco.training.loss) averages real and generated values in two
separately normalised terms with their own weights. Where the windows live (memory, a per-cycle disk
cache, re-generated on the fly) follows hyco.data.chunks.

Both make `Batch`es (hyco.data.batch) with an explicit mask and term: the interaction region as the mask of a
generated window, `term` INTERACTION for generated windows and DATA for real ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hyco.data.batch import DATA, INTERACTION, Batch
from hyco.data.chunks import STRATEGIES, CacheManager, ChunkStore, choose_strategy, estimate_bytes

# chunk index -> its windows: inputs [n, C, *s], targets [n, R, C, *s], mask = the interaction region (None: all)
ChunkProducer = Callable[[int], Batch]

__all__ = ["STRATEGIES", "AugmentedDataset", "CacheManager", "GeneratedWindows", "check_balance", "choose_strategy",
           "estimate_bytes", "num_generated"]


def num_generated(num_real: int, alpha: float) -> int:
    """The count rule, in one place: `int(alpha * num_real)`."""
    return int(alpha * num_real)


def check_balance(num_real: int, generated: int, alpha: float) -> None:
    """Fail loudly if a cycle's generated/real ratio is not alpha up to rounding."""
    expected = num_generated(num_real, alpha)
    if generated != expected:
        raise RuntimeError(f"augmentation balance broken: {generated} generated for {num_real} real windows, "
                           f"alpha={alpha} requires {expected}")


class GeneratedWindows:
    """`count` generated windows, produced in fixed chunks of `chunk_size` by `producer`.

    A chunk is a Batch whose mask is the interaction region of each window (None: every value).
    `batch(indices)` returns a Batch with the region as its mask and every window in the INTERACTION term;
    `seconds`/`seconds_at_creation` show what the storage strategy cost (see `ChunkStore`).
    """

    def __init__(self, producer: ChunkProducer, count: int, chunk_size: int, strategy: str,
                 cache: CacheManager | None = None, kind: str = "physical_preds", cycle: int = 0, lru_chunks: int = 2):
        self.count, self.chunk_size = count, max(1, chunk_size)
        self.num_chunks = -(-count // self.chunk_size) if count else 0
        self.strategy = strategy
        self.lru_chunks = lru_chunks
        self._store = ChunkStore(self._checked(producer), self.num_chunks, strategy, cache=cache, kind=kind,
                                 cycle=cycle, lru_chunks=lru_chunks)

    def _checked(self, producer: ChunkProducer) -> Callable[[int], tuple[torch.Tensor, ...]]:
        """The producer as the chunk store keeps chunks: checked, regions as bytes, in the tuple form."""
        def produce(k: int) -> tuple[torch.Tensor, ...]:
            chunk = producer(k)
            expected = min(self.chunk_size, self.count - k * self.chunk_size)
            if any(t.shape[0] != expected for t in chunk.tensors()):
                raise RuntimeError(f"generated chunk {k}: expected {expected} windows, got {chunk.size}")
            if chunk.mask is not None:  # interaction regions are 0/1: one byte each
                chunk = Batch(chunk.inputs, chunk.targets, chunk.mask.to(torch.bool))
            return chunk.tensors()
        return produce

    @property
    def seconds(self) -> dict[str, float]:
        return self._store.seconds

    @property
    def seconds_at_creation(self) -> dict[str, float]:
        return self._store.seconds_at_creation

    def __len__(self) -> int:
        return self.count

    def batch(self, indices: Any) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.count):
            raise IndexError(f"generated window index out of range for {self.count} windows")
        chunk_of = index // self.chunk_size
        parts = []
        for k in torch.unique(chunk_of).tolist():
            rows = (chunk_of == k).nonzero().squeeze(1)
            parts.append((rows, Batch.of(self._store.chunk(k)).rows(index[rows] - k * self.chunk_size)))
        if not parts:  # no window (a rank's part of a batch smaller than the ranks): the form of chunk 0, empty
            if not self.count:
                raise IndexError("empty batch of no generated windows")
            parts.append((index, Batch.of(self._store.chunk(0)).head(0)))
        windows = Batch.placed(parts, index.numel())
        region = windows.full_mask() if windows.mask is None else windows.mask.to(windows.targets.dtype)
        return Batch(windows.inputs, windows.targets, region,
                     torch.full((index.numel(),), INTERACTION, dtype=torch.long))

    def __getitem__(self, index: int) -> Batch:
        return self.batch([int(index)])

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """A shuffle that keeps each chunk's windows together (each chunk read or made once per epoch)."""
        parts = []
        for k in torch.randperm(self.num_chunks, generator=generator).tolist():
            rows = torch.arange(k * self.chunk_size, min((k + 1) * self.chunk_size, self.count))
            parts.append(rows[torch.randperm(rows.numel(), generator=generator)])
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)

    def materialize(self) -> Batch:
        """All windows at once (small data and tests)."""
        return self.batch(torch.arange(self.count))

    def close(self) -> None:
        self._store.close()


class AugmentedDataset:
    """Real windows (the DATA term) followed by generated ones (the INTERACTION term); batches with an explicit
    mask and term."""

    def __init__(self, real: Any, generated: GeneratedWindows | None):
        self.real = real
        self.generated = generated
        self.num_real = len(real)
        self.num_generated = len(generated) if generated is not None else 0

    def __len__(self) -> int:
        return self.num_real + self.num_generated

    def batch(self, indices: Any) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        is_real = index < self.num_real
        parts: list[tuple[torch.Tensor, Batch]] = []
        if not index.numel():  # a rank's empty part of a batch: no window, in the form of the real ones
            return self.real.batch(index).with_defaults(DATA)
        if bool(is_real.any()):
            rows = is_real.nonzero().squeeze(1)
            parts.append((rows, self.real.batch(index[rows]).with_defaults(DATA)))
        if bool((~is_real).any()):
            rows = (~is_real).nonzero().squeeze(1)
            parts.append((rows, self.generated.batch(index[rows] - self.num_real)))
        if len(parts) == 1:
            return parts[0][1]
        return Batch.placed(parts, index.numel())  # masks of 1 channel and of C channels mix

    def __getitem__(self, index: int) -> Batch:
        return self.batch([int(index)])

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch's shuffle that keeps generated chunks together.

        The generated chunks are shuffled and taken `lru_chunks - 1` at a time (so a batch straddling two
        blocks still finds its chunks in the LRU); each such block is mixed with an equal share of the
        (uniformly shuffled) real windows and shuffled. Batches still mix real and generated windows, but
        each chunk is needed during one stretch of the epoch only, so the cache and on-the-fly strategies
        load or re-generate each chunk about once per epoch instead of for almost every batch. Used for
        every strategy, so all three see the same order.
        """
        real = torch.randperm(self.num_real, generator=generator)
        gen = self.generated
        if gen is None or self.num_generated == 0:
            return real
        blocks = torch.randperm(gen.num_chunks, generator=generator).split(max(1, gen.lru_chunks - 1))
        parts = []
        for block, real_part in zip(blocks, real.tensor_split(len(blocks))):
            generated = torch.cat([torch.arange(k * gen.chunk_size, min((k + 1) * gen.chunk_size, gen.count))
                                   for k in block.tolist()]) + self.num_real
            mixed = torch.cat([real_part, generated])
            parts.append(mixed[torch.randperm(mixed.numel(), generator=generator)])
        return torch.cat(parts)
