"""Differentiable PDE models with learnable coefficients; importing this registers the shipped ones."""

from __future__ import annotations

import torch

from hyco.physics.base import FieldSpec, PhysicalModel
from hyco.physics.coefficients import CoefficientParams, CoefficientSpec, ProfileParams, coefficient
from hyco.utils.warnings import silence_library_warnings

silence_library_warnings()

from hyco.physics import burgers  # noqa: E402,F401  (registers the shipped models)


def build_physics(section: dict, device: torch.device | str = "cpu", dtype: torch.dtype | str = torch.float32
                  ) -> PhysicalModel:
    """The model named by the `physics` config section (`name` + the model's Params keys)."""
    from hyco.config.validate import model_params

    cls, params = model_params(dict(section), "physics")
    return cls(params, device=device, dtype=dtype)


__all__ = ["CoefficientParams", "CoefficientSpec", "FieldSpec", "PhysicalModel", "ProfileParams", "build_physics",
           "coefficient"]
