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
    """A fixed thread count for every run the tests start, in-process (`hyco.Run`) and as `python -m hyco`:
    `threads: auto` follows the machine's load (hyco.utils.threads), and a count that changes during a
    training changes its round-off, while tests compare runs bit for bit. Under pytest-xdist (`make test`
    runs `-n auto`) each worker gets its share of the cores instead of one thread per core each, which
    oversubscribes them. A user's own HYCO_THREADS or OMP_NUM_THREADS is left alone; the tests of the
    thread budget itself clear these variables for their child processes."""
    if "HYCO_THREADS" in os.environ or "OMP_NUM_THREADS" in os.environ:
        return
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT") if os.environ.get("PYTEST_XDIST_WORKER") else None
    threads = max(1, cores // int(workers or 1))
    os.environ["HYCO_THREADS"] = str(threads)
    torch.set_num_threads(threads)


# Overrides that select the fake test models (tests/plugins/fake_models.py).
# `~physics` / `~network` drop the shipped groups (their keys belong to Burgers and the UNet).
FAKE = ["plugins=[fake_models]", "~physics", "+physics.name=fake_pde", "~network", "+network.name=fake_net"]


@pytest.fixture
def fake_overrides():
    return list(FAKE)
