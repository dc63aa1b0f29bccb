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

# Overrides that select the fake test models (tests/plugins/fake_models.py).
# `~physics` / `~network` drop the shipped groups (their keys belong to Burgers and the UNet).
FAKE = ["plugins=[fake_models]", "~physics", "+physics.name=fake_pde", "~network", "+network.name=fake_net"]


@pytest.fixture
def fake_overrides():
    return list(FAKE)
