"""The memory a task will need, estimated from its config before anything is allocated.

An absurd size (`physics.resolution=[100000,100000]`, `data.num_train=1000000000`) used to reach the
allocator and end, seconds to minutes later, in a traceback, a `MemoryError` or the kernel's OOM killer.
The estimate below costs microseconds (plus a forward pass of the network on a 16- and a 32-point grid),
so the CLI refuses such a config in one line naming the keys, before Hydra creates the run directory.

Formula, in bytes. `s` = bytes per value of `dtype`; `F` = C·N values of one state (C channels, N grid
cells); `T` = data.num_frames, `R` = data.rollout_steps; `S` = all simulations, `W` = training windows
= num_train·(T - R). The peak is the process's fixed footprint plus its largest phase:

    peak = BASE + max(phase of the task)
    generate   = B·T·F·(2s + 20) + S·PER_SIMULATION          B = min(data.generation_batch, S)
    synthetic  = num_val·T·F·(4 + s)                          validation trajectories (float32 + dtype)
               + min(data.max_cached_sims, num_train)·T·F·4   decoded trajectories of the loader's cache
               + W·PER_WINDOW                                 an epoch's window order
               + batch_size·R·(a·N + a0)·s/4                  network activations kept for backward, a and a0
                                                              measured on small grids (saved-tensor hooks)
    physical   = 1.6·m·w + m·(R+1)·F·s                       m = min(W, batch_windows or memory_budget_gb / w)
                                                              windows per objective, w = F·s·28·substeps·4
    hybrid     = synthetic + physical + min(hybrid.memory_budget_gb, 2·G·(R+1)·F·4)    G = int(alpha·W)
    evaluate   = num_test·T·F·(4 + 4s)                        test trajectories and three models' rollouts
    run        = max(generate, hybrid + evaluate)

`tests/faults/test_resources.py` checks the formula against the measured peak RSS of real tasks (within a
factor of 2); the refusal compares it with the memory this process may use (physical memory, or a
cgroup limit when lower).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from hyco.config.schema import HycoConfig
from hyco.errors import ConfigError

BASE = 500 * 2**20  # a hyco process after its imports, PhiFlow's jit traces and the first batch (measured 450-570 MB)
PER_SIMULATION = 200  # generation's per-simulation bookkeeping (row list, seeds, written flags)
PER_WINDOW = 32  # an epoch's permutation and per-simulation blocks of window indices (int64)
# The physical trainer sizes its objective's batch with a per-window estimate (`BUFFERS_PER_SUBSTEP` or the
# model's `memory_buffers_per_substep` state-sized buffers per substep); measured at 64x64 (Burgers, float32,
# L-BFGS-B) a window keeps about 1.6 times that.
PHYSICAL_MEASURED_OVER_BUDGETED = 1.6
GIB = 2**30

log = logging.getLogger(__name__)


class NotEstimable(Exception):
    """The model cannot be described without building it (a plugin that is not a PhysicalModel)."""


@dataclass
class Term:
    bytes: float
    keys: tuple[str, ...]
    what: str


@dataclass
class MemoryEstimate:
    """Bytes of each phase of a task; `peak` = BASE + the largest."""

    phases: dict[str, list[Term]] = field(default_factory=dict)

    def phase_bytes(self, name: str) -> float:
        return sum(t.bytes for t in self.phases[name])

    @property
    def largest(self) -> str:
        return max(self.phases, key=self.phase_bytes)

    @property
    def peak(self) -> float:
        return BASE + (self.phase_bytes(self.largest) if self.phases else 0.0)

    def dominant(self) -> Term:
        return max(self.phases[self.largest], key=lambda t: t.bytes)


@dataclass(frozen=True)
class ModelSizes:
    """What the estimate needs of a PDE model: its state's channels (and which are dynamic), its grid, the
    substeps per stored frame and the state-sized buffers autograd keeps per substep."""

    channels: int
    dynamic: list[int]
    resolution: tuple[int, ...]
    substeps: int
    buffers_per_substep: int


def _sizes(fields, resolution, substeps: int, buffers: int) -> ModelSizes:
    dynamic, channels = [], 0
    for spec in fields:
        if spec.dynamic:
            dynamic += range(channels, channels + spec.channels)
        channels += spec.channels
    return ModelSizes(channels, dynamic, tuple(int(n) for n in resolution), int(substeps), int(buffers))


def _probe_model(physics: dict) -> ModelSizes:
    """The sizes of the configured PDE without building it. A shipped model's come from its torch-free
    Params (`state_fields`), so an absurd config is refused before torch and PhiFlow are imported; a
    plug-in's `setup` runs on a bare instance, which only declares the domain and fields (the constructor
    would allocate state-sized templates, which an absurd resolution must never reach)."""
    from hyco.config.models.physics import BUFFERS_PER_SUBSTEP, TIME_STEP_EVALUATIONS
    from hyco.config.registry import PHYSICS, model_params, section_params

    if physics.get("name") in PHYSICS.schemas:
        params = section_params(dict(physics), "physics")
        evaluations = TIME_STEP_EVALUATIONS[params.time_step]  # a Runge-Kutta substep keeps each stage's buffers
        return _sizes(params.state_fields(), params.resolution, params.substeps * evaluations,
                      getattr(params, "memory_buffers_per_substep", BUFFERS_PER_SUBSTEP))
    from hyco.physics.base import PhysicalModel

    cls, params = model_params(dict(physics), "physics")
    if not (isinstance(cls, type) and issubclass(cls, PhysicalModel)):
        raise NotEstimable(f"{cls!r} is not a PhysicalModel")
    probe = object.__new__(cls)
    probe.params, probe.fields, probe.coefficient_specs, probe.coefficient_config = params, (), (), {}
    try:
        cls.setup(probe, params)
        probe.resolution  # noqa: B018 (set by set_domain)
    except Exception as exc:  # a plugin's setup that needs more than its params: its build will say why
        raise NotEstimable(f"{cls.__name__}.setup on a bare instance: {exc!r}") from None
    return _sizes(probe.fields, probe.resolution, getattr(probe, "substeps", 1),
                  getattr(cls, "memory_buffers_per_substep", BUFFERS_PER_SUBSTEP))


def network_activation_bytes(network: dict, channels: int, dynamic: list[int], ndim: int) -> tuple[float, float]:
    """(bytes per grid cell, fixed bytes) that one sample's one-step forward pass saves for backward, in
    float32: measured with saved-tensor hooks on 16- and 32-point grids (the slope is the per-cell cost)."""
    import torch

    from hyco.networks.surrogate import build_network

    net = build_network(dict(network), channels, dynamic, ndim)
    sizes, saved = (16, 32), []
    for n in sizes:
        total = [0]

        def pack(tensor, total=total):
            total[0] += tensor.numel() * tensor.element_size()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net.rollout(torch.zeros(1, channels, *([n] * ndim)), 1)
        saved.append(total[0])
    cells = [n**ndim for n in sizes]
    per_cell = max(0.0, (saved[1] - saved[0]) / (cells[1] - cells[0]))
    return per_cell, max(0.0, saved[0] - per_cell * cells[0])


def estimate_memory(cfg: HycoConfig, with_network: bool = True) -> MemoryEstimate:
    """Phases of `cfg.task` and their bytes (see the module docstring for the formula)."""
    sizes = _probe_model(cfg.physics)
    channels, dynamic, resolution, substeps = sizes.channels, sizes.dynamic, sizes.resolution, sizes.substeps
    s = 8 if cfg.dtype == "float64" else 4
    cells = math.prod(resolution)
    F = channels * cells
    d, T, R = cfg.data, cfg.data.num_frames, cfg.data.rollout_steps
    S = d.num_train + d.num_val + d.num_test
    W = d.num_train * (T - R)
    res = ("physics.resolution",)
    est = MemoryEstimate()

    batch = min(d.generation_batch, S)
    generate = [Term(batch * T * F * (2 * s + 20), res + ("data.generation_batch", "data.num_frames"),
                     f"simulating {batch} trajectories at once (data.generation_batch)"),
                Term(S * PER_SIMULATION, ("data.num_train", "data.num_val", "data.num_test"),
                     f"bookkeeping of {S} simulations")]

    def synthetic() -> list[Term]:
        terms = [Term(d.num_val * T * F * (4 + s), res + ("data.num_val", "data.num_frames"),
                      f"{d.num_val} validation trajectories in memory"),
                 Term(min(d.max_cached_sims, d.num_train) * T * F * 4, res + ("data.max_cached_sims",),
                      "the loader's cache of decoded trajectories"),
                 Term(W * PER_WINDOW, ("data.num_train", "data.num_frames"), f"the order of {W} training windows")]
        if with_network:
            try:
                per_cell, fixed = network_activation_bytes(cfg.network, channels, dynamic, len(resolution))
            except Exception as exc:  # a plugin network the probe cannot run: leave its activations out
                log.debug("no activation estimate for network %s: %r", cfg.network.get("name"), exc)
                return terms
            batch_size = cfg.trainer.synthetic.batch_size
            terms.append(Term(batch_size * R * (per_cell * cells + fixed) * s / 4,
                              res + ("trainer.synthetic.batch_size", "network.width"),
                              f"network activations of a batch of {batch_size} windows"))
        return terms

    def physical() -> list[Term]:
        p = cfg.trainer.physical
        per_window = F * s * sizes.buffers_per_substep * substeps * 4
        windows = p.batch_windows or max(1, int(p.memory_budget_gb * GIB // per_window))
        windows = min(windows, W)
        keys = res + ("trainer.physical.batch_windows", "trainer.physical.memory_budget_gb")
        return [Term(windows * per_window * PHYSICAL_MEASURED_OVER_BUDGETED, keys,
                     f"the physical rollout graph of {windows} window(s)"),
                Term(windows * (R + 1) * F * s, res + ("trainer.physical.batch_windows",),
                     f"{windows} windows gathered for one objective")]

    def hybrid() -> list[Term]:
        h = cfg.trainer.hybrid
        generated = 2 * int(h.alpha * W) * (R + 1) * F * 4
        return [*synthetic(), *physical(),
                Term(min(h.memory_budget_gb * GIB, generated), res + ("trainer.hybrid.alpha",),
                     "generated windows held in memory")]

    evaluate = [Term(d.num_test * T * F * (4 + 4 * s), res + ("data.num_test", "data.num_frames"),
                     f"{d.num_test} test trajectories and the models' rollouts")]

    task = cfg.task
    if task in ("generate", "train", "evaluate", "run"):
        est.phases["generate"] = generate
    if task == "train":
        est.phases[cfg.mode] = {"synthetic": synthetic, "physical": physical, "hybrid": hybrid}[cfg.mode]()
    elif task == "evaluate":
        est.phases["evaluate"] = evaluate
    elif task == "run":
        est.phases["training and evaluation"] = [*hybrid(), *evaluate]
    return est


def available_memory() -> int:
    """Bytes this process may use: physical memory, or the cgroup (v2 or v1) limit when that is lower."""
    limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            limit = min(limit, int(text))
    return limit


def _size(value: float) -> str:
    for unit, scale in (("PB", 2**50), ("TB", 2**40), ("GB", GIB)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 2**20:.3g} MB"


def check_memory(cfg: HycoConfig, limit: int | None = None) -> MemoryEstimate:
    """Refuse, in one line naming the keys, a task whose estimated peak exceeds the available memory.

    The network's activations are measured only when the data alone fit (an absurd grid is refused
    without building a network)."""
    limit = available_memory() if limit is None else limit
    estimate = estimate_memory(cfg, with_network=False)
    if estimate.peak <= limit:
        estimate = estimate_memory(cfg, with_network=True)
    if estimate.peak > limit:
        term = estimate.dominant()
        values = []
        for key in term.keys:
            value = _lookup(cfg, key)
            if value is not None:
                values.append(f"{key}={value}")
        raise ConfigError(", ".join(values), "", message=(
            f"the {cfg.task} task would need about {_size(estimate.peak)} of memory (largest part: {term.what}, "
            f"{_size(term.bytes)}), more than the {_size(limit)} available; reduce these values"))
    return estimate


def check_disk(cfg: HycoConfig) -> None:
    """Refuse a dataset that could never fit on the file system of `data_dir` (its size in float32)."""
    import shutil

    sizes = _probe_model(cfg.physics)
    channels, resolution = sizes.channels, sizes.resolution
    d = cfg.data
    sims = d.num_train + d.num_val + d.num_test
    size = sims * d.num_frames * channels * math.prod(resolution) * 4
    directory = Path(cfg.data_dir).absolute()
    while not directory.exists():
        directory = directory.parent
    total = shutil.disk_usage(directory).total
    if size > total:
        raise ConfigError("data.num_train", "", message=(
            f"the dataset would take {_size(size)} ({sims} simulations x {d.num_frames} frames of "
            f"{channels} x {list(resolution)} float32 values), more than the whole file system of data_dir "
            f"({directory}: {_size(total)}); reduce data.num_train/num_val/num_test, data.num_frames or "
            "physics.resolution"))


def check_resources(cfg: HycoConfig) -> None:
    """Memory and disk checks of a task that touches the dataset (all but `report`)."""
    if cfg.task == "report":
        return
    try:
        check_memory(cfg)
        check_disk(cfg)
    except NotEstimable as exc:
        log.debug("no memory estimate: %s", exc)


def _lookup(cfg: HycoConfig, key: str):
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return list(node) if isinstance(node, (list, tuple)) else node
