"""Generated training data for HYCO: count-based augmentation with adaptive storage.

Per cycle, one model's predictions become extra training windows for the other. Alpha acts ONLY on the
count (`int(alpha * num_real)` generated windows, each weighted like a real one), never as a loss weight.
Where the generated windows live depends on their size against `memory_budget_gb`:

| strategy    | when (estimated bytes)  | storage                                                     |
|-------------|-------------------------|-------------------------------------------------------------|
| memory      | < budget / 2            | tensors in RAM                                              |
| cache       | < budget                | one file per chunk under `<cache_dir>/generated/<kind>/cycle_NNN/`, |
|             |                         | a small LRU of chunks in RAM                                |
| on_the_fly  | >= budget               | nothing: a chunk is re-generated when a batch needs it      |

All three generate the same chunks from the same initial states, so they give identical windows.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

Batch = tuple[torch.Tensor, ...]
# chunk index -> (inputs [n, C, *s], targets [n, R, C, *s])
ChunkProducer = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
STRATEGIES = ("memory", "cache", "on_the_fly")


def num_generated(num_real: int, alpha: float) -> int:
    """The count rule, in one place: `int(alpha * num_real)`."""
    return int(alpha * num_real)


def check_balance(num_real: int, generated: int, alpha: float) -> None:
    """Fail loudly if a cycle's generated/real ratio is not alpha up to rounding."""
    expected = num_generated(num_real, alpha)
    if generated != expected:
        raise RuntimeError(f"augmentation balance broken: {generated} generated for {num_real} real windows, "
                           f"alpha={alpha} requires {expected}")


def estimate_bytes(count: int, rollout_steps: int, num_channels: int, spatial_shape: Sequence[int],
                   itemsize: int = 4) -> int:
    values = num_channels
    for size in spatial_shape:
        values *= int(size)
    return count * (rollout_steps + 1) * values * itemsize


def choose_strategy(estimated_bytes: int, memory_budget_gb: float, override: str = "auto") -> str:
    if override != "auto":
        if override not in STRATEGIES:
            raise ValueError(f"augmentation strategy: expected auto or one of {STRATEGIES}, got {override!r}")
        return override
    budget = memory_budget_gb * 2**30
    if estimated_bytes < budget / 2:
        return "memory"
    if estimated_bytes < budget:
        return "cache"
    return "on_the_fly"


class CacheManager:
    """Owns `<cache_dir>/generated/{physical,synthetic}_preds/cycle_NNN/`: creates, measures, removes."""

    KINDS = ("physical_preds", "synthetic_preds")

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir) / "generated"
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

    def cleanup_cycle(self, cycle: int) -> None:
        for kind in self.KINDS:
            path = self.root / kind / f"cycle_{cycle:03d}"
            if path.exists():
                shutil.rmtree(path)
            parent = self.root / kind
            if parent.exists() and not any(parent.iterdir()):
                parent.rmdir()
        if self.root.exists() and not any(self.root.iterdir()):
            self.root.rmdir()

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


class GeneratedWindows:
    """`count` generated windows, produced in fixed chunks of `chunk_size` by `producer`.

    `self[i]` is the 2-tuple `(input, target)`: generated fields are complete, so no mask, and no
    weight either (alpha is a count). `batch(indices)` returns batched tensors; with `weight` != 1 a
    constant weight mask is attached, which `masked_mse` turns into a relative weight.
    `seconds` accumulates the time spent writing/reading cache files ("storage") and re-generating
    chunks on the fly ("regeneration"), so a HYCO cycle can show what its storage strategy costs;
    `seconds_at_creation` is its value once the windows were first produced.
    """

    def __init__(self, producer: ChunkProducer, count: int, chunk_size: int, strategy: str,
                 cache: CacheManager | None = None, kind: str = "physical_preds", cycle: int = 0,
                 weight: float = 1.0, lru_chunks: int = 2):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: expected one of {STRATEGIES}, got {strategy!r}")
        if strategy == "cache" and cache is None:
            raise ValueError("the cache strategy needs a CacheManager")
        self.producer, self.count, self.chunk_size, self.strategy = producer, count, max(1, chunk_size), strategy
        self.weight = float(weight)
        self.num_chunks = -(-count // self.chunk_size) if count else 0
        self._chunks: OrderedDict[int, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.lru_chunks = lru_chunks
        self._files: list[Path] = []
        self.seconds = {"storage": 0.0, "regeneration": 0.0}
        if strategy == "memory":
            for k in range(self.num_chunks):
                self._chunks[k] = self._produce(k)
        elif strategy == "cache":
            directory = cache.cycle_dir(kind, cycle)
            for k in range(self.num_chunks):
                path = directory / f"chunk_{k:05d}.pt"
                inputs, targets = self._produce(k)
                start = time.perf_counter()
                torch.save({"inputs": inputs, "targets": targets}, path)
                cache.note_write()
                self.seconds["storage"] += time.perf_counter() - start
                self._files.append(path)
        self.seconds_at_creation = dict(self.seconds)

    def _produce(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        inputs, targets = self.producer(k)
        expected = min(self.chunk_size, self.count - k * self.chunk_size)
        if inputs.shape[0] != expected or targets.shape[0] != expected:
            raise RuntimeError(f"generated chunk {k}: expected {expected} windows, got {inputs.shape[0]}")
        return _compact(inputs), _compact(targets)

    def _chunk(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if k in self._chunks:
            self._chunks.move_to_end(k)
            return self._chunks[k]
        start = time.perf_counter()
        if self.strategy == "cache":
            data = torch.load(self._files[k], weights_only=True)
            chunk = (data["inputs"], data["targets"])
            self.seconds["storage"] += time.perf_counter() - start
        else:
            chunk = self._produce(k)
            self.seconds["regeneration"] += time.perf_counter() - start
        self._chunks[k] = chunk
        while len(self._chunks) > self.lru_chunks:
            self._chunks.popitem(last=False)
        return chunk

    def __len__(self) -> int:
        return self.count

    def batch(self, indices: Any) -> Batch:
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= self.count):
            raise IndexError(f"generated window index out of range for {self.count} windows")
        chunk_of = index // self.chunk_size
        inputs = targets = None
        for k in torch.unique(chunk_of).tolist():
            rows = (chunk_of == k).nonzero().squeeze(1)
            chunk_inputs, chunk_targets = self._chunk(k)
            local = index[rows] - k * self.chunk_size
            if inputs is None:
                inputs = chunk_inputs.new_empty((index.numel(), *chunk_inputs.shape[1:]))
                targets = chunk_targets.new_empty((index.numel(), *chunk_targets.shape[1:]))
            inputs[rows] = chunk_inputs[local]
            targets[rows] = chunk_targets[local]
        if inputs is None:
            raise IndexError("empty batch")
        if self.weight != 1.0:
            return inputs, targets, torch.full_like(targets[:, :, :1], self.weight)
        return inputs, targets

    def __getitem__(self, index: int) -> Batch:
        return tuple(t[0] for t in self.batch([int(index)]))[:2]

    def materialize(self) -> Batch:
        """All windows at once (small data and tests)."""
        return self.batch(torch.arange(self.count))


class AugmentedDataset:
    """Real windows followed by generated ones; every window counts the same (count-based alpha).

    Real windows may carry observation masks and generated ones do not: in a mixed batch the generated
    windows get an all-ones mask, so one masked loss serves both.
    """

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
            parts.append((rows, tuple(self.real.batch(index[rows]))))
        if bool((~is_real).any()):
            rows = (~is_real).nonzero().squeeze(1)
            parts.append((rows, tuple(self.generated.batch(index[rows] - self.num_real))))
        if len(parts) == 1:
            return parts[0][1]
        with_mask = any(len(b) == 3 for _, b in parts)
        if with_mask:
            parts = [(rows, b if len(b) == 3 else (*b, torch.ones_like(b[1][:, :, :1]))) for rows, b in parts]
        first = parts[0][1]
        out = [t.new_empty((index.numel(), *t.shape[1:])) for t in first]
        for rows, batch in parts:
            for target, values in zip(out, batch):
                target[rows] = values.to(target.dtype)
        return tuple(out)

    def __getitem__(self, index: int) -> Batch:
        if index < self.num_real:
            return self.real[index]
        return self.generated[index - self.num_real]

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """One epoch's shuffle that keeps generated chunks together.

        The generated chunks are shuffled and taken `lru_chunks - 1` at a time (so a batch straddling two
        blocks still finds its chunks in the LRU); each such block is mixed with
        an equal share of the (uniformly shuffled) real windows and shuffled. Batches still mix real and
        generated windows, but each chunk is needed during one stretch of the epoch only, so the cache
        and on-the-fly strategies load or re-generate each chunk about once per epoch instead of for
        almost every batch. Used for every strategy, so all three see the same order.
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
