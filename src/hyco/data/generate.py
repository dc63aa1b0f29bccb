"""Simulate the train/val/test trajectories of an experiment into one HDF5 file, or reuse it.

The file name carries a hash of everything that changes the data (the model's spec, the counts and
length of the trajectories, `data.seed`, the reference simulator, the simulation dtype, the format version)
and nothing else, so trainer settings and the training `seed` never trigger a regeneration, datasets of
different configurations coexist (a Hydra sweep over physics parameters keeps one file each), and two jobs
of the same sweep share one file.

Reuse rules (`data.regenerate`):
- ``auto``: reuse the file of this hash when it is complete and valid; otherwise (missing, truncated,
  corrupt) generate it, with a warning when a damaged file is replaced;
- ``always``: generate it anew (unless another process finished generating it while this one waited);
- ``never``: reuse or refuse; the refusal names the config keys in which the closest existing dataset
  of the same experiment differs.
A file lock next to the dataset serialises processes generating the same file: the second waits,
then finds the file complete and reuses it.

The trajectories are simulated by the reference `data.reference` asks for (hyco.data.reference: a finer grid
and time step, restricted to the learning grid by cell averaging), the true coefficients stored are the
learning grid's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from filelock import FileLock, Timeout
from tqdm import tqdm

from hyco.config.schema import HycoConfig
from hyco.data.config_diff import config_differences
from hyco.data.external import ImportPlan, import_trajectories, plan_import, read_truths
from hyco.data.observation import check_observation
from hyco.data.reference import is_learning_solver, reference_model, reference_plan, reference_section, restrict
from hyco.data.store import FORMAT_VERSION, SPLITS, TrajectoryStore, create_store
from hyco.errors import DataError, HycoError
from hyco.utils.distributed import broadcast_object, gather_objects, process_info
from hyco.utils.paths import write_problem
from hyco.utils.seed import derive_seed

log = logging.getLogger(__name__)

VERIFY_MAX_BYTES = 1 << 30  # smaller files have every checksum verified before reuse


# ---------------------------------------------------------------------------- config hash and names
def _jsonable(obj: Any) -> Any:
    """A canonical JSON-able copy (dataclasses, tuples, numpy and torch scalars included)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot describe {type(obj).__name__} in a dataset config hash")


def hashed_config(cfg: HycoConfig, model: Any, plan: ImportPlan | None = None) -> dict[str, Any]:
    """Everything that changes the generated data, and nothing that does not. Imported data (`plan`): the
    sources' digests and the mapping instead of the seed."""
    spec = model.spec() if hasattr(model, "spec") else dict(cfg.physics)
    config = {
        "format_version": FORMAT_VERSION,
        "physics": spec,
        "data": {
            "num_train": cfg.data.num_train,
            "num_val": cfg.data.num_val,
            "num_test": cfg.data.num_test,
            "num_frames": cfg.data.num_frames,
            "seed": cfg.data.seed,  # imported data: the seed of their masks and noise (hyco.data.observation)
        },
        "dtype": cfg.dtype,
    }
    if plan is not None:
        config["physics"] = plan.model_identity(model)  # the fields read, not how the solver steps
        config["external"] = plan.hashed()
    else:
        config["reference"] = reference_plan(cfg.data.reference, model).hashed()
    return _jsonable(config)


def config_hash(config: Mapping[str, Any]) -> str:
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.]+", "_", str(text)).strip("_") or "unnamed"


def dataset_prefix(cfg: HycoConfig) -> str:
    return f"{_slug(cfg.experiment_name)}-{_slug(cfg.physics.get('name', 'physics'))}-"


def dataset_path(cfg: HycoConfig, data_dir: str | Path, digest: str) -> Path:
    return Path(data_dir) / f"{dataset_prefix(cfg)}{digest[:12]}.h5"


# ---------------------------------------------------------------------------- seeds
def simulation_seed(base_seed: int, split: str, index: int) -> int:
    """Independent seed of simulation `index` of `split`: the splits never share initial states, and
    a simulation's data do not depend on how generation is batched."""
    return derive_seed(base_seed, SPLITS.index(split), index)


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str]:
    out = {}
    for package in ("hyco", "phiflow", "phiml", "torch", "h5py", "numpy"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "unknown"
    from hyco.version import __version__

    out["hyco"] = __version__
    out["torch"] = torch.__version__
    return out


# ---------------------------------------------------------------------------- reuse decision
def expected_shape(cfg: HycoConfig, model: Any) -> tuple[int, ...]:
    """`[sim, time, channel, *space]` of the trajectories this config generates."""
    sims = cfg.data.num_train + cfg.data.num_val + cfg.data.num_test
    return (sims, cfg.data.num_frames, int(model.num_channels), *(int(n) for n in model.spatial_shape))


def _problem_with(path: Path, digest: str, shape: tuple[int, ...] | None = None) -> str | None:
    """None if `path` is a complete, valid dataset of hash `digest` (and trajectories of `shape`); else what
    is wrong with it."""
    if not path.exists():
        return "missing"
    try:
        with TrajectoryStore(path) as store:
            if store.config_hash != digest:
                return f"made with config hash {store.config_hash}, expected {digest}"
            if shape is not None and store.shape != tuple(shape):
                return f"{path}: trajectories of shape {list(store.shape)}, the config asks for {list(shape)}"
            if path.stat().st_size <= VERIFY_MAX_BYTES:
                store.verify()
    except DataError as exc:
        return str(exc)
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # a dangling symbolic link
        return 0.0


def _closest_sibling(cfg: HycoConfig, data_dir: Path, exclude: Path) -> tuple[Path, dict] | None:
    """The most recent valid dataset of the same experiment and physics, with its hashed config."""
    candidates = sorted(data_dir.glob(f"{dataset_prefix(cfg)}*.h5"), key=_mtime, reverse=True)
    for candidate in candidates:
        if candidate == exclude:
            continue
        try:
            with TrajectoryStore(candidate) as store:
                return candidate, dict(store.attrs.get("config", {}))
        except DataError:
            continue
    return None


def _difference_note(cfg: HycoConfig, data_dir: Path, path: Path, config: dict) -> str:
    sibling = _closest_sibling(cfg, data_dir, path)
    if sibling is None:
        return f"no dataset of experiment {cfg.experiment_name!r} exists in {data_dir}"
    other, other_config = sibling
    return f"the existing {other.name} differs in: {config_differences(other_config, config)}"


# ---------------------------------------------------------------------------- public API
def ensure_dataset(cfg: HycoConfig, model: Any, data_dir: str | Path) -> Path:
    """Path of a complete, valid dataset for this config: reused, or generated under a file lock. The
    observation settings are checked against the model's fields first: a bad one costs no generation.

    Under torchrun rank 0 checks, locks and writes; when it generates, every rank simulates its share of the
    simulations (`_simulated_chunks`) and rank 0 writes them, the same file as one process writes."""
    if not process_info().parallel:
        return _ensure_dataset(cfg, model, data_dir)
    if not process_info().is_main:
        while True:  # rank 0 says what to do: simulate a share, or use the file it made (or stop: it failed)
            message = broadcast_object()
            if message[0] == "simulate":
                _simulate_share(cfg, model)
            elif message[0] == "done":
                return Path(message[1])
            else:
                raise SystemExit(2)  # rank 0 reports the error, in one line
    try:
        path = _ensure_dataset(cfg, model, data_dir)
    except HycoError as error:
        broadcast_object(("failed", str(error)))
        raise
    broadcast_object(("done", str(path)))
    return path


def _ensure_dataset(cfg: HycoConfig, model: Any, data_dir: str | Path) -> Path:
    check_observation(cfg.observation, [dataclasses.asdict(f) for f in model.fields], model.spatial_shape,
                      cfg.data.num_frames)
    data_dir = Path(data_dir)
    plan = plan_import(cfg, model, data_dir if data_dir.is_dir() else None) if cfg.data.external.enabled else None
    if plan is None and not is_learning_solver(reference := reference_plan(cfg.data.reference, model), model):
        reference_section(dict(cfg.physics), reference)  # a model without the keys to refine: refused before any work
    config = hashed_config(cfg, model, plan)
    digest = config_hash(config)
    path = dataset_path(cfg, data_dir, digest)
    mode = cfg.data.regenerate
    read_only = write_problem(data_dir) if data_dir.is_dir() else None
    if read_only is not None:
        return _reuse_read_only(cfg, model, data_dir, path, digest, config, read_only)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        raise DataError(f"data_dir: {write_problem(data_dir) or f'cannot create {data_dir}'}") from None
    lock = FileLock(str(path) + ".lock")
    waited_since = None
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            waited_since = time.time()
            log.info("another process is generating %s; waiting up to %.0f s", path, cfg.data.lock_timeout_s)
            lock.acquire(timeout=cfg.data.lock_timeout_s)
    except Timeout:
        raise DataError(f"{path}.lock: still held by another process after data.lock_timeout_s="
                        f"{cfg.data.lock_timeout_s} s; delete the lock file if no hyco process is running") from None
    try:
        _remove_stray_writes(path)
        if path.is_dir():  # never removed on the user's behalf
            raise DataError(f"{path}: a directory is in the dataset file's place; remove it or choose another "
                            "data_dir")
        if mode == "always" and waited_since is None:
            problem = "data.regenerate=always"  # no need to read the old file
        else:
            problem = _problem_with(path, digest, expected_shape(cfg, model))
        fresh = waited_since is not None and problem is None and path.stat().st_mtime >= waited_since
        if problem is None and (mode != "always" or fresh):
            log.info("reusing dataset %s (config hash %s)", path, digest)
            return path
        if mode == "never":
            detail = _difference_note(cfg, data_dir, path, config) if problem == "missing" else problem
            raise DataError(f"data.regenerate=never: no usable dataset {path.name} in {data_dir} ({detail}); "
                            "set data.regenerate=auto to generate it")
        if problem not in (None, "missing", "data.regenerate=always"):
            log.warning("%s; generating it anew", problem)
        elif problem == "missing":
            log.info("no dataset for config hash %s: %s", digest, _difference_note(cfg, data_dir, path, config))
        if plan is not None:
            import_dataset(cfg, model, path, config, digest, plan)
        else:
            generate_dataset(cfg, model, path, config, digest)
        return path
    finally:
        lock.release()


def _remove_stray_writes(path: Path) -> None:
    """Temporary files of `path` left by a generating process that was killed (SIGKILL, power loss); only
    called under the dataset's lock, so no live writer owns them."""
    pattern = re.compile(rf"^\.{re.escape(path.stem)}\.[a-z0-9_]{{8}}\.tmp{re.escape(path.suffix)}$")
    stray = [p for p in path.parent.iterdir() if pattern.match(p.name) and p.is_file()]
    for leftover in stray:
        leftover.unlink(missing_ok=True)
    if stray:
        log.info("removed %d temporary file(s) of an interrupted generation of %s (%s)", len(stray), path.name,
                 ", ".join(p.name for p in stray))


def _reuse_read_only(cfg: HycoConfig, model: Any, data_dir: Path, path: Path, digest: str, config: dict,
                     why: str) -> Path:
    """A data_dir this process cannot write (a shared, read-only dataset folder): use a valid file as it
    is, without the lock file (nothing will be written, so no writer can race this reader)."""
    problem = ("data.regenerate=always" if cfg.data.regenerate == "always"
               else _problem_with(path, digest, expected_shape(cfg, model)))
    if problem is None:
        log.info("reusing dataset %s from a read-only data_dir (no lock: nothing is written there)", path)
        return path
    if cfg.data.regenerate == "never":
        detail = _difference_note(cfg, data_dir, path, config) if problem == "missing" else problem
        raise DataError(f"data.regenerate=never: no usable dataset {path.name} in {data_dir} ({detail})")
    raise DataError(f"data_dir: {why}, and dataset {path.name} would have to be written ({problem}); "
                    "set data_dir to a writable directory")


def store_attrs(cfg: HycoConfig, model: Any, config: Mapping[str, Any], digest: str) -> dict[str, Any]:
    """The attributes of a dataset file: what made it, its fields and domain (see `hyco.data.store`)."""
    return {
        "config_hash": digest,
        "config": dict(config),
        "field_specs": [_jsonable(f) for f in model.fields],
        "dynamic_channels": [int(c) for c in model.dynamic_channels],
        "bounds": [float(b) for b in model.bounds],
        "dt": float(model.dt),
        "substeps": int(getattr(model, "substeps", 1)),
        "spatial_axes": ",".join("zyx"[3 - model.ndim:]),
        "physics": config["physics"],
        "experiment_name": cfg.experiment_name,
        "versions": dict(_library_versions()),
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def import_dataset(cfg: HycoConfig, model: Any, path: str | Path, config: Mapping[str, Any], digest: str,
                   plan: ImportPlan) -> Path:
    """Write the trajectories of an external file (`data.external`) to `path` atomically; the true
    coefficients stored are only those known for its data (`plan.truth`)."""
    started = time.perf_counter()
    attrs = store_attrs(cfg, model, config, digest)
    attrs.pop("substeps")  # a solver setting: not what the imported data are (see `ImportPlan.model_identity`)
    attrs["reference"] = "imported (data.external): made elsewhere"
    if plan.bounds is not None:
        attrs["bounds"] = [float(b) for b in plan.bounds]
    if plan.dt is not None:
        attrs["dt"] = float(plan.dt)
    for key, mine in (("bounds", list(model.bounds)), ("dt", model.dt)):
        if not np.allclose(np.atleast_1d(mine), np.atleast_1d(attrs[key]), rtol=1e-5, atol=0):
            log.warning("the data's %s is %s, the physics model's %s (its config has no key %r to take the data's)",
                        key, attrs[key], mine, key)
    coefficients = {name: value.detach().cpu().numpy() for name, value in model.true_coefficients().items()
                    if name in plan.truth and name not in plan.truth_fields}
    coefficients.update(read_truths(plan, model))  # true values a file field holds
    import_trajectories(plan, path, model=model, attrs=attrs, coefficients=coefficients,
                        num_frames=cfg.data.num_frames, window_frames=cfg.data.rollout_steps + 1)
    log.info("%s %s in %.1f s", "made (to read in place)" if plan.in_place else "imported", path,
             time.perf_counter() - started)
    return Path(path)


def generate_dataset(cfg: HycoConfig, model: Any, path: str | Path, config: Mapping[str, Any], digest: str) -> Path:
    """Simulate every split in batches of `data.generation_batch` and write them to `path` atomically."""
    path = Path(path)
    sizes, rows, chunks, seeds, batch = _plan(cfg)
    num_frames = cfg.data.num_frames
    plan = reference_plan(cfg.data.reference, model)
    simulator = reference_model(dict(cfg.physics), model, plan)
    coefficients = simulator.true_coefficients()  # the truth on the reference's own grid
    attrs = store_attrs(cfg, model, config, digest)
    attrs["reference"] = plan.describe()
    log.info("generating %s: %s sims x %d frames of %s, %d per batch, simulated on %s", path, sizes, num_frames,
             tuple(model.spatial_shape), batch, plan.describe())
    started = time.perf_counter()
    # the truth the learner is measured against: the same profiles on the learning grid
    coeff_arrays = {name: value.detach().cpu().numpy() for name, value in model.true_coefficients().items()}
    store = functools.partial(_store_chunk, restriction=(plan.refine, model.fields))
    if process_info().parallel:
        broadcast_object(("simulate",))  # the other ranks, waiting in ensure_dataset, take their share
        with torch.no_grad(), create_store(
            path, split_sizes=sizes, num_frames=num_frames, num_channels=model.num_channels,
            spatial_shape=tuple(model.spatial_shape), attrs=attrs, coefficients=coeff_arrays,
            window_frames=cfg.data.rollout_steps + 1,
        ) as writer, tqdm(total=len(rows), desc=f"generate {path.name}", unit="sim", disable=None) as bar:
            for k, states, frames in _simulated_chunks(simulator, coefficients, seeds, num_frames, batch):
                store(writer, k * batch, states, frames, seeds[k], chunks[k], cfg.physics.get("name"))
                bar.update(len(chunks[k]))
        log.info("wrote %s in %.1f s with %d ranks", path, time.perf_counter() - started, process_info().world_size)
        return path
    # One helper thread overlaps the host work with the rollouts: it samples the next chunk's initial
    # states and writes the previous chunk while the current one is simulated (at most ~2 chunks in memory).
    with torch.no_grad(), create_store(
        path, split_sizes=sizes, num_frames=num_frames, num_channels=model.num_channels,
        spatial_shape=tuple(model.spatial_shape), attrs=attrs, coefficients=coeff_arrays,
        window_frames=cfg.data.rollout_steps + 1,
    ) as writer, ThreadPoolExecutor(max_workers=1) as helper, tqdm(
        total=len(rows), desc=f"generate {path.name}", unit="sim", disable=None,
    ) as bar:
        next_states = helper.submit(initial_states, simulator, seeds[0])
        written = None
        for k, chunk in enumerate(chunks):
            states = next_states.result()
            if k + 1 < len(chunks):
                next_states = helper.submit(initial_states, simulator, seeds[k + 1])
            frames = simulate(simulator, coefficients, states, num_frames, batch)
            if written is not None:
                written.result()
            written = helper.submit(store, writer, k * batch, states, frames, seeds[k], chunk, cfg.physics.get("name"))
            bar.update(len(chunk))
        written.result()
    elapsed = time.perf_counter() - started
    log.info("wrote %s in %.1f s (%.0f sample-steps/s)", path, elapsed, len(rows) * (num_frames - 1) / elapsed)
    return path


def _plan(cfg: HycoConfig) -> tuple[dict[str, int], list, list, list[np.ndarray], int]:
    """Split sizes, (split, index) rows, chunks of `data.generation_batch` rows, their seeds, the batch."""
    sizes = {"train": cfg.data.num_train, "val": cfg.data.num_val, "test": cfg.data.num_test}
    rows = [(split, i) for split in SPLITS for i in range(sizes[split])]
    batch = min(cfg.data.generation_batch, len(rows))
    chunks = [rows[first:first + batch] for first in range(0, len(rows), batch)]
    seeds = [np.array([simulation_seed(cfg.data.seed, split, i) for split, i in chunk], dtype=np.int64)
             for chunk in chunks]
    return sizes, rows, chunks, seeds, batch


def _simulated_chunks(model: Any, coefficients: Mapping[str, torch.Tensor], seeds: list[np.ndarray],
                      num_frames: int, batch: int):
    """Under torchrun: chunk k is simulated by rank k mod W (round robin, in rounds of W chunks) and sent to
    rank 0, which gets `(k, states, frames)` in order; a chunk is simulated exactly as in one process (same
    seeds, same padded batch), so the data do not depend on the number of ranks."""
    info = process_info()
    with torch.no_grad():
        for first in range(0, len(seeds), info.world_size):
            k = first + info.rank
            mine = None
            if k < len(seeds):
                states = initial_states(model, seeds[k])
                mine = (states.cpu(), simulate(model, coefficients, states, num_frames, batch).cpu())
            everyone = gather_objects(mine)
            if info.is_main:
                yield from ((first + r, *item) for r, item in enumerate(everyone) if item is not None)


def _simulate_share(cfg: HycoConfig, model: Any) -> None:
    """A rank other than 0: simulate this rank's chunks of the dataset rank 0 is writing."""
    _, _, _, seeds, batch = _plan(cfg)
    simulator = reference_model(dict(cfg.physics), model, reference_plan(cfg.data.reference, model))
    for _ in _simulated_chunks(simulator, simulator.true_coefficients(), seeds, cfg.data.num_frames, batch):
        pass


def initial_states(model: Any, seeds: np.ndarray) -> torch.Tensor:
    """[len(seeds), C, *space]: each simulation's initial state from its own seed, so a simulation's data
    do not depend on how generation is batched."""
    return torch.cat([model.initial_state(1, int(seed)) for seed in seeds])


def simulate(model: Any, coefficients: Mapping[str, torch.Tensor], states: torch.Tensor, num_frames: int,
             batch: int) -> torch.Tensor:
    """Frames 1..T-1 [len(states), T-1, C, *space] of one batched rollout of `states`.

    A short last chunk is padded to `batch` so the jit-compiled rollout keeps the shape it was traced with.
    """
    real = states.shape[0]
    if real < batch:
        states = torch.cat([states, states[:1].expand(batch - real, *states.shape[1:])])
    return model.rollout(states, coefficients, num_frames - 1)[:real]


def _store_chunk(writer: Any, first: int, states: torch.Tensor, frames: torch.Tensor, seeds: np.ndarray,
                 chunk: list[tuple[str, int]], physics_name: str, restriction: tuple[int, Any] = (1, ())) -> None:
    """Assemble [b, T, C, *space] float32 trajectories (restricted to the learning grid: `restriction` is the
    refinement factor and the fields), refuse non-finite ones, write them."""
    trajectories = torch.cat([states.to(frames.device, frames.dtype)[:, None], frames], dim=1)
    factor, fields = restriction
    trajectories = restrict(trajectories, factor, fields) if factor > 1 else trajectories
    trajectories = trajectories.to(device="cpu", dtype=torch.float32).numpy()
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf = nan: still non-finite
        bad = ~np.isfinite(trajectories.sum(axis=tuple(range(1, trajectories.ndim)), dtype=np.float64))
    if bad.any():
        split, index = chunk[int(np.argmax(bad))]
        raise DataError(f"physics.{physics_name}: simulation {index} of split {split!r} produced non-finite "
                        "values (unstable time step? try a smaller dt or more substeps)")
    writer.write(first, trajectories, seeds)
