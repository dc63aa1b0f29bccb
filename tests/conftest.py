import os
import sys
from pathlib import Path

import pytest

import hyco

PLUGINS = Path(__file__).parent / "plugins"
sys.path.insert(0, str(PLUGINS))
# Subprocesses (`python -m hyco ...`) see the same hyco and the test plugins.
_SRC = str(Path(hyco.__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC, str(PLUGINS), os.environ.get("PYTHONPATH")]))
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_configure(config):
    """Thread counts that stay fixed: `threads: auto` follows the machine's load (hyco.utils.threads), and a
    count that changes during a training changes its round-off, while tests compare runs bit for bit; so
    every run the tests start, in-process or as `python -m hyco`, keeps its automatic count
    (HYCO_FOLLOW_LOAD=0; the tests of the thread budget clear it for their child processes). Under
    pytest-xdist (`make test` runs `-n auto`) each worker's in-process torch gets its share of the cores
    instead of one thread per core each, which oversubscribes them. A user's OMP_NUM_THREADS is left alone."""
    os.environ.setdefault("HYCO_FOLLOW_LOAD", "0")
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers and os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
        import torch

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        torch.set_num_threads(max(1, cores // int(workers)))


# Overrides that select the fake test models (tests/plugins/fake_models.py).
# `~physics` / `~network` drop the shipped groups (their keys belong to Burgers and the UNet).
FAKE = ["plugins=[fake_models]", "~physics", "+physics.name=fake_pde", "~network", "+network.name=fake_net"]


@pytest.fixture
def fake_overrides():
    return list(FAKE)
