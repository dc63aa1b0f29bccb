"""The torch-free schemas of the shipped models (`hyco.config.models`) agree with the models themselves: the
registries validate sections and the memory estimate sizes a task from them without importing a model class,
so every shipped model's `Params` must be the one its class uses, and the sizes read from it the built model's."""

from __future__ import annotations

import pytest
import torch

import hyco.networks  # noqa: F401  (registers the shipped networks)
from hyco.config.registry import NETWORKS, PHYSICS
from hyco.physics import build_physics, shipped_config
from hyco.resources import _probe_model
from hyco.training.physical import _BUFFERS_PER_STEP

SHIPPED_PHYSICS = ["burgers_1d", "burgers_2d", "heat_2d", "heat_2d_dirichlet", "advection_2d", "smoke_2d",
                   "gray_scott", "heat_paper"]


@pytest.mark.parametrize("registry", [PHYSICS, NETWORKS], ids=["physics", "networks"])
def test_each_shipped_model_uses_the_schema_the_registry_validates_with(registry):
    shipped = {name: cls for name, cls in registry.items() if cls.__module__.startswith(registry.shipped + ".")}
    assert sorted(shipped) == sorted(registry.schemas)  # (other tests register plug-ins of their own)
    for name, cls in shipped.items():
        assert cls.Params is registry.schemas[name] is registry.params_class(name), name


@pytest.mark.parametrize("config", SHIPPED_PHYSICS)
def test_sizes_from_the_params_are_the_built_models(config):
    section = shipped_config(config)
    sizes = _probe_model(section)
    model = build_physics(section, "cpu", torch.float32)
    assert sizes.channels == model.num_channels and sizes.dynamic == model.dynamic_channels
    assert sizes.resolution == model.resolution and sizes.substeps == model.substeps
    assert sizes.buffers_per_substep == getattr(model, "memory_buffers_per_substep", _BUFFERS_PER_STEP)
