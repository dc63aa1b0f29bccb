"""The configuration reference of the docs is generated from the schema: every key is there with a description,
its allowed values and the default that actually runs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hyco.config.models import networks, physics
from hyco.config.models.coefficients import CoefficientParams, ProfileParams
from hyco.config.reference import reference_markdown
from hyco.config.schema import HycoConfig
from hyco.config.validate import load


def dotted_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key of a dataclass schema, nested sections walked (their own names included)."""
    out = []
    for declared in dataclasses.fields(cls):
        name = prefix + declared.name
        out.append(name)
        default = declared.default_factory() if declared.default_factory is not dataclasses.MISSING else None
        if dataclasses.is_dataclass(default) and not isinstance(default, (CoefficientParams, ProfileParams)):
            out += dotted_keys(type(default), name + ".")
    return out


@pytest.fixture(scope="module")
def rows() -> dict[str, list[list[str]]]:
    """Key -> the cells of every table row naming it (a physics key appears once per model)."""
    found: dict[str, list[list[str]]] = {}
    for line in reference_markdown().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and len(cells) >= 5:
            found.setdefault(cells[0].strip("`"), []).append(cells)
    return found


def expected_keys() -> list[str]:
    keys = dotted_keys(HycoConfig)
    sections = {n for n in keys if any(k.startswith(n + ".") for k in keys)}
    keys = [k for k in keys if k not in sections]  # a section has a heading, not a row
    for params in physics.PARAMS.values():
        keys += dotted_keys(params, "physics.")
    keys += [f"physics.{k}" for k in physics.RUNTIME_DOCS]
    keys += dotted_keys(CoefficientParams, "physics.<coefficient>.")
    keys += dotted_keys(ProfileParams, "physics.<coefficient>.truth.")
    for params in networks.PARAMS.values():
        keys += dotted_keys(params, "network.")
    keys += dotted_keys(networks.RuntimeOptions, "network.")
    return sorted(set(keys))


def test_every_key_has_a_row_with_a_description(rows):
    keys = expected_keys()
    assert len(keys) > 150
    missing = [k for k in keys if k not in rows]
    assert not missing
    undescribed = [k for k in keys if any(len(r[-1]) < 10 for r in rows[k])]
    assert not undescribed


def test_allowed_values_are_the_enforced_ones(rows):
    def allowed(key):
        return rows[key][0][2]

    assert allowed("trainer.hybrid.alpha") == "a number in [0, 1]"
    assert allowed("observation.centre_fraction") == "a number in (0, 1]"
    assert allowed("trainer.physical.optimizer") == "one of lbfgsb, adam"
    with pytest.raises(Exception, match=r"^trainer.hybrid.alpha: expected a number in \[0, 1\], got 1.5$"):
        load("run", ["trainer.hybrid.alpha=1.5"])


def test_the_default_is_the_one_that_runs(rows):
    """Was: schema.py was read as holding the defaults, while the shipped YAML files set several keys otherwise."""
    cfg = load("run", [])
    differing = (("trainer.synthetic.lr", 1e-3), ("data.num_frames", 32), ("observation.spatial", "full"))
    for key, schema_default in differing:
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        shown = value if isinstance(value, str) else json.dumps(value)
        assert value != schema_default
        assert rows[key][0][3] == f"`{shown}` (`{json.dumps(schema_default).strip(chr(34))}`)"
    # a key that no shipped file sets shows the schema's default alone
    assert rows["trainer.physical.tolerance"][0][3] == "`1e-09`"
    # physics keys: the value each shipped config file sets, per model
    heat, heat_decay = rows["physics.boundary"]  # heat's: physics=heat_2d, heat_2d_dirichlet, heat_paper
    assert heat[3:6] == ["`periodic`", "`dirichlet` (`periodic`)", "`dirichlet` (`periodic`)"]
    assert heat_decay[3] == "`periodic`"  # no shipped file: the model's own default (data.reference.physics uses it)
