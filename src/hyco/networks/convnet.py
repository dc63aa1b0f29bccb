"""ConvNet: plain stacked convolutions; the smallest baseline."""

from __future__ import annotations

import torch
from torch import nn

from hyco.config.models.networks import ConvNetParams
from hyco.config.registry import NETWORKS
from hyco.networks.layers import ConvBlock, conv, zero_init


@NETWORKS.register("convnet")
class ConvNet(nn.Module):
    """`depth` hidden conv layers of `width` channels, then a 1x1 projection."""

    channels_last_auto = True  # network.channels_last=auto: NHWC is faster for its convolutions

    Params = ConvNetParams  # the config schema, torch-free (hyco.config.models.networks)

    def __init__(self, params: Params, in_channels: int, out_channels: int, ndim: int):
        super().__init__()
        self.params = params
        layers = []
        channels = in_channels
        for _ in range(params.depth):
            layers.append(ConvBlock(ndim, channels, params.width, params, "none"))
            channels = params.width
        self.hidden = nn.Sequential(*layers)
        self.head = zero_init(conv(ndim, channels, out_channels, 1, params.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))
