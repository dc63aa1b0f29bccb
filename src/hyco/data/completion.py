"""Complete input states that are only partly observed, from a model's prediction (direct insertion).

With ``observation.states=initial`` a state after frame 0 is known only where observed; a window starting at
frame t > 0 still needs a complete input state. This module fills it in by the simplest honest data
assimilation, direct insertion: starting from frame 0 (known in full, or with ``observation.initial=observed``
its hidden part already filled from its observed values, hyco.data.inpaint), a model steps the state forward one
frame at a time, and after every step the observed values of the new frame replace the predicted ones:

    s_0 = y_0,    s_t = known_t * y_t + (1 - known_t) * step(s_{t-1})

so the completed states agree with every observation and are the model's best guess elsewhere. Which model
steps (the physical one, the network, or a blend of both in HYCO) is the caller's choice; the completion
only reads what the dataset says is known (the rest of the slab is erased on load). Completed trajectories
are made in chunks of simulations and kept within a memory budget by the storage strategies of
hyco.data.chunks; `refresh` makes them anew from the model's current state.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import torch

from hyco.data.chunks import CacheManager, ChunkStore, choose_strategy, estimate_bytes

log = logging.getLogger(__name__)

StepFn = Callable[[torch.Tensor], torch.Tensor]  # state [B, C, *space] -> next state [B, C, *space]


def complete_trajectories(observed: torch.Tensor, known: torch.Tensor, step: StepFn) -> torch.Tensor:
    """Direct insertion over whole trajectories: `observed` [n, T, C, *space] (unknown values arbitrary),
    `known` [T, 1|C, *space] bool; returns the completed trajectories (frame 0 as observed)."""
    out = observed.clone()
    state = out[:, 0]
    with torch.no_grad():
        for t in range(1, observed.shape[1]):
            predicted = step(state).to(out.dtype)
            state = torch.where(known[t], observed[:, t], predicted)
            out[:, t] = state
    return out


class StateCompletion:
    """Completed input states of one split's windows (`dataset`, a WindowDataset with hidden states).

    `refresh(step)` completes every trajectory with `step` (a frozen model: on-the-fly storage calls it
    again later); `states(sims, starts)` returns the completed input states of windows. Attach it to the
    dataset with `dataset.attach_completion(completion)`.
    """

    def __init__(self, dataset, memory_budget_gb: float = 1.0, strategy: str = "auto",
                 cache: CacheManager | None = None, sims_per_chunk: int = 16):
        if dataset.observation is None or dataset.observation.known is None:
            raise ValueError("state completion needs a dataset whose states are partly hidden (states=initial)")
        self.dataset = dataset
        self.known = dataset.observation.known
        self.num_sims = dataset.num_sims
        self.sims_per_chunk = max(1, min(int(sims_per_chunk), dataset.cache.capacity, self.num_sims))
        self.num_chunks = math.ceil(self.num_sims / self.sims_per_chunk)
        self.estimated_bytes = estimate_bytes(self.num_sims, dataset.num_frames, dataset.num_channels,
                                              dataset.spatial_shape)
        self.strategy = choose_strategy(self.estimated_bytes, memory_budget_gb, strategy)
        if self.strategy == "cache" and cache is None:
            raise ValueError("the cache strategy needs a CacheManager")
        self.cache = cache
        self.refreshes = 0
        self.seconds = 0.0  # spent completing (first production) over all refreshes
        self._store: ChunkStore | None = None

    def refresh(self, step: StepFn) -> float:
        """Complete every trajectory anew with `step`; returns the seconds it took."""
        start = time.perf_counter()
        self.close()
        known, dataset, per_chunk = self.known, self.dataset, self.sims_per_chunk

        def produce(k: int) -> tuple[torch.Tensor]:
            sims = torch.arange(k * per_chunk, min((k + 1) * per_chunk, self.num_sims))
            return (complete_trajectories(dataset.observed_trajectories(sims), known, step),)

        self._store = ChunkStore(produce, self.num_chunks, self.strategy, cache=self.cache, kind="completion",
                                 cycle=self.refreshes)
        self.refreshes += 1
        seconds = time.perf_counter() - start
        self.seconds += seconds
        log.debug("completed %d trajectories in %.2f s (storage %s)", self.num_sims, seconds, self.strategy)
        return seconds

    @property
    def ready(self) -> bool:
        return self._store is not None

    def states(self, sims: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """Completed states `[B, C, *space]` at frames `starts` of simulations `sims`."""
        if self._store is None:
            raise RuntimeError("StateCompletion.states before the first refresh")
        sims = torch.as_tensor(sims, dtype=torch.long)
        starts = torch.as_tensor(starts, dtype=torch.long)
        chunk_of = sims // self.sims_per_chunk
        out = None
        for k in torch.unique(chunk_of).tolist():
            rows = (chunk_of == k).nonzero().squeeze(1)
            (trajectories,) = self._store.chunk(k)
            values = trajectories[sims[rows] - k * self.sims_per_chunk, starts[rows]]
            if out is None:
                out = values.new_empty((sims.numel(), *values.shape[1:]))
            out[rows] = values
        return out

    def trajectories(self) -> torch.Tensor:
        """All completed trajectories `[N, T, C, *space]` (small data, figures and tests)."""
        return torch.cat([self._store.chunk(k)[0] for k in range(self.num_chunks)])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
