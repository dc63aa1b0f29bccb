"""ResNet: a stack of residual blocks at one resolution; a strong local-stencil learner."""

from __future__ import annotations

import torch
from torch import nn

from hyco.config.models.networks import CommonParams, ResNetParams
from hyco.config.registry import NETWORKS
from hyco.networks.layers import activation, conv, norm, zero_init


class ResidualBlock(nn.Module):
    def __init__(self, ndim: int, width: int, params: CommonParams, norm_kind: str):
        super().__init__()
        self.body = nn.Sequential(
            conv(ndim, width, width, params.kernel_size, params.padding), norm(norm_kind, width),
            activation(params.activation),
            conv(ndim, width, width, params.kernel_size, params.padding), norm(norm_kind, width))
        self.act = activation(params.activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


@NETWORKS.register("resnet")
class ResNet(nn.Module):
    """Lift to `width` channels, `depth` residual blocks, project to the output channels."""

    channels_last_auto = True  # network.channels_last=auto: NHWC is faster for its convolutions

    Params = ResNetParams  # the config schema, torch-free (hyco.config.models.networks)

    def __init__(self, params: Params, in_channels: int, out_channels: int, ndim: int):
        super().__init__()
        self.params = params
        self.lift = nn.Sequential(conv(ndim, in_channels, params.width, params.kernel_size, params.padding),
                                  activation(params.activation))
        self.blocks = nn.Sequential(*[ResidualBlock(ndim, params.width, params, params.norm)
                                      for _ in range(params.depth)])
        self.head = zero_init(conv(ndim, params.width, out_channels, 1, params.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.lift(x)))
