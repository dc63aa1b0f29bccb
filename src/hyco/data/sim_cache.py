"""Decoded simulations of one split in a fixed slab of memory, read ahead of the batches that need them.

`SimulationCache` holds at most `capacity` simulations in one preallocated slab `[capacity, T, C, *space]`
(float32, CPU), so memory stays bounded whatever the dataset's size. Two ways to fill it:

- on demand (`ensure`): the simulations a batch needs are read when it asks for them, the least recently used
  ones evicted;
- read ahead (`plan`): when the loader knows an epoch's batches in advance, a background thread reads the
  simulations of the coming batches into slots that no batch before them still needs, while the training
  thread gathers windows from the simulations already there. HDF5 reads release the GIL, so reading and
  training overlap. A batch that asks for anything but the planned simulations ends the plan (the cache then
  works on demand again), and so does an epoch left early.

Either way a slot receives a whole simulation: one chunk-aligned read of `[T, C, *space]` (the store chunks
along time within a simulation), the observation's noise added and its hidden values erased once per load, so
a simulation read again is identical.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch

log = logging.getLogger(__name__)


class SimulationCache:
    """Simulations of `split` of `store` (any reader with `read_simulation(split, index, out)`), `capacity` at a
    time; `observation` (or None) applied on load."""

    def __init__(self, store: Any, split: str, capacity: int, observation: Any = None):
        self.store, self.split, self.observation = store, split, observation
        self.num_sims = store.num_sims(split)
        self.capacity = max(1, min(int(capacity), self.num_sims))
        self.frame_shape = (store.num_frames, store.num_channels, *store.spatial_shape)
        self.slab: torch.Tensor | None = None  # allocated on first use
        self.slot_of = torch.full((self.num_sims,), -1, dtype=torch.long)
        self._read_before = [False] * self.num_sims  # a simulation read again skips its checksums (store permitting)
        self._lru: OrderedDict[int, int] = OrderedDict()  # sim -> slot, least recent first
        self.loads = 0
        self.hits = 0
        self._plan: ReadAhead | None = None

    @property
    def holds_all(self) -> bool:
        """Every simulation of the split is loaded (then nothing is ever evicted)."""
        return len(self._lru) == self.num_sims and self.capacity == self.num_sims

    @property
    def resident(self) -> int:
        return len(self._lru)

    @property
    def nbytes(self) -> int:
        return 0 if self.slab is None else self.slab.element_size() * self.slab.nelement()

    def _allocate(self) -> None:
        if self.slab is None:
            self.slab = torch.empty((self.capacity, *self.frame_shape), dtype=torch.float32)

    # ------------------------------------------------------------------ on demand
    def ensure(self, sims: Sequence[int]) -> None:
        """Make every simulation in `sims` (at most `capacity` distinct ones) resident."""
        if self._plan is not None:
            if self._plan.serve(sims):
                return
            self.stop_plan()  # an access the plan did not foresee: on demand from here
        self._allocate()
        if len(sims) > self.capacity:
            raise ValueError(f"{len(sims)} simulations requested at once, cache holds {self.capacity}")
        full_cache = self.capacity == self.num_sims  # nothing is ever evicted: skip recency bookkeeping
        missing = []
        for sim in sims:  # first mark the hits most recent, so loading the misses cannot evict them
            if sim in self._lru:
                self.hits += 1
                if not full_cache:
                    self._lru.move_to_end(sim)
            else:
                missing.append(sim)
        for sim in missing:
            if len(self._lru) < self.capacity:
                slot = len(self._lru)
            else:
                evicted, slot = self._lru.popitem(last=False)
                self.slot_of[evicted] = -1
            self._load(sim, slot)
            self._lru[sim] = slot
            self.slot_of[sim] = slot

    def _load(self, sim: int, slot: int) -> None:
        target = self.slab[slot]
        reread = getattr(self.store, "reread_simulation", None)
        if self._read_before[sim] and reread is not None:  # its checksums were checked at its first read
            reread(self.split, sim, out=target.numpy())
        else:
            self.store.read_simulation(self.split, sim, out=target.numpy())
            self._read_before[sim] = True
        if self.observation is not None:
            self.observation.read_sensors(target, self.split, sim)  # point sensors read the clean state first
            self.observation.add_noise_(target, self.split, sim)
            self.observation.hide_(target)
            self.observation.fill_initial_(target, self.split, sim)  # initial=observed: frame 0's hidden part
        self.loads += 1

    # ------------------------------------------------------------------ read ahead
    def plan(self, steps: Sequence[Sequence[int]]) -> bool:
        """Read the simulations of `steps` (the distinct simulations of each coming batch, in order) ahead of
        their `ensure` calls; False (and nothing planned) when a step needs more simulations than the cache
        holds, or the cache holds every simulation anyway."""
        self.stop_plan()
        if self.capacity >= self.num_sims or not steps or max(len(s) for s in steps) > self.capacity:
            return False
        self._allocate()
        self._plan = ReadAhead(self, [sorted(int(s) for s in step) for step in steps])  # as `ensure` is called
        return True

    def stop_plan(self) -> None:
        """End the read-ahead (its thread finishes the read it is in); what it loaded stays resident."""
        plan, self._plan = self._plan, None
        if plan is not None:
            plan.stop()


class ReadAhead:
    """A background thread that loads the planned simulations, step by step, into slots no step between the
    consumer's and the one it prepares still needs (the slot whose next use is farthest is reused first)."""

    def __init__(self, cache: SimulationCache, steps: list[list[int]]):
        self.cache, self.steps = cache, steps
        self.uses: dict[int, list[int]] = {}  # sim -> the steps that need it, in order
        for index, step in enumerate(steps):
            for sim in step:
                self.uses.setdefault(sim, []).append(index)
        self.consumer = 0  # the next step the training thread will ask for
        self.gathering: int | None = None  # the step whose windows it is gathering (None: it waits for the next)
        self.stopped = False
        self.error: BaseException | None = None
        self.condition = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="hyco-read-ahead", daemon=True)
        self.thread.start()

    # ------------------------------------------------------------------ the training thread
    def serve(self, sims: Sequence[int]) -> bool:
        """Wait until the next planned step's simulations are resident; False when `sims` are not that step's
        (the plan does not hold any more)."""
        with self.condition:
            if self.consumer >= len(self.steps) or list(sims) != self.steps[self.consumer]:
                return False
            self.gathering = None  # the step before has been gathered: its slots may be refilled
            self.condition.notify_all()
            step = self.steps[self.consumer]
            while not self._ready(step):
                if self.error is not None:
                    raise self.error
                self.condition.wait()
            self.cache.hits += len(step)
            self.gathering = self.consumer  # kept by `_free_slot` until the next call
            self.consumer += 1
            return True

    def stop(self) -> None:
        with self.condition:
            self.stopped = True
            self.condition.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join()

    # ------------------------------------------------------------------ the reading thread
    def _ready(self, step: list[int]) -> bool:
        return bool((self.cache.slot_of[step] >= 0).all())

    def _needed(self, sim: int, first: int, last: int) -> bool:
        """Whether any step from `first` to `last` needs `sim`."""
        uses = self.uses.get(sim, ())
        k = bisect.bisect_left(uses, first)
        return k < len(uses) and uses[k] <= last

    def _next_use(self, sim: int, after: int) -> int:
        uses = self.uses.get(sim, ())
        k = bisect.bisect_left(uses, after)
        return uses[k] if k < len(uses) else len(self.steps)

    def _free_slot(self, preparing: int) -> int | None:
        """A slot for a simulation of step `preparing`: an empty one, or one whose simulation no step from the
        one being gathered through `preparing` needs (the one needed again last); None: wait."""
        cache = self.cache
        if len(cache._lru) < cache.capacity:
            used = set(cache._lru.values())
            return next(slot for slot in range(cache.capacity) if slot not in used)
        first = self.consumer if self.gathering is None else self.gathering  # a step gathered keeps its simulations
        candidates = [sim for sim in cache._lru if not self._needed(sim, first, preparing)]
        if not candidates:
            return None
        victim = max(candidates, key=lambda sim: self._next_use(sim, first))
        slot = cache._lru.pop(victim)
        cache.slot_of[victim] = -1
        return slot

    def _run(self) -> None:
        cache = self.cache
        try:
            for index, step in enumerate(self.steps):
                for sim in step:
                    with self.condition:
                        while not self.stopped and int(cache.slot_of[sim]) < 0:
                            slot = self._free_slot(index)
                            if slot is not None:
                                break
                            self.condition.wait()
                        if self.stopped:
                            return
                        if int(cache.slot_of[sim]) >= 0:
                            continue
                        cache._lru[sim] = slot  # reserved: not yet readable (slot_of stays -1 until loaded)
                    try:
                        cache._load(sim, slot)  # outside the lock: the training thread gathers meanwhile
                    except BaseException:
                        with self.condition:
                            cache._lru.pop(sim, None)
                        raise
                    with self.condition:
                        cache.slot_of[sim] = slot
                        self.condition.notify_all()
        except BaseException as error:  # a damaged file: raised in the training thread by `serve`
            with self.condition:
                self.error = error
                self.condition.notify_all()
            log.debug("read-ahead stopped: %s", error)
