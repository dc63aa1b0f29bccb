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
    """Under pytest-xdist (`make test` runs `-n auto`) each worker's in-process torch gets its share of the
    cores instead of one thread per core each, which oversubscribes them. Subprocesses (`python -m hyco`)
    decide their own budget; a user's OMP_NUM_THREADS is left alone."""
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
