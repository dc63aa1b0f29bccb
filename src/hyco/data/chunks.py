"""Model-made data kept within a memory budget: produced in chunks, stored by one of three strategies.

HYCO's generated windows and the completed input states of sparse observations are both made by a model
from real data, chunk by chunk. Where the chunks live depends on their size against a budget:

- memory (estimated bytes < budget / 2): tensors in RAM;
- cache (< budget): one file per chunk under `<cache_dir>/generated/<kind>/cycle_NNN/`, a small LRU of
  chunks in RAM;
- on_the_fly (>= budget): nothing is stored; a chunk is produced again when it is needed.

All three produce the same chunks from the same producer, so they give identical data.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from hyco.utils.distributed import all_gather_objects, process_info

log = logging.getLogger(__name__)

STRATEGIES = ("memory", "cache", "on_the_fly")
Chunk = tuple[torch.Tensor, ...]
ChunkProducer = Callable[[int], Chunk]


def estimate_bytes(count: int, frames: int, num_channels: int, spatial_shape: Sequence[int],
                   itemsize: int = 4) -> int:
    """Bytes of `count` items of `frames` frames of `num_channels` x `spatial_shape` values."""
    values = num_channels
    for size in spatial_shape:
        values *= int(size)
    return count * frames * values * itemsize


def choose_strategy(estimated_bytes: int, memory_budget_gb: float, override: str = "auto") -> str:
    if override != "auto":
        if override not in STRATEGIES:
            raise ValueError(f"storage strategy: expected auto or one of {STRATEGIES}, got {override!r}")
        return override
    budget = memory_budget_gb * 2**30
    if estimated_bytes < budget / 2:
        return "memory"
    if estimated_bytes < budget:
        return "cache"
    return "on_the_fly"


class CacheManager:
    """Owns `<cache_dir>/generated/<kind>/cycle_NNN/`: creates, measures, removes."""

    KINDS = ("physical_preds", "synthetic_preds", "completion")

    def __init__(self, cache_dir: str | Path):
        ranks = process_info()  # under torchrun each rank stores its own chunks, within its own budget
        self.root = Path(cache_dir) / "generated" / (f"rank{ranks.rank}" if ranks.world_size > 1 else "")
        self.peak_bytes = 0
        self.files_written = 0

    def cycle_dir(self, kind: str, cycle: int) -> Path:
        if kind not in self.KINDS:
            raise ValueError(f"cache kind: expected one of {self.KINDS}, got {kind!r}")
        path = self.root / kind / f"cycle_{cycle:03d}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def usage_bytes(self) -> int:
        if not self.root.exists():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def note_write(self) -> None:
        self.files_written += 1
        self.peak_bytes = max(self.peak_bytes, self.usage_bytes())

    def remove(self, kind: str, cycle: int) -> None:
        """Remove one kind's directory of one cycle, and the parents it leaves empty."""
        path = self.root / kind / f"cycle_{cycle:03d}"
        if path.exists():
            shutil.rmtree(path)
        for parent in (self.root / kind, self.root):
            if parent.exists() and not any(parent.iterdir()):
                parent.rmdir()

    def cleanup_cycle(self, cycle: int) -> None:
        for kind in self.KINDS:
            self.remove(kind, cycle)

    def summary(self) -> dict[str, Any]:
        return {"cache_root": str(self.root), "cache_bytes_now": self.usage_bytes(),
                "cache_peak_bytes": self.peak_bytes, "cache_files_written": self.files_written}

    def log_summary(self) -> None:
        s = self.summary()
        log.info("generated-data cache %s: %.1f MB now, peak %.1f MB, %d chunk files written",
                 s["cache_root"], s["cache_bytes_now"] / 2**20, s["cache_peak_bytes"] / 2**20,
                 s["cache_files_written"])


def _compact(tensor: torch.Tensor) -> torch.Tensor:
    """A CPU tensor that owns exactly its values. Producers often return views (a window's input frame is
    a view of the whole [R+1]-frame window): kept as is, a view holds its whole storage alive in RAM and
    `torch.save` writes all of it, so stored chunks would be larger than `estimate_bytes` says."""
    tensor = tensor.detach().cpu()
    if tensor.untyped_storage().nbytes() > tensor.numel() * tensor.element_size():
        tensor = tensor.clone(memory_format=torch.contiguous_format)
    return tensor


class ChunkStore:
    """`num_chunks` chunks (tuples of tensors) from `producer`, kept by `strategy` (see module docstring).

    `seconds` accumulates the time spent writing/reading cache files ("storage") and producing chunks again
    on the fly ("regeneration"); `seconds_at_creation` is its value once the chunks were first produced.
    """

    def __init__(self, producer: ChunkProducer, num_chunks: int, strategy: str, cache: CacheManager | None = None,
                 kind: str = "physical_preds", cycle: int = 0, lru_chunks: int = 2):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
        if strategy == "cache" and cache is None:
            raise ValueError("the cache strategy needs a CacheManager")
        self.producer, self.num_chunks, self.strategy = producer, int(num_chunks), strategy
        self.lru_chunks = lru_chunks
        self._chunks: OrderedDict[int, Chunk] = OrderedDict()
        self._files: list[Path] = []
        self._cache, self._kind, self._cycle = cache, kind, cycle
        self.seconds = {"storage": 0.0, "regeneration": 0.0}
        if strategy == "memory":
            for k, chunk in self._produce_all():
                self._chunks[k] = chunk
        elif strategy == "cache":
            directory = cache.cycle_dir(kind, cycle)
            for k, chunk in self._produce_all():
                path = directory / f"chunk_{k:05d}.pt"
                start = time.perf_counter()
                torch.save(list(chunk), path)
                cache.note_write()
                self.seconds["storage"] += time.perf_counter() - start
                self._files.append(path)
        self.seconds_at_creation = dict(self.seconds)

    def _produce(self, k: int) -> Chunk:
        return tuple(_compact(t) for t in self.producer(k))

    def _produce_all(self) -> Iterator[tuple[int, Chunk]]:
        """Every chunk, in order. Under torchrun chunk k is produced by rank k mod W and shared with every rank
        (one all-gather per round of W chunks): the work is sharded, and all ranks hold the same chunks, the
        ones one process makes (the `on_the_fly` strategy makes the chunks a rank reads, when it reads them)."""
        ranks = process_info()
        if not ranks.parallel:
            yield from ((k, self._produce(k)) for k in range(self.num_chunks))
            return
        for first in range(0, self.num_chunks, ranks.world_size):
            k = first + ranks.rank
            mine = self._produce(k) if k < self.num_chunks else None
            for offset, chunk in enumerate(all_gather_objects(mine)):
                if chunk is not None:
                    yield first + offset, chunk

    def chunk(self, k: int) -> Chunk:
        if k in self._chunks:
            self._chunks.move_to_end(k)
            return self._chunks[k]
        start = time.perf_counter()
        if self.strategy == "cache":
            chunk = tuple(torch.load(self._files[k], weights_only=True))
            self.seconds["storage"] += time.perf_counter() - start
        else:
            chunk = self._produce(k)
            self.seconds["regeneration"] += time.perf_counter() - start
        self._chunks[k] = chunk
        while len(self._chunks) > self.lru_chunks:
            self._chunks.popitem(last=False)
        return chunk

    def close(self) -> None:
        """Drop the chunks and remove this store's cache files."""
        self._chunks.clear()
        if self._files and self._cache is not None:
            self._cache.remove(self._kind, self._cycle)
        self._files = []
