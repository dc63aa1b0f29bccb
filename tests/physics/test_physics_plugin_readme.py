"""The user guide's plug-in PDE example (docs/guide/plugins.md) works as written: a module selected by config."""

import re
import sys
from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.physics import build_physics

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "plugins.md"


def readme_plugin_code() -> str:
    section = GUIDE.read_text().split("## A PDE", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_plugin_example_registers_and_runs(tmp_path, monkeypatch):
    (tmp_path / "my_pdes.py").write_text(readme_plugin_code())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_pdes", raising=False)
    cfg = load("generate", ["plugins=[fake_models,my_pdes]", "~network", "+network.name=fake_net", "physics=plugin",
                            "physics.name=fisher", "+physics.growth.truth.value=3.0", "+physics.resolution=[16,16]"])
    model = build_physics(cfg.physics, "cpu", torch.float64)
    assert model.spec()["name"] == "fisher" and model.spatial_shape == (16, 16)
    assert float(model.true_coefficients()["growth"]) == 3.0
    state = model.initial_state(2, seed=0)
    growth = model.true_coefficients()["growth"].clone().requires_grad_(True)
    out = model.rollout(state, {"growth": growth}, 4)
    assert out.shape == (2, 4, 1, 16, 16) and torch.isfinite(out).all()
    assert out[:, -1].mean() > state.mean()  # logistic growth
    (grad,) = torch.autograd.grad(out.mean(), growth)
    assert grad > 0
    with pytest.raises(Exception, match=r"^physics.diffusivity: expected a number > 0, got -1.0$"):
        load("generate", ["plugins=[fake_models,my_pdes]", "~network", "+network.name=fake_net", "physics=plugin",
                          "physics.name=fisher", "+physics.diffusivity=-1.0"])
