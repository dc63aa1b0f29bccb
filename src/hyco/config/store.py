"""Registers the typed schema with Hydra so that the YAML tree is composed on top of it."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from hyco.config.schema import HycoConfig

SCHEMA_NAME = "hyco_schema"


def register_schema() -> None:
    ConfigStore.instance().store(name=SCHEMA_NAME, node=HycoConfig)
