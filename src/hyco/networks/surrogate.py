"""`Surrogate`: a network turned into a one-step model of the full PDE state.

The raw networks map channels to channels; the surrogate adds what every experiment needs: static
channels (e.g. a known velocity) as extra inputs that are copied, not predicted; per-channel
normalisation from dataset statistics, stored as buffers so they are saved with the weights; optional
residual prediction; autoregressive rollouts; and a fingerprint of the architecture so a checkpoint
is never loaded into a different network.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from hyco.networks.runtime import CompiledNetwork, RuntimeOptions, memory_format, split_section
from hyco.networks.stats import identity_stats
from hyco.utils.threads import poll as poll_threads


def _as_channel_buffer(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """[C] -> [1, C, 1, ...] so it broadcasts against [B, C, *space]."""
    values = torch.as_tensor(values, dtype=torch.float32).reshape(-1)
    return values.reshape(1, -1, *([1] * ndim)).clone()


class Surrogate(nn.Module):
    """One-step model: full state `[B, C, *s]` -> full next state `[B, C, *s]`."""

    def __init__(self, net: nn.Module, num_channels: int, dynamic_channels: Sequence[int], ndim: int,
                 residual: bool = True, stats: Mapping[str, torch.Tensor] | None = None,
                 config: Mapping[str, Any] | None = None, runtime: RuntimeOptions | None = None,
                 coordinates: bool = False):
        super().__init__()
        dynamic = [int(c) for c in dynamic_channels]
        if not dynamic or sorted(set(dynamic)) != dynamic or dynamic[0] < 0 or dynamic[-1] >= num_channels:
            raise ValueError(f"dynamic_channels: expected sorted distinct indices in [0, {num_channels}), "
                             f"got {list(dynamic_channels)}")
        self.net = net
        self.num_channels = num_channels
        self.dynamic_channels = dynamic
        self.ndim = ndim
        self.residual = residual
        self.coordinates = coordinates  # sin/cos of the cell positions as extra inputs (`network.coordinates`)
        # JSON-able description of the architecture; its hash guards checkpoint loading
        self.config = dict(config or {}) | {"num_channels": num_channels, "dynamic_channels": dynamic,
                                            "ndim": ndim, "residual": residual}
        self.register_buffer("dynamic_index", torch.tensor(dynamic, dtype=torch.long), persistent=False)
        self.set_stats(stats or identity_stats(num_channels, len(dynamic)))
        self.set_runtime(runtime or RuntimeOptions())

    # --- how the network runs (hyco.networks.runtime): speed, not the function computed -----------------
    def set_runtime(self, runtime: RuntimeOptions) -> None:
        """Apply `network.compile / channels_last / autocast / periodic_pad` (see RuntimeOptions)."""
        from hyco.networks.layers import PERIODIC_CONVS

        self.runtime = runtime
        self._compiled: dict[str, CompiledNetwork] = {}
        for module in self.net.modules():
            if isinstance(module, PERIODIC_CONVS):
                module.fold_backward = runtime.periodic_pad == "fold"
        channels_last = runtime.uses_channels_last(self.ndim, self.net)
        self.net.to(memory_format=memory_format(self.ndim) if channels_last else torch.contiguous_format)

    def grad_scaling(self, device: torch.device) -> bool:
        """Whether training needs a gradient scaler (fp16 autocast: small gradients would underflow)."""
        return self.runtime.autocast_dtype(torch.device(device)) == torch.float16

    def _run_net(self, x: torch.Tensor) -> torch.Tensor:
        runtime = self.runtime
        if runtime.uses_channels_last(self.ndim, self.net):
            x = x.contiguous(memory_format=memory_format(self.ndim))
        net = self.net
        if runtime.compiles(x.device):
            net = self._compiled.setdefault("net", CompiledNetwork(self.net))
        dtype = runtime.autocast_dtype(x.device)
        if dtype is None:
            out = net(x)
        else:
            with torch.autocast(x.device.type, dtype=dtype):
                out = net(x)
            out = out.to(x.dtype)
        return out.contiguous()

    def __getstate__(self) -> dict[str, Any]:
        """Copies (e.g. the frozen predictors of hyco.training.predictors) do not share or copy the compiled
        code: they compile again if they are trained, else run eagerly."""
        state = dict(self.__dict__)
        state["_compiled"] = {}
        return state

    def set_stats(self, stats: Mapping[str, torch.Tensor]) -> None:
        """Install normalisation statistics (see `hyco.networks.stats.compute_stats`)."""
        expected = {"mean": self.num_channels, "std": self.num_channels,
                    "delta_mean": len(self.dynamic_channels), "delta_std": len(self.dynamic_channels)}
        for name, size in expected.items():
            value = torch.as_tensor(stats[name])
            if value.numel() != size:
                raise ValueError(f"stats[{name!r}]: expected {size} values, got {value.numel()}")
            if name.endswith("std") and not bool((value > 0).all()):
                raise ValueError(f"stats[{name!r}]: expected positive values, got {value.tolist()}")
            buffer = _as_channel_buffer(value, self.ndim)
            if hasattr(self, name) and isinstance(getattr(self, name), torch.Tensor):
                current = getattr(self, name)
                setattr(self, name, buffer.to(device=current.device, dtype=current.dtype))
            else:
                self.register_buffer(name, buffer)

    def stats(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name).reshape(-1).detach().cpu().clone()
                for name in ("mean", "std", "delta_mean", "delta_std")}

    def fingerprint(self) -> str:
        """Stable hash of the architecture config (not of the weights or statistics)."""
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        if state.dim() != self.ndim + 2 or state.shape[1] != self.num_channels:
            raise ValueError(f"state: expected [B, {self.num_channels}, <{self.ndim} spatial dims>], "
                             f"got shape {tuple(state.shape)}")
        poll_threads()  # the thread count follows other processes' load (hyco.utils.threads)
        inputs = (state - self.mean) / self.std
        if self.coordinates:
            inputs = torch.cat([inputs, position_channels(inputs)], dim=1)
        out = self._run_net(inputs)
        current = state.index_select(1, self.dynamic_index)
        if self.residual:
            dynamic = current + out * self.delta_std + self.delta_mean
        else:
            dynamic = out * self.std.index_select(1, self.dynamic_index) + self.mean.index_select(
                1, self.dynamic_index)
        if len(self.dynamic_channels) == self.num_channels:
            return dynamic
        return state.index_copy(1, self.dynamic_index, dynamic)

    def rollout(self, state: torch.Tensor, steps: int) -> torch.Tensor:
        """Autoregressive prediction of frames t+1..t+steps: `[B, steps, C, *s]`."""
        frames = []
        for _ in range(steps):
            state = self(state)
            frames.append(state)
        if not frames:
            return state.new_empty((state.shape[0], 0, *state.shape[1:]))
        return torch.stack(frames, dim=1)


def position_channels(like: torch.Tensor) -> torch.Tensor:
    """[B, 2 ndim, *space]: sin and cos of 2 pi (i + 1/2) / n along each spatial axis (in tensor order), the
    position of every cell centre as a fraction of the grid, periodic like the shipped domains."""
    batch, space = like.shape[0], like.shape[2:]
    channels = []
    for axis, n in enumerate(space):
        angle = 2 * torch.pi * (torch.arange(n, device=like.device, dtype=like.dtype) + 0.5) / n
        shape = [1] * len(space)
        shape[axis] = n
        for wave in (torch.sin(angle), torch.cos(angle)):
            channels.append(wave.reshape(shape).expand(*space))
    return torch.stack(channels).unsqueeze(0).expand(batch, -1, *space)


def build_network(section: Mapping[str, Any], in_channels: int, dynamic_channels: Sequence[int], ndim: int,
                  stats: Mapping[str, torch.Tensor] | None = None) -> Surrogate:
    """Surrogate from the `network` config section (`name` + the network's `Params` keys).

    `in_channels` is the full state's channel count (static channels included); the network predicts
    only `dynamic_channels`. The runtime keys (hyco.networks.runtime) are applied but not part of the
    architecture's config or fingerprint. Raises ConfigError naming the key on a bad section.
    """
    from hyco.config.registry import model_params

    section, runtime = split_section(dict(section))
    cls, params = model_params(section, "network")
    dynamic = list(dynamic_channels)
    params_dict = dataclasses.asdict(params) if dataclasses.is_dataclass(params) else dict(params)
    coordinates = bool(params_dict.pop("coordinates", False))
    if coordinates:  # off: the fingerprint of every network made before the key existed is unchanged
        params_dict["coordinates"] = True
    net = cls(params, in_channels + (2 * ndim if coordinates else 0), len(dynamic), ndim)
    residual = bool(params_dict.get("residual", True))
    config = {"name": section["name"], "params": params_dict}
    return Surrogate(net, in_channels, dynamic, ndim, residual=residual, stats=stats, config=config, runtime=runtime,
                     coordinates=coordinates)
