"""How a network is run, as opposed to what it computes: `network.compile`, `network.channels_last`,
`network.autocast` and `network.periodic_pad`.

These keys change the speed of a step, not the function it computes (up to round-off), so they are kept
out of the architecture fingerprint: a checkpoint trained one way loads into a network run another way.
Measured on the issue-16 configuration (UNet width 64, depth 3, 64x64, batch 16, CPU, one thread; see
benchmarks/README.md): the folded periodic pad and channels-last memory layout cut a training step to about
0.65x of torch's circular pad in the default layout; `torch.compile` (inductor, CPU) took 7 minutes to
compile the step and was then slower than eager, which is why `compile: auto` compiles on CUDA only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from hyco.config.errors import ConfigError

log = logging.getLogger(__name__)

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
    else off; fp16 trains with a gradient scaler); CPU runs always stay in the model's dtype.
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
        if device.type != "cuda" or self.autocast == "off":
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


def memory_format(ndim: int) -> torch.memory_format:
    return {2: torch.channels_last, 3: torch.channels_last_3d}.get(ndim, torch.contiguous_format)


class CompiledNetwork:
    """`torch.compile` of a module, falling back to the module itself, with ONE warning line, when compiling
    is impossible or fails (no C++ compiler for inductor, an unsupported Python, a backend error). The
    compiled code is kept for the object's life, so compile time is paid once per network per run (and
    inductor's on-disk cache, `TORCHINDUCTOR_CACHE_DIR`, keeps it across runs)."""

    def __init__(self, module: torch.nn.Module, compiler: Callable[[torch.nn.Module], Callable] | None = None):
        self.module = module
        self.compiler = compiler or torch.compile
        self.compiled: Callable | None = None
        self.failed: str | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.failed is None:
            try:
                if self.compiled is None:
                    self.compiled = self.compiler(self.module)
                return self.compiled(x)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eagerly
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                self.failed = f"{type(exc).__name__}: {first}"[:200]
                log.warning("network.compile: torch.compile failed (%s); running the network eagerly", self.failed)
        return self.module(x)
