"""Building blocks shared by the shipped networks, dimension-agnostic (1D, 2D, 3D).

Every network is written once and picks Conv1d/Conv2d/Conv3d from the grid's number of spatial
dimensions, so a 1D and a 2D experiment share the same code and config keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from hyco.config.errors import require

# config value -> torch `padding_mode`; "periodic" matches the periodic boundaries most PDEs here use
PADDING_MODES = {"periodic": "circular", "zeros": "zeros", "replicate": "replicate", "reflect": "reflect"}
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}
NORMS = ("group", "none")


@dataclass
class CommonParams:
    """Keys every shipped network understands (`network.*`)."""

    width: int = 16  # channels of the first hidden layer
    depth: int = 2  # network-specific: levels (UNet), residual blocks (ResNet), hidden layers (ConvNet)
    kernel_size: int = 3
    padding: str = "periodic"  # periodic | zeros | replicate | reflect
    activation: str = "gelu"  # gelu | relu | silu | tanh
    residual: bool = True  # predict the increment: next = state + net(state)

    def __post_init__(self) -> None:
        require(self.width >= 1, "width", "an integer >= 1", self.width)
        require(self.depth >= 0, "depth", "an integer >= 0", self.depth)
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "an odd integer >= 1",
                self.kernel_size)
        require(self.padding in PADDING_MODES, "padding", f"one of {', '.join(PADDING_MODES)}", self.padding)
        require(self.activation in ACTIVATIONS, "activation", f"one of {', '.join(ACTIVATIONS)}",
                self.activation)


def conv(ndim: int, in_channels: int, out_channels: int, kernel_size: int, padding: str,
         stride: int = 1) -> nn.Module:
    """A 'same'-padded convolution (for stride 1) of the right dimensionality."""
    require(1 <= ndim <= 3, "ndim", "1, 2 or 3 spatial dimensions", ndim)
    cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[ndim - 1]
    return cls(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
               padding_mode=PADDING_MODES[padding])


def norm(kind: str, channels: int) -> nn.Module:
    """GroupNorm works for any ndim and any batch size (BatchNorm would couple the samples)."""
    if kind == "none":
        return nn.Identity()
    return nn.GroupNorm(math.gcd(8, channels), channels)


def activation(name: str) -> nn.Module:
    return ACTIVATIONS[name]()


class ConvBlock(nn.Sequential):
    """conv -> norm -> activation."""

    def __init__(self, ndim: int, in_channels: int, out_channels: int, params: CommonParams, norm_kind: str):
        super().__init__(conv(ndim, in_channels, out_channels, params.kernel_size, params.padding),
                         norm(norm_kind, out_channels), activation(params.activation))


def zero_init(module: nn.Module) -> nn.Module:
    """Start the last layer at zero so an untrained residual surrogate is the identity map:
    training then starts from 'nothing changes', a far better guess than random increments."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def spatial_ndim(x: torch.Tensor) -> int:
    return x.dim() - 2
