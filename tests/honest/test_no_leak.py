"""No model ever reads an unobserved value of the real data (observation.states=initial).

The stored truth's unobserved values of the train and validation splits are poisoned (NaN in one copy,
huge numbers in another); physical-only, synthetic-only and HYCO training must give finite results that
are identical between the two copies: no loss, coefficient, checkpoint, trust weight or normalisation
statistic depends on what no observer could see.
"""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from hyco.config.validate import load
from hyco.data.observation import Observation
from hyco.data.store import TrajectoryStore
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import Experiment, open_experiment
from hyco.tasks.train import train_hybrid, train_physical, train_synthetic

OVERRIDES = ["experiment=burgers_2d_quick", "observation=centre", "observation.temporal=every_k",
             "observation.every_k=2", "observation.noise_level=0.02", "physics.resolution=[12,12]",
             "data.num_frames=7", "trainer.physical.epochs=2", "trainer.physical.iterations=3",
             "trainer.synthetic.epochs=2", "trainer.hybrid.cycles=2", "trainer.hybrid.synthetic_epochs_per_cycle=1"]


def _poison(source: Path, target: Path, value: float) -> None:
    shutil.copy(source, target)
    store = TrajectoryStore(source)
    from hyco.config.schema import ObservationConfig

    observation = Observation.from_store(ObservationConfig(spatial="centre", temporal="every_k", every_k=2), store)
    hidden = ~observation.known.expand(store.num_frames, store.num_channels, *store.spatial_shape).numpy()
    with h5py.File(target, "r+") as f:
        data = f["trajectories"]
        for split in ("train", "val"):
            start, stop = store.split_range(split)
            for row in range(start, stop):
                frames = data[row]
                frames[hidden] = value
                data[row] = frames
    store.close()


def _train(tmp: Path, dataset: Path, name: str) -> dict:
    cfg = load("train", [*OVERRIDES, f"output_dir={tmp / name}", f"data_dir={tmp / 'data'}"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    exp = open_experiment(ctx)
    exp = Experiment(ctx=ctx, physics=exp.physics, dataset_path=dataset)
    train_physical(ctx, exp)
    train_synthetic(ctx, exp)
    train_hybrid(ctx, exp)
    out = {}
    for mode in ("physical", "synthetic", "hyco"):
        lines = (ctx.run_dir / mode / "metrics.jsonl").read_text().splitlines()
        out[mode] = [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds") and k not in
                      ("peak_rss_mb", "samples_per_s", "time")} for line in lines]
    out["weights"] = torch.load(ctx.run_dir / "synthetic" / "last.pt", weights_only=True)["model"]
    out["hyco_weights"] = torch.load(ctx.run_dir / "hyco" / "synthetic" / "last.pt", weights_only=True)["model"]
    out["coefficients"] = json.loads((ctx.run_dir / "hyco" / "summary.json").read_text())["coefficients"]
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leak")
    cfg = load("generate", [*OVERRIDES, f"output_dir={tmp / 'gen'}", f"data_dir={tmp / 'data'}"])
    exp = open_experiment(RunContext(cfg, tmp / "gen", torch.device("cpu")))
    _poison(exp.dataset_path, tmp / "nan.h5", float("nan"))
    _poison(exp.dataset_path, tmp / "huge.h5", 1e30)
    return {name: _train(tmp, tmp / f"{name}.h5", name) for name in ("nan", "huge")}


def _flat(values):
    if isinstance(values, dict):
        return [x for k in sorted(values) for x in _flat(values[k])]
    if isinstance(values, list):
        return [x for v in values for x in _flat(v)]
    if isinstance(values, torch.Tensor):
        return values.flatten().tolist()
    return [values] if isinstance(values, (int, float)) and not isinstance(values, bool) else []


def test_poisoned_hidden_values_change_nothing(runs):
    nan, huge = runs["nan"], runs["huge"]
    numbers = _flat(nan)
    assert len(numbers) > 100 and np.isfinite(numbers).all()
    assert any("physical_interaction_weight" in line for line in nan["hyco"])  # trust weights were computed
    assert nan["physical"] == huge["physical"] and nan["synthetic"] == huge["synthetic"]
    assert nan["hyco"] == huge["hyco"] and nan["coefficients"] == huge["coefficients"]
    for key in ("weights", "hyco_weights"):
        assert all(torch.equal(nan[key][k], huge[key][k]) for k in nan[key])
