"""Generated training data for HYCO: count-based augmentation, interaction regions, adaptive storage.

Per cycle, one model's predictions become extra training windows for the other. Alpha sizes the work:
`int(alpha * num_real)` generated windows per model and cycle. What a generated window is worth is NOT
set by the count: each window carries its interaction region (the values where the partner's prediction
is a target: by default the ghost points, the complement of the real window's observation mask) and the
loss term it belongs to, and the loss (hyco.training.loss) averages real and generated values in two
separately normalised terms with their own weights. Where the windows live (memory, a per-cycle disk
cache, re-generated on the fly) follows hyco.data.chunks.

Batches of a dataset that mixes both are 4-tuples `(inputs, targets, masks, terms)`: `masks` broadcast to
`[B, R, 1|C, *space]`, `terms` `[B]` the loss term of each window (`DATA` = 0 for real windows,
`INTERACTION` = 1 for generated ones).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from hyco.data.chunks import STRATEGIES, CacheManager, ChunkStore, choose_strategy, estimate_bytes
from hyco.training.loss import DATA, INTERACTION, with_terms

Batch = tuple[torch.Tensor, ...]
# chunk index -> (inputs [n, C, *s], targets [n, R, C, *s][, interaction masks [n, R, 1|C, *s]])
ChunkProducer = Callable[[int], tuple[torch.Tensor, ...]]

__all__ = ["STRATEGIES", "AugmentedDataset", "CacheManager", "GeneratedWindows", "check_balance", "choose_strategy",
           "estimate_bytes", "num_generated", "with_terms"]


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

    A chunk is `(inputs, targets)` (the interaction region is then every value) or `(inputs, targets,
    masks)` with the interaction region of each window. `batch(indices)` returns `(inputs, targets,
    masks, terms)` with every window in the INTERACTION term; `seconds`/`seconds_at_creation` show what
    the storage strategy cost (see `ChunkStore`).
    """

    def __init__(self, producer: ChunkProducer, count: int, chunk_size: int, strategy: str,
                 cache: CacheManager | None = None, kind: str = "physical_preds", cycle: int = 0, lru_chunks: int = 2):
        self.count, self.chunk_size = count, max(1, chunk_size)
        self.num_chunks = -(-count // self.chunk_size) if count else 0
        self.strategy = strategy
        self.lru_chunks = lru_chunks
        self._store = ChunkStore(self._checked(producer), self.num_chunks, strategy, cache=cache, kind=kind,
                                 cycle=cycle, lru_chunks=lru_chunks)

    def _checked(self, producer: ChunkProducer) -> ChunkProducer:
        def produce(k: int) -> tuple[torch.Tensor, ...]:
            chunk = producer(k)
            expected = min(self.chunk_size, self.count - k * self.chunk_size)
            if any(t.shape[0] != expected for t in chunk):
                raise RuntimeError(f"generated chunk {k}: expected {expected} windows, got {chunk[0].shape[0]}")
            if len(chunk) > 2:  # interaction regions are 0/1: one byte each
                chunk = (*chunk[:2], chunk[2].to(torch.bool))
            return chunk
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
        out: list[torch.Tensor] | None = None
        for k in torch.unique(chunk_of).tolist():
            rows = (chunk_of == k).nonzero().squeeze(1)
            chunk = self._store.chunk(k)
            local = index[rows] - k * self.chunk_size
            if out is None:
                out = [t.new_empty((index.numel(), *t.shape[1:])) for t in chunk]
            for target, values in zip(out, chunk):
                target[rows] = values[local]
        if out is None:
            raise IndexError("empty batch")
        inputs, targets = out[0], out[1]
        masks = out[2].to(targets.dtype) if len(out) > 2 else torch.ones_like(targets[:, :, :1])
        return inputs, targets, masks, torch.full((index.numel(),), INTERACTION, dtype=torch.long)

    def __getitem__(self, index: int) -> Batch:
        return tuple(t[0] for t in self.batch([int(index)]))

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
    """Real windows (the DATA term) followed by generated ones (the INTERACTION term); 4-tuple batches."""

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
        if bool(is_real.any()):
            rows = is_real.nonzero().squeeze(1)
            parts.append((rows, with_terms(tuple(self.real.batch(index[rows])), DATA)))
        if bool((~is_real).any()):
            rows = (~is_real).nonzero().squeeze(1)
            parts.append((rows, self.generated.batch(index[rows] - self.num_real)))
        if len(parts) == 1:
            return parts[0][1]
        first = parts[0][1]
        channels = max(b[2].shape[2] for _, b in parts)  # masks of 1 channel and of C channels mix
        out = [t.new_empty((index.numel(), *t.shape[1:])) for t in first]
        out[2] = first[2].new_empty((index.numel(), first[2].shape[1], channels, *first[2].shape[3:]))
        for rows, batch in parts:
            for target, values in zip(out, batch):
                target[rows] = values.to(target.dtype)
        return tuple(out)

    def __getitem__(self, index: int) -> Batch:
        return tuple(t[0] for t in self.batch([int(index)]))

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
