"""Physical-only and synthetic-only trained once per sweep setting and reused by every job that needs the same.

A sweep over HYCO's own keys (`trainer.hybrid.*`) would otherwise train the same two baselines in every job.
A baseline's identity is a content hash of everything that can change it: the dataset (its generation hash),
the whole resolved config except HYCO's keys, the evaluation's and where the run writes, and hyco's version.
The first job to need one takes a file lock on `<baselines dir>/<mode>-<hash>.lock`, trains it in its own run
directory and stores a copy; a job that comes while it trains waits on the lock, then copies the stored run
into its own directory. Every job's run directory stays complete on its own; the log says which were reused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from hyco.errors import DataError
from hyco.tasks.context import RunContext

log = logging.getLogger(__name__)

BASELINES = ("physical", "synthetic")
# keys that cannot change a baseline: HYCO's own, the evaluation's, and where or how verbosely a run writes
IGNORED = ("task", "mode", "output_dir", "data_dir", "cache_dir", "resume", "log_level", "threads",
           "reuse_baselines", "evaluation")
DONE = "stored.json"


def baseline_key(ctx: RunContext, mode: str, dataset_hash: str) -> str:
    """The content hash naming a baseline run: same hash, same trained model."""
    from hyco.version import __version__

    config = dataclasses.asdict(ctx.cfg)
    for key in IGNORED:
        config.pop(key, None)
    config["trainer"] = {k: v for k, v in config["trainer"].items() if k != "hybrid"}
    identity = {"mode": mode, "dataset": dataset_hash, "config": config, "version": __version__,
                "device": str(ctx.device)}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_or_reuse(ctx: RunContext, exp, mode: str, train: Callable) -> bool:
    """Train the `mode` baseline into the run directory, or copy the stored one; True when it was reused."""
    from filelock import FileLock

    entry = Path(ctx.baselines_dir) / f"{mode}-{baseline_key(ctx, mode, exp.store.config_hash)}"
    entry.parent.mkdir(parents=True, exist_ok=True)
    target = exp.run_dir(mode)
    waited = time.perf_counter()
    with FileLock(str(entry) + ".lock"):
        waited = time.perf_counter() - waited
        if (entry / DONE).is_file():
            if target.exists():
                raise DataError(f"{target}: a {mode} run already exists in this output_dir; pass resume=true to "
                                "continue it or choose another output_dir")
            shutil.copytree(entry / "run", target, dirs_exist_ok=False)
            source = json.loads((entry / DONE).read_text()).get("trained_in", "?")
            log.info("%s-only: reused the run trained in %s (%s, waited %.1f s)", mode, source, entry.name, waited)
            return True
        train(ctx, exp)
        staging = entry.with_name(f".{entry.name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(target, staging / "run")
        (staging / DONE).write_text(json.dumps({"trained_in": str(ctx.run_dir), "mode": mode}))
        shutil.rmtree(entry, ignore_errors=True)
        staging.rename(entry)
        log.info("%s-only: trained here and stored for the other jobs of the sweep (%s)", mode, entry.name)
        return False
