"""What a `network` section may hold: the shipped networks' `Params` (what the network is) and the runtime
options (how it runs, `hyco.networks.runtime`).

They live here, below the networks layer and free of torch, so that a config is validated (and a bad one
refused) without importing torch; each network class keeps its `Params` as an alias of its dataclass here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyco.errors import ConfigError, require

if TYPE_CHECKING:
    import torch

# config value -> torch `padding_mode`; "periodic" matches the periodic boundaries most PDEs here use
PADDING_MODES = {"periodic": "circular", "zeros": "zeros", "replicate": "replicate", "reflect": "reflect"}
ACTIVATION_NAMES = ("gelu", "relu", "silu", "tanh")  # hyco.networks.layers.ACTIVATIONS holds their modules
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
        require(self.activation in ACTIVATION_NAMES, "activation", f"one of {', '.join(ACTIVATION_NAMES)}",
                self.activation)


@dataclass
class UNetParams(CommonParams):
    blocks: int = 2  # conv blocks per level
    norm: str = "group"  # group | none
    max_width: int = 256  # channel cap of the deepest levels

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.blocks >= 1, "blocks", "an integer >= 1", self.blocks)
        require(self.norm in NORMS, "norm", f"one of {', '.join(NORMS)}", self.norm)
        require(self.max_width >= self.width, "max_width", f"an integer >= width ({self.width})",
                self.max_width)


@dataclass
class ResNetParams(CommonParams):
    depth: int = 4  # residual blocks
    norm: str = "none"  # group | none

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.norm in NORMS, "norm", f"one of {', '.join(NORMS)}", self.norm)


@dataclass
class ConvNetParams(CommonParams):
    depth: int = 3  # hidden conv layers


@dataclass
class FNOParams:
    width: int = 16  # channels of the Fourier layers
    depth: int = 4  # Fourier layers
    modes: int = 8  # Fourier modes kept per axis
    activation: str = "gelu"  # gelu | relu | silu | tanh
    residual: bool = True  # predict the increment: next = state + net(state)

    def __post_init__(self) -> None:
        require(self.width >= 1, "width", "an integer >= 1", self.width)
        require(self.depth >= 1, "depth", "an integer >= 1", self.depth)
        require(self.modes >= 1, "modes", "an integer >= 1", self.modes)
        require(self.activation in ACTIVATION_NAMES, "activation", f"one of {', '.join(ACTIVATION_NAMES)}",
                self.activation)


# name -> Params of every network that `hyco.networks` registers (tests/networks check that the two agree)
PARAMS: dict[str, type] = {"convnet": ConvNetParams, "fno": FNOParams, "resnet": ResNetParams, "unet": UNetParams}


RUNTIME_KEYS = ("compile", "channels_last", "autocast", "periodic_pad")
SWITCHES = ("auto", "true", "false")
AUTOCAST = ("auto", "off", "bf16", "fp16")
PERIODIC_PADS = ("fold", "torch")


def _switch(value: Any, key: str) -> str:
    """auto | true | false from YAML (a bool or one of the three strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).lower()
    if text not in SWITCHES:
        raise ConfigError(f"network.{key}", "auto, true or false", value)
    return text


@dataclass(frozen=True)
class RuntimeOptions:
    """`compile`: torch.compile the network (auto: on CUDA only; see the module docstring).
    `channels_last`: NHWC / NDHWC memory layout of activations and weights (auto: 2D and 3D grids of the
    networks that gain from it, see `uses_channels_last`).
    `autocast`: mixed precision of the network's forward pass on CUDA (auto: bf16 where the GPU supports it,
    else off; fp16 trains with a gradient scaler); on CPU only an explicit `bf16` applies (auto and fp16
    stay in the model's dtype).
    `periodic_pad`: `fold` (one circular pad with a folding backward, hyco.networks.layers) or `torch`
    (torch's own circular padding, kept as the benchmarks' baseline)."""

    compile: str = "auto"
    channels_last: str = "auto"
    autocast: str = "auto"
    periodic_pad: str = "fold"

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> RuntimeOptions:
        autocast = str(section.get("autocast", "auto")).lower()
        if section.get("autocast") is False:
            autocast = "off"
        if autocast not in AUTOCAST:
            raise ConfigError("network.autocast", f"one of {', '.join(AUTOCAST)}", section.get("autocast"))
        pad = str(section.get("periodic_pad", "fold"))
        if pad not in PERIODIC_PADS:
            raise ConfigError("network.periodic_pad", f"one of {', '.join(PERIODIC_PADS)}", section.get("periodic_pad"))
        return cls(compile=_switch(section.get("compile", "auto"), "compile"),
                   channels_last=_switch(section.get("channels_last", "auto"), "channels_last"),
                   autocast=autocast, periodic_pad=pad)

    def compiles(self, device: torch.device) -> bool:
        return self.compile == "true" or (self.compile == "auto" and device.type == "cuda")

    def uses_channels_last(self, ndim: int, net: torch.nn.Module) -> bool:
        """`auto` follows the network class's `channels_last_auto` (measured: True for the convolutional
        UNet, ResNet and ConvNet, 0.65-0.85x of a step; False for the FNO, whose FFTs got 1.1x slower)."""
        if ndim not in (2, 3) or self.channels_last == "false":
            return False
        return self.channels_last == "true" or bool(getattr(net, "channels_last_auto", False))

    def autocast_dtype(self, device: torch.device) -> torch.dtype | None:
        """The reduced precision of the forward pass on `device`, or None (full precision)."""
        if self.autocast == "off":
            return None
        import torch

        if device.type == "cpu":  # bf16 on request only (fast where the CPU has AVX512-BF16 or AMX)
            return torch.bfloat16 if self.autocast == "bf16" else None
        if device.type != "cuda":
            return None

        if self.autocast == "fp16":
            return torch.float16
        if self.autocast == "bf16" or torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None


def split_section(section: Mapping[str, Any]) -> tuple[dict[str, Any], RuntimeOptions]:
    """(the architecture's keys, the runtime options) of a `network` config section."""
    options = RuntimeOptions.from_section(section)
    return {k: v for k, v in section.items() if k not in RUNTIME_KEYS}, options


def strip_runtime(rest: dict[str, Any]) -> dict[str, Any]:
    """The architecture's keys of a `network` section, after checking its runtime options."""
    return split_section(rest)[0]
