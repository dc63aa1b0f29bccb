"""Differentiable PDE models with learnable coefficients; importing this registers the shipped ones."""

from __future__ import annotations

import torch
from phiml.backend import set_global_default_backend
from phiml.backend.torch import TORCH

from hyco.config.models.physics import RUNTIME_KEYS, DomainParams
from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.coefficients import CoefficientParams, CoefficientSpec, ProfileParams, coefficient
from hyco.utils.log import route_library_console_output
from hyco.utils.warnings import silence_library_warnings

silence_library_warnings()
route_library_console_output()
# PhiML creates its own constants (and, in backward passes outside any context, gradients of implicit
# solves) with the global default backend: make that torch, as `from phi.torch.flow import *` would.
set_global_default_backend(TORCH)

from hyco.config.registry import model_params  # noqa: E402
from hyco.physics import advection, burgers, gray_scott, heat, smoke  # noqa: E402,F401  (registers the shipped models)


def build_physics(section: dict, device: torch.device | str = "cpu", dtype: torch.dtype | str = torch.float32
                  ) -> PhysicalModel:
    """The model named by the `physics` config section (`name` + the model's Params keys)."""
    cls, params = model_params(dict(section), "physics")
    model = cls(params, device=device, dtype=dtype)
    for key in RUNTIME_KEYS:  # run-time choices, not part of the model's params or its dataset's hash
        if key in section:
            setattr(model, key, bool(section[key]))
    return model


def shipped_config(name: str) -> dict:
    """The `physics` section of a shipped config file `hyco/conf/physics/<name>.yaml` as a plain dict."""
    from importlib.resources import files

    from omegaconf import OmegaConf

    path = files("hyco.conf") / "physics" / f"{name}.yaml"
    if not path.is_file():
        from hyco.errors import ConfigError

        raise ConfigError("physics", "the name of a file in hyco/conf/physics", name)
    return OmegaConf.to_container(OmegaConf.load(str(path)))


__all__ = ["CoefficientParams", "CoefficientSpec", "DomainParams", "FieldSpec", "PhysicalModel", "ProfileParams",
           "build_physics", "coefficient", "shipped_config"]
