"""Configuration: typed schema, validation, and loading of the shipped Hydra config tree."""

from hyco.config.errors import ConfigError, DataError, HycoError, NotBuiltError, require

__all__ = ["ConfigError", "DataError", "HycoError", "NotBuiltError", "require"]
