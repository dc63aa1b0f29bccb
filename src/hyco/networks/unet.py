"""UNet: multi-scale features for states whose dynamics act on several length scales."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyco.config.models.networks import UNetParams
from hyco.config.registry import NETWORKS
from hyco.errors import ConfigError
from hyco.networks.layers import ConvBlock, activation, conv, zero_init


@NETWORKS.register("unet")
class UNet(nn.Module):
    """Encoder of `depth` stride-2 levels (channels doubling), decoder with skip connections."""

    channels_last_auto = True  # network.channels_last=auto: NHWC is faster for its convolutions

    Params = UNetParams  # the config schema, torch-free (hyco.config.models.networks)

    def __init__(self, params: Params, in_channels: int, out_channels: int, ndim: int):
        super().__init__()
        self.params = params
        self.ndim = ndim
        widths = [min(params.width * 2**level, params.max_width) for level in range(params.depth + 1)]

        def stage(cin: int, cout: int) -> nn.Sequential:
            blocks = [ConvBlock(ndim, cin, cout, params, params.norm)]
            blocks += [ConvBlock(ndim, cout, cout, params, params.norm) for _ in range(params.blocks - 1)]
            return nn.Sequential(*blocks)

        self.stem = stage(in_channels, widths[0])
        self.down = nn.ModuleList()
        self.encoders = nn.ModuleList()
        for level in range(1, params.depth + 1):
            self.down.append(nn.Sequential(
                conv(ndim, widths[level - 1], widths[level], 3, params.padding, stride=2),
                activation(params.activation)))
            self.encoders.append(stage(widths[level], widths[level]))
        self.up = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in range(params.depth, 0, -1):
            self.up.append(conv(ndim, widths[level], widths[level - 1], 1, params.padding))
            self.decoders.append(stage(2 * widths[level - 1], widths[level - 1]))
        self.head = zero_init(conv(ndim, widths[0], out_channels, 1, params.padding))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        smallest = min(x.shape[2:])
        if smallest < 2**self.params.depth:
            raise ConfigError("network.depth", f"at most {max(smallest.bit_length() - 1, 0)} for a grid of "
                              f"{tuple(x.shape[2:])}", self.params.depth)
        skips = []
        x = self.stem(x)
        for down, encoder in zip(self.down, self.encoders):
            skips.append(x)
            x = encoder(down(x))
        for up, decoder in zip(self.up, self.decoders):
            skip = skips.pop()
            x = F.interpolate(up(x), size=skip.shape[2:], mode="nearest")
            x = decoder(torch.cat([x, skip], dim=1))
        return self.head(x)
