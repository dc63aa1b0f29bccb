"""Sliding windows over every trajectory of a split: the state at t as input, frames t+1..t+R as targets.

Window i is (simulation i // W, start i % W) with W = T - R windows per simulation, so
``len = sims * (T - R)``, and the tensor view and the PhiFlow field view are indexed alike.

Memory stays bounded whatever the number of simulations: simulations are read from the HDF5 file into a
preallocated slab of ``max_cached_sims`` slots (hyco.data.sim_cache), on demand or read ahead of an epoch's
batches, and the observation noise is added once per load (it is seeded per simulation, so an evicted
simulation comes back identical). A batch is gathered from the slab with one indexing operation: no
per-sample Python.

With ``observation.states=initial`` the slab holds only what is known (see hyco.data.observation: the
unknown values are erased on load), and the input of a window starting after frame 0 comes from an
attached `StateCompletion` (hyco.data.completion): observed values kept, the rest predicted by a model.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from hyco.config.schema import ObservationConfig
from hyco.data.batch import Batch
from hyco.data.observation import Observation
from hyco.data.sim_cache import SimulationCache
from hyco.data.store import TrajectoryStore
from hyco.errors import DataError

log = logging.getLogger(__name__)


class WindowDataset(Dataset):
    """Torch dataset of sliding windows, read as `Batch`es (inputs [B,C,*s], targets [B,R,C,*s], mask [B,R,1|C,*s]).

    `observation` (an ObservationConfig or Observation) turns the windows into what an observer of the
    real system sees: noisy values, and a mask over the targets (see hyco.data.observation). Without it
    the windows are the clean simulated frames. ``dataset.batch(indices)`` (also ``dataset[indices]`` and
    ``dataset.__getitems__(indices)``) is a Batch of those windows; ``dataset[i]`` a Batch of one.
    """

    def __init__(self, store: TrajectoryStore | str | Path, split: str, rollout_steps: int,
                 observation: ObservationConfig | Observation | None = None, max_cached_sims: int = 64,
                 dtype: torch.dtype = torch.float32, from_start: bool = False):
        self.store = store if isinstance(store, TrajectoryStore) else TrajectoryStore(store)
        self.split = split
        self.rollout_steps = int(rollout_steps)
        self.num_sims = self.store.num_sims(split)
        self.num_frames = self.store.num_frames
        if self.rollout_steps < 1 or self.rollout_steps >= self.num_frames:
            raise DataError(f"{self.store.path}: rollout length {rollout_steps} needs 1 <= R <= "
                            f"{self.num_frames - 1} (the dataset stores {self.num_frames} frames per simulation)")
        if isinstance(observation, ObservationConfig):
            observation = Observation.from_store(observation, self.store)
        self.observation = observation
        # from_start: one window per simulation, frames 0..R (a trajectory's first R steps, shot from the
        # known frame 0); else every start frame (sliding windows)
        self.from_start = bool(from_start)
        self.windows_per_sim = 1 if from_start else self.num_frames - self.rollout_steps
        self.dtype = dtype
        self.cache = SimulationCache(self.store, split, max_cached_sims, observation)
        self._offsets = torch.arange(self.rollout_steps + 1)
        self.completion = None  # a StateCompletion, for inputs after frame 0 when states are hidden
        if observation is not None:
            log.debug("%s split %r: %s", self.store.path.name, split, observation.describe())

    @classmethod
    def from_config(cls, cfg: Any, store: TrajectoryStore | str | Path, split: str, rollout_steps: int | None = None,
                    observed: bool = True) -> WindowDataset:
        """The windows a task uses: `cfg.observation` applied when `observed` (the real training/validation
        data as an observer sees them), `data.rollout_steps` unless given, `data.max_cached_sims`."""
        return cls(store, split, cfg.data.rollout_steps if rollout_steps is None else rollout_steps,
                   observation=cfg.observation if observed else None, max_cached_sims=cfg.data.max_cached_sims)

    @property
    def has_mask(self) -> bool:
        return self.observation is not None and self.observation.has_mask

    @property
    def needs_completion(self) -> bool:
        """Windows start after frame 0 whose input states are only partly known."""
        return self.observation is not None and self.observation.hides_states and self.windows_per_sim > 1

    def describe_fit(self) -> str:
        """What a model fitted on these windows sees of each training trajectory, for summaries and the report."""
        frames = self.num_frames - 1
        if self.from_start:
            start = "frame 0" + (" (filled where hidden)" if self.observation is not None
                                 and self.observation.hides_initial else "")
            if self.rollout_steps == frames:
                return f"whole trajectories ({frames} frames) rolled out from {start}"
            return f"the first {self.rollout_steps} of {frames} frames of each trajectory, rolled out from {start}"
        text = f"{self.rollout_steps}-step windows from every frame"
        return text + " (inputs after frame 0 completed by the models)" if self.needs_completion else text

    def attach_completion(self, completion) -> None:
        """Take the inputs of windows starting after frame 0 from `completion` (`states(sims, starts)`)."""
        self.completion = completion

    def observed_trajectories(self, sims: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Whole trajectories `[n, T, C, *space]` of `sims` as observed (noisy; unknown values erased), a
        copy. At most `max_cached_sims` distinct simulations per call."""
        sims = torch.as_tensor(sims, dtype=torch.long).reshape(-1)
        self.cache.ensure(sims.tolist())
        out = self.cache.slab[self.cache.slot_of[sims]]
        return out if self.dtype == torch.float32 else out.to(self.dtype)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        return self.store.spatial_shape

    @property
    def num_channels(self) -> int:
        return self.store.num_channels

    @property
    def dynamic_channels(self) -> list[int]:
        return self.store.dynamic_channels

    def __len__(self) -> int:
        return self.num_sims * self.windows_per_sim

    def locate(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(simulation, start frame) of each window index."""
        return indices // self.windows_per_sim, indices % self.windows_per_sim

    def _as_index(self, indices: Any) -> torch.Tensor:
        index = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        n = len(self)
        if index.numel() and (int(index.min()) < -n or int(index.max()) >= n):
            raise IndexError(f"window index out of range for {n} windows")
        return torch.where(index < 0, index + n, index)

    def batch(self, indices: Any) -> Batch:
        """Windows `indices` as a Batch (a mask when the observation has one; every window in the DATA term)."""
        index = self._as_index(indices)
        sims, starts = self.locate(index)
        if self.cache.holds_all:  # every simulation resident and never evicted: gather directly
            windows = self.cache.slab[self.cache.slot_of[sims][:, None], starts[:, None] + self._offsets]
            return self._finish(windows, sims, starts)
        unique = torch.unique(sims)
        if unique.numel() <= self.cache.capacity:
            windows = self._gather(sims, starts, unique)
        else:  # more distinct simulations than the cache holds: gather in groups that fit
            windows = torch.empty((index.numel(), self.rollout_steps + 1, *self.cache.frame_shape[1:]))
            for group in unique.split(self.cache.capacity):
                rows = torch.isin(sims, group).nonzero().squeeze(1)
                windows[rows] = self._gather(sims[rows], starts[rows], group)
        return self._finish(windows, sims, starts)

    def read_ahead(self, batches: Sequence[torch.Tensor]) -> bool:
        """Read the simulations of these coming batches (window indices, in the order they will be asked for)
        ahead of them, in a background thread (hyco.data.sim_cache); True when it does. Nothing to do when the
        cache holds every simulation, or when completed input states are made again from the windows' own
        simulations while a batch is gathered (the on-the-fly completion strategy)."""
        if self.cache.capacity >= self.num_sims:
            return False
        if self.completion is not None and self.completion.strategy == "on_the_fly":
            return False
        sims = torch.cat([torch.as_tensor(b, dtype=torch.long).reshape(-1) for b in batches]) // self.windows_per_sim
        steps = [torch.unique(part).tolist() for part in sims.split([len(b) for b in batches])]
        return self.cache.plan(steps)

    def stop_read_ahead(self) -> None:
        self.cache.stop_plan()

    def _finish(self, windows: torch.Tensor, sims: torch.Tensor, starts: torch.Tensor) -> Batch:
        if self.dtype != torch.float32:
            windows = windows.to(self.dtype)
        inputs, targets = windows[:, 0], windows[:, 1:]
        if self.observation is not None and self.observation.hides_states and bool((starts > 0).any()):
            if self.completion is None:
                raise RuntimeError(f"{self!r}: windows after frame 0 have partly unknown input states "
                                   "(observation.states=initial); attach a StateCompletion first")
            later = (starts > 0).nonzero().squeeze(1)
            inputs = inputs.clone()
            inputs[later] = self.completion.states(sims[later], starts[later]).to(inputs.dtype)
        if not self.has_mask:
            return Batch(inputs, targets)
        mask = self.observation.window_masks(starts, self.rollout_steps).to(self.dtype)
        if not self.observation.sensors:
            return Batch(inputs, targets, mask)
        index, weight, values = self.observation.window_sensors(self.split, sims, starts, self.rollout_steps)
        return Batch(inputs, targets, mask, sensor_index=index, sensor_weight=weight.to(self.dtype),
                     sensor_values=values.to(self.dtype))

    def _gather(self, sims: torch.Tensor, starts: torch.Tensor, unique: torch.Tensor) -> torch.Tensor:
        self.cache.ensure(unique.tolist())
        slots = self.cache.slot_of[sims]
        return self.cache.slab[slots[:, None], starts[:, None] + self._offsets]  # [B, R+1, C, *s]

    def epoch_order(self, generator: torch.Generator) -> torch.Tensor | None:
        """A completion stored in chunks of simulations (cache or on-the-fly storage) is read or
        re-generated once per chunk and epoch when windows come grouped by chunk; None = the loader's own
        order (a uniform or block shuffle)."""
        if self.completion is None or self.completion.strategy == "memory":
            return None
        per_chunk = self.completion.sims_per_chunk * self.windows_per_sim
        chunks = torch.randperm(self.completion.num_chunks, generator=generator)
        parts = []
        for k in chunks.tolist():
            stop = min(len(self), (k + 1) * per_chunk)
            windows = torch.arange(k * per_chunk, stop)
            parts.append(windows[torch.randperm(windows.numel(), generator=generator)])
        return torch.cat(parts)

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        return self.batch(indices)

    def __getitem__(self, index: Any) -> Batch:
        if isinstance(index, int) or (isinstance(index, torch.Tensor) and index.ndim == 0):
            return self.batch([int(index)])
        return self.batch(index)

    def fields(self, indices: Any, model: Any) -> tuple[Any, ...]:
        """PhiFlow view of the same windows as `batch`: (input Fields, target Fields with a ``time``
        batch dim[, mask]), shaped by `model.templates()` (see hyco.data.field_view)."""
        from hyco.data.field_view import window_fields

        return window_fields(self.batch(indices), model.templates())

    def __repr__(self) -> str:
        return (f"WindowDataset({self.store.path.name!r}, split={self.split!r}, sims={self.num_sims}, "
                f"windows={len(self)}, R={self.rollout_steps}, mask={self.has_mask})")
