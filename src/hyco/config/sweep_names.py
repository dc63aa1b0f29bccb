"""Names of a sweep's job directories: what differs between the jobs, readable and safe on any file system.

Hydra's `override_dirname` lists a job's overrides (`seed=1,trainer.hybrid.alpha=0.5`); hyco leaves out the
keys every job of the sweep sets alike (passed to Hydra as `exclude_keys`, see `constant_keys`), and the
resolver `hyco_job_name` makes the rest a directory name: characters other than letters, digits and
`._,=+-` become `_`, a name longer than `MAX_LENGTH` is cut and ends in a hash of the whole, and a job
that differs in nothing is `job_<num>`.
"""

from __future__ import annotations

import hashlib
import re

RESOLVER = "hyco_job_name"
MAX_LENGTH = 120
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")


def job_name(override_dirname: str, num: int | str = 0) -> str:
    """The directory name of a job whose differing overrides Hydra wrote as `override_dirname`."""
    text = str(override_dirname or "").strip()
    if not text:
        return f"job_{num}"
    name = _UNSAFE.sub("_", text)
    if name.startswith((".", "-")):
        name = "_" + name
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        name = f"{name[:MAX_LENGTH - 9]}-{digest}"
    return name


def register_resolver() -> None:
    """Make `${hyco_job_name:${hydra.job.override_dirname},${hydra.job.num}}` resolvable in this process (the
    workers of a parallel launcher import `hyco.cli`, which calls this)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, job_name)


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def constant_keys(jobs: list[list[str]]) -> list[str]:
    """The keys that every job of a sweep sets to the same value (left out of the job names)."""
    if not jobs:
        return []
    values: dict[str, set[str]] = {}
    for job in jobs:
        for override in job:
            values.setdefault(_key(override), set()).add(override.split("=", 1)[1] if "=" in override else "")
    seen_in_all = set.intersection(*({_key(o) for o in job} for job in jobs))
    return sorted(k for k, v in values.items() if len(v) == 1 and k in seen_in_all)
