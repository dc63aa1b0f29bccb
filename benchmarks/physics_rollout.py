"""Batched rollout throughput of each shipped PDE model against a bare jit-compiled PhiFlow loop of the
same equations, measured in the same run (target: the wrapper costs < 20 %).

The wrapper is `model.rollout(state, coefficients, steps)`: torch tensors in, a `[B, steps, C, *space]`
torch tensor out. The bare loop is what one would write by hand with PhiFlow: the state kept as PhiML
tensors / PhiFlow fields, one `jit_compile`d function per stored frame, frames collected in a list.
Both run the same numerics (hyco.physics.ops, PhiFlow's advect/fluid), so the difference is the
wrapper: torch <-> PhiFlow conversion, coefficient handling and stacking the frames.

    python -m benchmarks.physics_rollout [--quick]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results" / "physics_rollout.json"
MODELS = ("burgers_1d", "burgers_2d", "heat_2d", "heat_2d_dirichlet", "advection_2d", "smoke_2d")


def _bare_frame(model) -> Callable:
    """A hand-written jit-compiled PhiFlow frame function for `model`'s equations (no hyco wrapper)."""
    from phi import math
    from phi.physics import advect, fluid

    from hyco.physics.ops import PERIODIC, advect_periodic, diffusion

    name, h, n = model.registered_name(), model.substep_dt, model.substeps
    dx = model.dx

    if name == "burgers":
        def frame(v, nu):
            for _ in range(n):
                v = v + h * diffusion(v, nu, dx, PERIODIC)
                v = advect_periodic(v, v, h, dx)
            return v
    elif name == "heat":
        def frame(t, kappa):
            for _ in range(n):
                t = t + h * diffusion(t, kappa, dx, model.boundary)
            return t
    elif name == "advection":
        def frame(rho, flow, m):
            for _ in range(n):
                rho = advect_periodic(rho, flow * m, h, dx)
            return rho
    elif name == "smoke":
        solve = model.solve

        def frame(v, s, b):  # PhiFlow fields in and out, as in PhiFlow's own smoke demos
            for _ in range(n):
                s = advect.mac_cormack(s, v, h)
                v = advect.semi_lagrangian(v, v, h) + h * (s.with_values(s.values * b) * (0, 1)).at(v)
                v, _ = fluid.make_incompressible(v, (), solve)
            return v, s
    else:
        raise ValueError(f"no bare loop for {name!r}")
    return math.jit_compile(frame)


def _bare_runner(model, state: torch.Tensor, coefficients: dict, grad: bool) -> Callable[[int], float | None]:
    """Prepare the bare loop's inputs once (outside the timing) and return `run(steps)`; with `grad`, run
    also backpropagates a mean-square loss of all frames to the coefficients."""
    from phi import math

    from hyco.physics.convert import tensor_to_field, tensor_to_grid_values, tensor_to_values

    frame = _bare_frame(model)
    templates = model.templates()
    if grad:  # as in the wrapper: every input of a traced function requires grad (see PhysicalModel)
        state = state.detach().requires_grad_(True)
        coefficients = {k: v.detach().requires_grad_(True) for k, v in coefficients.items()}
    leaves = list(coefficients.values())
    parts = torch.split(state, [f.channels for f in model.fields], dim=1)
    name = model.registered_name()
    with model.phiml_context():
        coeffs = [tensor_to_grid_values(coefficients[s.name], model.ndim) for s in model.coefficient_specs]
        if name == "smoke":
            inputs = [tensor_to_field(p, t) for p, t in zip(parts, templates)]
        else:
            inputs = [tensor_to_values(p, t) for p, t in zip(parts, templates)]

    def run(steps: int):
        frames = []
        with model.phiml_context():
            if name == "advection":
                rho, flow = inputs
                for _ in range(steps):
                    rho = frame(rho, flow, *coeffs)
                    frames.append(rho)
            elif name == "smoke":
                v, s = inputs
                for _ in range(steps):
                    v, s = frame(v, s, *coeffs)
                    frames += [v.values, s.values]
            else:
                x = inputs[0]
                for _ in range(steps):
                    x = frame(x, *coeffs)
                    frames.append(x)
            if not grad:
                return frames
            loss = sum(math.mean(f ** 2, dim=f.shape).native() for f in frames)
        return torch.autograd.grad(loss, leaves)

    return run


def _wrapper_runner(model, state: torch.Tensor, coefficients: dict, grad: bool) -> Callable[[int], object]:
    def run(steps: int):
        if not grad:
            return model.rollout(state, coefficients, steps)
        leaves = {k: v.detach().requires_grad_(True) for k, v in coefficients.items()}
        out = model.rollout(state, leaves, steps)
        return torch.autograd.grad(out.square().mean(), list(leaves.values()))

    return run


def _stats(rates: list[float]) -> dict:
    return {"min": min(rates), "median": statistics.median(rates), "max": max(rates)}


def _same_numbers(model, state, coefficients) -> float:
    """Max |difference| between the wrapper's and the bare loop's second frame (sanity: same equations)."""
    from hyco.physics.convert import FieldLayout

    wrapped = model.rollout(state, coefficients, 2)[:, -1]
    last = _bare_runner(model, state, coefficients, grad=False)(2)
    layouts = [FieldLayout(t) for t, f in zip(model.templates(), model.fields) if f.dynamic]
    last = last[-len(layouts):]
    bare = torch.cat([layout.to_tensor(v) for layout, v in zip(layouts, last)], dim=1)
    return float((wrapped[:, : bare.shape[1]] - bare).abs().max())


def bench_model(config: str, batch: int, steps: int, repeats: int, grad: bool = False,
                resolution: list[int] | None = None, device: str = "cpu") -> dict:
    from hyco.physics import build_physics, shipped_config

    section = shipped_config(config)
    if resolution is not None:
        section["resolution"] = resolution[: len(section["resolution"])]
    model = build_physics(section, device, torch.float32)
    state = model.initial_state(batch, seed=0)
    coefficients = model.true_coefficients()
    with torch.no_grad():
        max_diff = _same_numbers(model, state, coefficients)
    wrapped = _wrapper_runner(model, state, coefficients, grad)
    bare = _bare_runner(model, state, coefficients, grad)
    with torch.set_grad_enabled(grad):
        for _ in range(3):  # warm-up: PhiML traces on the first calls
            wrapped(2)
            bare(2)
        wrapper, reference = [], []
        for _ in range(repeats):  # interleaved, so that machine load affects both alike
            t0 = time.perf_counter()
            wrapped(steps)
            t1 = time.perf_counter()
            bare(steps)
            t2 = time.perf_counter()
            wrapper.append(batch * steps / (t1 - t0))
            reference.append(batch * steps / (t2 - t1))
    w, r = _stats(wrapper), _stats(reference)
    return {
        "config": config, "model": model.registered_name(), "mode": "gradient" if grad else "forward",
        "resolution": list(model.resolution), "batch": batch, "frames": steps, "substeps": model.substeps,
        "repeats": repeats, "wrapper_sample_frames_per_s": w, "bare_sample_frames_per_s": r,
        "overhead": 1.0 - w["median"] / r["median"],  # the headline figure (target < 0.2)
        "overhead_best": 1.0 - w["max"] / r["max"],  # best run of each: less sensitive to machine load
        "max_abs_diff_vs_bare": max_diff,
    }


def run(quick: bool = False) -> dict:
    """Measure every shipped model; returns (and writes) the JSON-able results."""
    from hyco.utils.io import atomic_write_json
    from hyco.utils.warnings import silence_library_warnings

    silence_library_warnings()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    rows = []
    for grad in (False, True):  # generation-like rollouts, then physical-training-like rollouts + backward
        for config in MODELS:
            smoke = config.startswith("smoke")
            if quick:
                rows.append(bench_model(config, batch=4, steps=4 if smoke else 10, repeats=3, grad=grad,
                                        resolution=[16, 16] if smoke else None, device=device))
            else:
                rows.append(bench_model(config, batch=8, steps=8 if smoke else 24, repeats=7, grad=grad,
                                        device=device))
    import phi
    import phiml

    result = {
        "benchmark": "physics_rollout",
        "what": "sample-frames/s of model.rollout vs a bare jit-compiled PhiFlow loop (median of repeats); "
                "mode gradient: rollout + backward of a mean-square loss to the coefficients",
        "target": "overhead < 0.20",
        "quick": quick,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": device, "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
        "versions": {"torch": torch.__version__, "phiflow": phi.__version__, "phiml": phiml.__version__},
        "models": rows,
    }
    atomic_write_json(result, RESULTS)
    return result


def print_table(result: dict) -> None:
    print(f"physics rollout throughput ({result['device']}, {result['torch_threads']} threads, "
          f"quick={result['quick']}); sample-frames/s min / median / max")
    header = (f"{'config':<18} {'mode':<8} {'grid':>8} {'B':>3} {'wrapper':>28} {'bare loop':>28} "
              f"{'overhead':>9} {'(best)':>7}")
    print(header)
    print("-" * len(header))
    for row in result["models"]:
        w, r = row["wrapper_sample_frames_per_s"], row["bare_sample_frames_per_s"]
        fmt = "{min:8.0f} {median:8.0f} {max:8.0f}"
        grid = "x".join(map(str, row["resolution"]))
        print(f"{row['config']:<18} {row['mode']:<8} {grid:>8} {row['batch']:>3} {fmt.format(**w):>28} "
              f"{fmt.format(**r):>28} {row['overhead']:>8.1%} {row['overhead_best']:>7.1%}")
    print(f"written to {RESULTS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small grids and few repeats")
    args = parser.parse_args()
    print_table(run(quick=args.quick))


if __name__ == "__main__":
    main()
