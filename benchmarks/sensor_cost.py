"""What point sensors add to a physical epoch: the objective's value and gradient with 64 sensors read by linear
interpolation against the same windows observed at 64 grid points through a mask.

2D heat 32x32 (heat_2d's model: a learned diffusivity FIELD, periodic), float32, 8 trajectories of 4 steps
rolled out from frame 0 in one batched objective (`PhysicalObjective`, what every L-BFGS-B or Adam iteration of
an epoch evaluates). Cases, interleaved: `grid mask` (64 random cells, `observation.spatial=random_points`'s
form) and `sensors` (64 uniform random points, `observation.spatial=sensors`'s form: a mask of 0 on the grid plus
the stencils and readings). Reported: seconds per evaluation (value + gradient), median [min-max], and the
sensors' overhead over the mask (target <= 20 %).

    OMP_NUM_THREADS=1 PYTHONPATH=src python -m benchmarks.sensor_cost [--quick]
"""

from __future__ import annotations

import argparse

import torch

from benchmarks.common import figure, interleaved, seconds, write_json
from hyco.config.schema import PhysicalTrainerConfig
from hyco.data.batch import Batch
from hyco.data.sensors import sample, stencils
from hyco.physics import build_physics, shipped_config
from hyco.training.physical import PhysicalObjective, PhysicalTrainer

SENSORS = 64


def batches(model, sims: int, steps: int) -> dict[str, Batch]:
    """The same windows observed at 64 grid cells (a mask) and by 64 off-grid sensors."""
    state = model.initial_state(sims, seed=0)
    with torch.no_grad():
        targets = model.rollout(state, model.true_coefficients(), steps)
    shape = tuple(targets.shape[3:])
    generator = torch.Generator().manual_seed(0)
    cells = torch.randperm(targets[0, 0, 0].numel(), generator=generator)[:SENSORS]
    mask = torch.zeros(targets[0, 0, 0].numel())
    mask[cells] = 1.0
    mask = mask.reshape(1, 1, 1, *shape).expand(sims, steps, 1, *shape).contiguous()
    points = torch.rand(steps, SENSORS, len(shape), generator=generator, dtype=torch.float64)
    index, weight = stencils(points, shape, periodic=True)
    index, weight = index.expand(sims, -1, -1, -1), weight.float().expand(sims, -1, -1, -1)
    zeros = torch.zeros_like(mask)
    return {"grid mask": Batch(state, targets, mask),
            "sensors": Batch(state, targets, zeros, sensor_index=index, sensor_weight=weight,
                             sensor_values=sample(targets, index, weight))}


def run(quick: bool = True) -> dict:
    sims, steps, repeats = (4, 2, 5) if quick else (8, 4, 15)
    model = build_physics(shipped_config("heat_2d"))
    trainer = PhysicalTrainer(PhysicalTrainerConfig(), model, true_coefficients=model.true_coefficients())
    raw = {k: v.detach().clone().requires_grad_(k in trainer.learnable) for k, v in trainer.raw.items()}
    learned = [raw[k] for k in trainer.learnable]

    def evaluation(batch: Batch):
        objective = PhysicalObjective(trainer, [batch], (1.0, 1.0))
        return lambda: torch.autograd.grad(objective(raw), learned)

    cases = {name: seconds(evaluation(batch)) for name, batch in batches(model, sims, steps).items()}
    result = interleaved(cases, repeats=repeats, warmup=2, reference="grid mask")
    overhead = result["ratio"]["sensors"] - 1.0
    result.update({"quick": quick, "model": "heat 2D 32x32, diffusivity field, float32", "sims": sims,
                   "steps": steps, "sensors": SENSORS, "overhead": overhead})
    result["figures"] = [figure("physical objective with 64 sensors: overhead over a 64-point grid mask", overhead,
                                target=0.20, higher_is_better=False, note="value + gradient per evaluation")]
    return result


def table(result: dict) -> str:
    lines = [f"Sensor cost, {result['model']}: {result['sims']} trajectories x {result['steps']} steps, "
             f"{result['sensors']} sensors (s per value + gradient, median [min-max])"]
    for name, s in result["cases"].items():
        lines.append(f"  {name:10s} {s['median']:.4f} [{s['min']:.4f}-{s['max']:.4f}]")
    lines.append(f"  overhead of the sensors: {result['overhead']:+.1%} (target <= 20 %)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    print(table(result))
    print(write_json("sensor_cost", result))
    return result


if __name__ == "__main__":
    main()
