"""How a network is run, as opposed to what it computes: `network.compile`, `network.channels_last`,
`network.autocast` and `network.periodic_pad`.

These keys change the speed of a step, not the function it computes (up to round-off), so they are kept
out of the architecture fingerprint: a checkpoint trained one way loads into a network run another way.
Measured on the issue-16 configuration (UNet width 64, depth 3, 64x64, batch 16, CPU, one thread; see
benchmarks/README.md): the folded periodic pad and channels-last memory layout cut a training step to about
0.65x of torch's circular pad in the default layout; `torch.compile` (inductor, CPU) took 7 minutes to
compile the step and was then slower than eager, which is why `compile: auto` compiles on CUDA only.
bf16 autocast on CPU (AVX512-BF16) cut a HYCO cycle to 0.76x of float32 but left the network 2 % less
accurate, so on CPU it applies only when asked for (`autocast: bf16`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch

from hyco.config.models.networks import (  # noqa: F401  (the options are parsed below torch; re-exported)
    AUTOCAST,
    PERIODIC_PADS,
    RUNTIME_KEYS,
    SWITCHES,
    RuntimeOptions,
    split_section,
)

log = logging.getLogger(__name__)


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
