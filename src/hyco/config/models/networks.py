"""What a `network` section may hold: the shipped networks' `Params` (what the network is) and the runtime
options (how it runs, `hyco.networks.runtime`).

They live here, below the networks layer and free of torch, so that a config is validated (and a bad one
refused) without importing torch; each network class keeps its `Params` as an alias of its dataclass here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hyco.config.fields import check_settings, setting
from hyco.errors import ConfigError, require

if TYPE_CHECKING:
    import torch

# config value -> torch `padding_mode`; "periodic" matches the periodic boundaries most PDEs here use
PADDING_MODES = {"periodic": "circular", "zeros": "zeros", "replicate": "replicate", "reflect": "reflect"}
ACTIVATION_NAMES = ("gelu", "relu", "silu", "tanh")  # hyco.networks.layers.ACTIVATIONS holds their modules
NORMS = ("group", "none")


@dataclass
class CommonParams:
    """Keys every shipped convolutional network understands (`network.*`)."""

    width: int = setting(16, "Channels of the first hidden layer.", at_least=1)
    depth: int = setting(2, "Levels (UNet), residual blocks (ResNet) or hidden layers (ConvNet).", at_least=0)
    kernel_size: int = setting(3, "Convolution kernel size per axis.", allowed="an odd integer >= 1")
    padding: str = setting("periodic", "How convolutions pad at the domain's edges; `periodic` matches the periodic "
                                       "PDEs.", choices=tuple(PADDING_MODES))
    activation: str = setting("gelu", "The nonlinearity.", choices=ACTIVATION_NAMES)
    residual: bool = setting(True, "Predict the increment: next = state + net(state) (an untrained network is then "
                                   "the identity).")
    coordinates: bool = setting(False, "Also feed the network sin and cos of each cell's position per axis (2 channels "
                                       "per axis): a term that depends on where it acts (e.g. a decay in one region) "
                                       "is then something it can learn; a convolution alone is blind to position.")

    def __post_init__(self) -> None:
        check_settings(self)
        require(self.kernel_size >= 1 and self.kernel_size % 2 == 1, "kernel_size", "an odd integer >= 1",
                self.kernel_size)


@dataclass
class UNetParams(CommonParams):
    blocks: int = setting(2, "Convolution blocks per level.", at_least=1)
    norm: str = setting("group", "Normalisation after each convolution.", choices=NORMS)
    max_width: int = setting(256, "Channel cap of the deepest levels.", allowed="an integer >= width")

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.max_width >= self.width, "max_width", f"an integer >= width ({self.width})",
                self.max_width)


@dataclass
class ResNetParams(CommonParams):
    depth: int = 4  # residual blocks
    norm: str = setting("none", "Normalisation after each convolution.", choices=NORMS)


@dataclass
class ConvNetParams(CommonParams):
    depth: int = 3  # hidden conv layers


@dataclass
class FNOParams:
    width: int = setting(16, "Channels of the Fourier layers.", at_least=1)
    depth: int = setting(4, "Fourier layers.", at_least=1)
    modes: int = setting(8, "Fourier modes kept per axis.", at_least=1)
    activation: str = setting("gelu", "The nonlinearity.", choices=ACTIVATION_NAMES)
    residual: bool = setting(True, "Predict the increment: next = state + net(state).")
    coordinates: bool = setting(False, "Also feed the network sin and cos of each cell's position per axis (2 channels "
                                       "per axis): a term that depends on where it acts (e.g. a decay in one region) "
                                       "is then something it can learn; a convolution alone is blind to position.")

    def __post_init__(self) -> None:
        check_settings(self)


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

    compile: str = setting("auto", "torch.compile the network; `auto`: on CUDA only.", choices=SWITCHES)
    channels_last: str = setting("auto", "NHWC / NDHWC memory layout of activations and weights; `auto`: on 2D and "
                                         "3D grids for the networks that gain from it.", choices=SWITCHES)
    autocast: str = setting("auto", "Mixed precision of the forward pass; `auto`: bf16 on a CUDA GPU that supports "
                                    "it, else off; on CPU only an explicit `bf16` applies.", choices=AUTOCAST)
    periodic_pad: str = setting("fold", "Periodic padding: `fold` (one circular pad with a folding backward) or "
                                        "`torch` (torch's own, the benchmarks' baseline).", choices=PERIODIC_PADS)

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
