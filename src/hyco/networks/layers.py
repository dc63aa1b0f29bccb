"""Building blocks shared by the shipped networks, dimension-agnostic (1D, 2D, 3D).

Every network is written once and picks Conv1d/Conv2d/Conv3d from the grid's number of spatial
dimensions, so a 1D and a 2D experiment share the same code and config keys.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn

from hyco.config.models.networks import (  # noqa: F401  (the config schema, re-exported)
    ACTIVATION_NAMES,
    NORMS,
    PADDING_MODES,
    CommonParams,
)
from hyco.errors import require

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}  # by ACTIVATION_NAMES


class _PeriodicPad(torch.autograd.Function):
    """Circular padding of the last `ndim` axes whose backward folds the halo back onto the edges.

    torch's own circular pad builds its output with slice assignments, so autograd runs one zero-filled
    full-size buffer and one copy per slice in the backward pass: at 64x64 with 64 channels that made the
    pads cost about as much as the convolutions' own backward. Here the backward is one copy of the
    interior plus one addition per halo block (8 small blocks in 2D)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, pad: int, ndim: int) -> torch.Tensor:
        ctx.pad, ctx.ndim = pad, ndim
        return _wrap(x, pad, ndim)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        p, ndim = ctx.pad, ctx.ndim
        axes = range(grad.dim() - ndim, grad.dim())
        sizes = [grad.shape[a] - 2 * p for a in axes]
        inner = grad
        for axis, n in zip(axes, sizes):
            inner = inner.narrow(axis, p, n)
        inner = inner.clone()
        # every halo block (each axis: interior, low halo or high halo, not all interior) adds onto the cells
        # it copies: the low halo holds the last p cells of an axis, the high halo its first p cells
        for parts in itertools.product(("interior", "low", "high"), repeat=ndim):
            if all(part == "interior" for part in parts):
                continue
            source, target = grad, inner
            for axis, n, part in zip(axes, sizes, parts):
                if part == "interior":
                    source = source.narrow(axis, p, n)
                elif part == "low":
                    source, target = source.narrow(axis, 0, p), target.narrow(axis, n - p, p)
                else:
                    source, target = source.narrow(axis, n + p, p), target.narrow(axis, 0, p)
            target.add_(source)
        return inner, None, None


def _wrap(x: torch.Tensor, p: int, ndim: int) -> torch.Tensor:
    """The circular pad written into one buffer of `x`'s memory format (F.pad's circular mode returns a
    contiguous tensor, so a channels-last network would convert every activation twice)."""
    first = x.dim() - ndim
    shape = [*x.shape[:first], *(n + 2 * p for n in x.shape[first:])]
    fmt = _memory_format(x)
    out = torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)
    interior = out
    for axis in range(first, x.dim()):
        interior = interior.narrow(axis, p, x.shape[axis])
    interior.copy_(x)
    for axis in range(first, x.dim()):  # axis by axis, each over the rows already filled: corners come right
        view = out
        for other in range(axis + 1, x.dim()):
            view = view.narrow(other, p, x.shape[other])
        n = x.shape[axis]
        view.narrow(axis, 0, p).copy_(view.narrow(axis, n, p))
        view.narrow(axis, n + p, p).copy_(view.narrow(axis, p, p))
    return out


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous():
        return torch.channels_last_3d
    return torch.contiguous_format


def periodic_pad(x: torch.Tensor, pad: int, ndim: int) -> torch.Tensor:
    """`x` wrapped around by `pad` cells on each side of its last `ndim` axes (differentiable)."""
    if pad == 0:
        return x
    return _PeriodicPad.apply(x, pad, ndim)


class _PeriodicConvMixin:
    """A convolution on a periodic domain: one circular pad (see `_PeriodicPad`), then a valid convolution.
    Same parameters (and state-dict keys) as the torch module with `padding_mode="circular"`; `fold_backward`
    False falls back to torch's own circular pad (kept as the benchmarks' baseline)."""

    fold_backward = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ndim = x.dim() - 2
        pad = self.periodic_pad
        if pad and self.fold_backward:
            x = _PeriodicPad.apply(x, pad, ndim)
        elif pad:
            x = F.pad(x, (pad,) * (2 * ndim), mode="circular")
        return self._conv_forward(x, self.weight, self.bias)


class PeriodicConv1d(_PeriodicConvMixin, nn.Conv1d):
    pass


class PeriodicConv2d(_PeriodicConvMixin, nn.Conv2d):
    pass


class PeriodicConv3d(_PeriodicConvMixin, nn.Conv3d):
    pass


PERIODIC_CONVS = (PeriodicConv1d, PeriodicConv2d, PeriodicConv3d)


def conv(ndim: int, in_channels: int, out_channels: int, kernel_size: int, padding: str,
         stride: int = 1) -> nn.Module:
    """A 'same'-padded convolution (for stride 1) of the right dimensionality."""
    require(1 <= ndim <= 3, "ndim", "1, 2 or 3 spatial dimensions", ndim)
    if padding == "periodic":
        module = PERIODIC_CONVS[ndim - 1](in_channels, out_channels, kernel_size, stride=stride, padding=0)
        module.periodic_pad = kernel_size // 2
        return module
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
