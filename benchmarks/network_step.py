"""The issue-16 network's training step against what this CPU's convolutions allow: how much cheaper can
a step get without changing the function it computes?

The step: the UNet of `benchmarks.time_to_accuracy` (width 64, depth 3, max_width 64, GELU, group norm,
periodic padding; 3 input channels -- the 2D velocity and the viscosity field -- and 2 predicted), one
batch of 16 states at 64x64, forward through hyco's Surrogate, MSE, backward, Adam, one torch thread.
Three ways of running it, interleaved (`benchmarks.common.interleaved`, CPU-seconds of this process):

- `baseline`: torch's circular pad per convolution, the default memory layout (issue 16's baseline);
- `new`: the shipped defaults (folded periodic pad, channels-last);
- `bf16`: the shipped defaults with `network.autocast=bf16` (opt-in on CPU: 2-3 % less accurate).

The roof: the step's floating-point operations (torch's FlopCounterMode) divided by the rate of ONE bare
3x3, 64-to-64-channel convolution at the same batch and grid, trained (forward and backward, channels-last)
-- the network's most efficient layer in isolation, with nothing else to do. `floor_over_baseline` is that
ideal step's time over the baseline step's: no step computing these operations at this precision can be
cheaper on this machine. The profile's share of the step spent in convolutions says how much of the step
anything else (pads, norms, activations, the optimizer) still holds.

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m benchmarks.network_step [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from benchmarks.common import figure, interleaved, machine, write_json

SECTION = {"name": "unet", "width": 64, "depth": 3, "max_width": 64}
RUNTIMES = {"baseline": {"periodic_pad": "torch", "channels_last": "false"},
            "new": {},
            "bf16": {"autocast": "bf16"}}
IN_CHANNELS, DYNAMIC = 3, [0, 1]
CONV_OPS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution",
            "aten::mkldnn_convolution_backward")


def _surrogates(quick: bool) -> dict[str, torch.nn.Module]:
    from hyco.networks import build_network

    section = {**SECTION, "width": 16, "max_width": 16} if quick else SECTION
    torch.manual_seed(0)
    base = build_network(section, IN_CHANNELS, DYNAMIC, 2)
    nets = {}
    for name, runtime in RUNTIMES.items():
        nets[name] = build_network({**section, **runtime}, IN_CHANNELS, DYNAMIC, 2)
        nets[name].load_state_dict(copy.deepcopy(base.state_dict()))
    return nets


def _stepper(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(net(x), target)
        loss.backward()
        optimizer.step()

    return step


def _cpu_seconds(fn, repeats: int):
    def case() -> float:
        start = time.process_time()
        for _ in range(repeats):
            fn()
        return (time.process_time() - start) / repeats

    return case


def _flops(step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def _conv_share(step) -> float:
    """Share of the step's self CPU time in convolution kernels (forward and backward)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONV_OPS)
    return conv / total if total else 0.0


def conv_training_flops(batch: int, channels: int, grid: int) -> int:
    """Multiply-adds x 2 of a 3x3, channels-to-channels, 'same' convolution on a grid x grid batch, forward
    and backward (the input's and the weight's gradients: two more convolutions of the same size)."""
    return 3 * 2 * batch * channels * channels * 9 * grid * grid


def _bare_conv_rate(batch: int, channels: int, grid: int, dtype: torch.dtype, repeats: int) -> float:
    """FLOP/s of one bare 3x3 convolution, forward and backward (input and weight gradients)."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(memory_format=torch.channels_last)
    x = torch.randn(batch, channels, grid, grid).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    flops = conv_training_flops(batch, channels, grid)

    def step() -> None:
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            y = conv(x)
        y.float().sum().backward()

    step()
    return flops / _cpu_seconds(step, repeats)()


def run(quick: bool = False) -> dict:
    batch, grid = (4, 32) if quick else (16, 64)
    repeats, inner = (2, 1) if quick else (5, 2)
    torch.manual_seed(1)
    x = torch.randn(batch, IN_CHANNELS, grid, grid)
    target = torch.randn(batch, IN_CHANNELS, grid, grid)  # the surrogate returns the whole next state
    nets = _surrogates(quick)
    steps = {name: _stepper(net, x, target) for name, net in nets.items()}
    measured = interleaved({name: _cpu_seconds(step, inner) for name, step in steps.items()}, repeats, warmup=1,
                           reference="baseline")
    flops = _flops(steps["new"])
    channels = 16 if quick else 64
    roof = {"fp32": _bare_conv_rate(batch, channels, grid, torch.float32, 3 if quick else 5),
            "bf16": _bare_conv_rate(batch, channels, grid, torch.bfloat16, 3 if quick else 5)}
    seconds = {name: s["median"] for name, s in measured["cases"].items()}
    result = {
        "benchmark": "network_step", "quick": quick, "network": SECTION, "batch": batch, "grid": grid,
        "step_cpu_seconds": measured["cases"], "over_baseline": measured["ratio"],
        "gflop_per_step": flops / 1e9,
        "gflop_per_second": {name: flops / s / 1e9 for name, s in seconds.items()},
        "bare_conv_gflop_per_second": {k: v / 1e9 for k, v in roof.items()},
        "conv_share_of_step": {name: _conv_share(steps[name]) for name in ("new", "bf16")},
        "floor_over_baseline": {k: flops / v / seconds["baseline"] for k, v in roof.items()},
        "machine": machine(),
    }
    result["figures"] = [
        figure("network step, new defaults / baseline", result["over_baseline"]["new"], higher_is_better=False),
        figure("network step, bf16 / baseline", result["over_baseline"]["bf16"], higher_is_better=False),
        figure("ideal fp32 step (every FLOP at a bare conv's rate) / baseline", result["floor_over_baseline"]["fp32"],
               higher_is_better=False),
        figure("ideal bf16 step / baseline", result["floor_over_baseline"]["bf16"], higher_is_better=False),
        figure("share of the new step in convolutions", result["conv_share_of_step"]["new"]),
    ]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small network and grid (a smoke test)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    result = run(quick=args.quick)
    for name, s in result["step_cpu_seconds"].items():
        print(f"{name:9s} {s['median']:.3f} CPU-s/step  ({result['over_baseline'][name]:.2f}x baseline, "
              f"{result['gflop_per_second'][name]:.0f} GFLOP/s)")
    print(f"step: {result['gflop_per_step']:.1f} GFLOP; bare 3x3 conv trained: "
          + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in result["bare_conv_gflop_per_second"].items()))
    print("ideal step / baseline step: "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["floor_over_baseline"].items()))
    print("share of the step in convolutions: "
          + ", ".join(f"{k} {v:.0%}" for k, v in result["conv_share_of_step"].items()))
    print(f"written: {write_json('network_step', result)}")


if __name__ == "__main__":
    main()
