"""OmegaConf's exceptions as hyco's one-line `ConfigError`s (hyco.errors), for the config layer and the model
registries."""

from __future__ import annotations

import re

from hyco.errors import ConfigError


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def unknown_key(key: str) -> ConfigError:
    return ConfigError(key, "", message="unknown key (check the spelling; `hyco <task> --cfg job` lists the keys)")


def omegaconf_error(exc: Exception, prefix: str = "") -> ConfigError:
    """One ConfigError line for an OmegaConf exception, naming the full key."""
    key = prefix + (getattr(exc, "full_key", None) or "")
    message = str(getattr(exc, "msg", None) or exc).split("\n")[0]
    if "not in struct" in message or re.search(r"Key '[^']*' not in", message):
        return unknown_key(key)
    match = re.search(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", message)
    if match:
        return ConfigError(key, f"a value of type {match.group(2).lower()}", match.group(1))
    return ConfigError(key, "", message=one_line(message))
