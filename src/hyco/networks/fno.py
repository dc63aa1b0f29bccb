"""FNO: a small Fourier neural operator (Li et al. 2021) for periodic domains, in 1D, 2D and 3D.

Each layer adds a global convolution, done as a learned linear map on the lowest `modes` Fourier
modes per axis, to a pointwise 1x1 convolution. The FFT makes it periodic by construction, which
suits the periodic PDEs here; on grids smaller than 2*modes the available modes are used.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from hyco.config.models.networks import FNOParams
from hyco.config.registry import NETWORKS
from hyco.networks.layers import activation, conv, zero_init


class SpectralConv(nn.Module):
    """Linear map of the lowest Fourier modes, channels to channels; higher modes are dropped.

    A real FFT keeps only non-negative frequencies on the last axis; every other axis has a block of
    positive and one of negative low frequencies, hence 2**(ndim-1) weight blocks ("corners").
    """

    def __init__(self, channels: int, modes: int, ndim: int):
        super().__init__()
        self.modes = modes
        self.ndim = ndim
        corners = 2 ** (ndim - 1)
        scale = 1.0 / channels
        # real storage [..., 2] viewed as complex: plain float parameters for optimizers and DDP
        self.weight = nn.Parameter(scale * torch.rand(corners, channels, channels, *([modes] * ndim), 2))

    def _corner_slices(self, shape: tuple[int, ...], modes: list[int]) -> list[tuple[slice, ...]]:
        *leading, _ = shape
        options = [(slice(0, m), slice(n - m, n)) for n, m in zip(leading, modes[:-1])]
        return [(*choice, slice(0, modes[-1])) for choice in itertools.product(*options)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = tuple(x.shape[2:])
        dims = tuple(range(2, x.dim()))
        spectrum = torch.fft.rfftn(x, dim=dims)
        # usable modes per axis: no overlap of the positive and negative blocks
        modes = [max(1, min(self.modes, n // 2)) for n in shape[:-1]] + [min(self.modes, shape[-1] // 2 + 1)]
        weight = torch.view_as_complex(self.weight)
        weight = weight[(slice(None), slice(None), slice(None), *[slice(0, m) for m in modes])]
        out = torch.zeros(x.shape[0], weight.shape[2], *spectrum.shape[2:], dtype=spectrum.dtype, device=x.device)
        for corner, slices in enumerate(self._corner_slices(shape, modes)):
            block = spectrum[(slice(None), slice(None), *slices)]
            out[(slice(None), slice(None), *slices)] = torch.einsum("bi...,io...->bo...", block, weight[corner])
        return torch.fft.irfftn(out, s=shape, dim=dims)


@NETWORKS.register("fno")
class FNO(nn.Module):
    """Lift (1x1) -> `depth` Fourier layers -> project (1x1, 1x1)."""

    Params = FNOParams  # the config schema, torch-free (hyco.config.models.networks)

    def __init__(self, params: Params, in_channels: int, out_channels: int, ndim: int):
        super().__init__()
        self.params = params
        self.lift = conv(ndim, in_channels, params.width, 1, "zeros")
        self.spectral = nn.ModuleList(SpectralConv(params.width, params.modes, ndim) for _ in range(params.depth))
        self.pointwise = nn.ModuleList(conv(ndim, params.width, params.width, 1, "zeros")
                                       for _ in range(params.depth))
        self.act = activation(params.activation)
        self.project = nn.Sequential(conv(ndim, params.width, params.width, 1, "zeros"),
                                     activation(params.activation),
                                     zero_init(conv(ndim, params.width, out_channels, 1, "zeros")))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lift(x)
        for index, (spectral, pointwise) in enumerate(zip(self.spectral, self.pointwise)):
            x = spectral(x) + pointwise(x)
            if index < len(self.spectral) - 1:
                x = self.act(x)
        return self.project(x)
