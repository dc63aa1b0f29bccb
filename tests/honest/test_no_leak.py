"""No model ever reads an unobserved value of the real data (observation.states=initial, initial=observed).

The stored truth's unobserved values are poisoned (NaN in one copy, huge numbers in another): in the train
and validation splits every hidden value, frame 0 included (`observation.initial=observed`: frame 0 too is
known only where observed); in the held-out test split the hidden values of frame 0, where every evaluated
rollout starts (its later frames are the judge's, read in full by design). Physical-only, synthetic-only,
HYCO and the compute-matched network alone, trained and then evaluated on each copy, must give finite
results that are identical between the two poisons AND identical to a run on the clean file: no loss,
coefficient, checkpoint, trust weight, normalisation statistic, filled initial state or evaluated rollout
depends on what no observer could see.
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
from hyco.tasks.evaluate import ROLLOUTS_FILE, evaluate
from hyco.tasks.experiment import Experiment, open_experiment
from hyco.tasks.train import train_hybrid, train_physical, train_synthetic, train_synthetic_matched

OVERRIDES = ["experiment=burgers_2d_quick", "observation=centre", "observation.temporal=every_k",
             "observation.every_k=2", "observation.noise_level=0.02", "observation.initial=observed",
             "physics.resolution=[12,12]", "data.num_frames=7", "data.num_test=2", "trainer.physical.epochs=2",
             "trainer.physical.iterations=3", "trainer.synthetic.epochs=2", "trainer.hybrid.cycles=2",
             "trainer.hybrid.synthetic_epochs_per_cycle=1", "evaluation.animation=false"]
TIMING = ("peak_rss_mb", "samples_per_s", "time", "train_seconds", "completion_seconds", "checkpoint")


def _hidden(store: TrajectoryStore, config) -> np.ndarray:
    observation = Observation.from_store(config, store)
    assert observation.hides_initial  # frame 0 is only partly known: the case this test is about
    return ~observation.known.expand(store.num_frames, store.num_channels, *store.spatial_shape).numpy()


def _poison(source: Path, target: Path, value: float, config) -> int:
    """Copy `source` to `target` with `value` in every hidden place a model could read; returns how many."""
    shutil.copy(source, target)
    with TrajectoryStore(source) as store:
        hidden = _hidden(store, config)
        ranges = {split: store.split_range(split) for split in ("train", "val", "test")}
    test_frame0 = np.zeros_like(hidden)
    test_frame0[0] = hidden[0]
    poisoned = 0
    with h5py.File(target, "r+") as f:
        data = f["trajectories"]
        for split, where in (("train", hidden), ("val", hidden), ("test", test_frame0)):
            for row in range(*ranges[split]):
                frames = data[row]
                frames[where] = value
                data[row] = frames
                poisoned += int(where.sum())
    return poisoned


def _run(tmp: Path, dataset: Path, name: str) -> dict:
    cfg = load("run", [*OVERRIDES, f"output_dir={tmp / name}", f"data_dir={tmp / 'data'}"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    exp = open_experiment(ctx)
    exp = Experiment(ctx=ctx, physics=exp.physics, dataset_path=dataset)
    train_physical(ctx, exp)
    train_synthetic(ctx, exp)
    train_hybrid(ctx, exp)
    train_synthetic_matched(ctx, exp)
    metrics = evaluate(exp)
    out = {}
    for mode in ("physical", "synthetic", "hyco", "synthetic_matched"):
        lines = (ctx.run_dir / mode / "metrics.jsonl").read_text().splitlines()
        out[mode] = [{k: v for k, v in json.loads(line).items() if not k.startswith("seconds") and k not in TIMING}
                     for line in lines]
    out["weights"] = torch.load(ctx.run_dir / "synthetic" / "last.pt", weights_only=True)["model"]
    out["hyco_weights"] = torch.load(ctx.run_dir / "hyco" / "synthetic" / "last.pt", weights_only=True)["model"]
    out["coefficients"] = json.loads((ctx.run_dir / "hyco" / "summary.json").read_text())["coefficients"]
    out["evaluation"] = _untimed(metrics["runs"])
    out["predictions"] = torch.load(ctx.run_dir / ROLLOUTS_FILE, weights_only=True)["predictions"]
    out["initial_states"] = exp.initial_states("test")
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("leak")
    cfg = load("generate", [*OVERRIDES, f"output_dir={tmp / 'gen'}", f"data_dir={tmp / 'data'}"])
    exp = open_experiment(RunContext(cfg, tmp / "gen", torch.device("cpu")))
    clean = tmp / "clean.h5"
    shutil.copy(exp.dataset_path, clean)
    counts = {name: _poison(exp.dataset_path, tmp / f"{name}.h5", value, cfg.observation)
              for name, value in (("nan", float("nan")), ("huge", 1e30))}
    out = {name: _run(tmp, tmp / f"{name}.h5", name) for name in ("clean", "nan", "huge")}
    out["counts"] = counts
    return out


def _untimed(values):
    """`values` without the clock's readings at any depth (a posterior's `seconds` sits inside `uncertainty`, HYCO's
    `phase_seconds` in its entry)."""
    if isinstance(values, dict):
        return {k: _untimed(v) for k, v in values.items() if k not in TIMING and not k.endswith("seconds")}
    return values


def _flat(values):
    if isinstance(values, dict):
        return [x for k in sorted(values) for x in _flat(values[k])]
    if isinstance(values, list):
        return [x for v in values for x in _flat(v)]
    if isinstance(values, torch.Tensor):
        return values.flatten().tolist()
    return [values] if isinstance(values, (int, float)) and not isinstance(values, bool) else []


def _same(a: dict, b: dict) -> None:
    for key in ("physical", "synthetic", "hyco", "synthetic_matched", "coefficients", "evaluation"):
        assert a[key] == b[key], key
    for key in ("weights", "hyco_weights", "predictions"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key
    assert torch.equal(a["initial_states"], b["initial_states"])


def test_poisoned_hidden_values_change_nothing(runs):
    assert runs["counts"]["nan"] > 1000  # hidden values of frame 0 and later frames, in all three splits
    nan, huge, clean = runs["nan"], runs["huge"], runs["clean"]
    numbers = _flat({k: v for k, v in nan.items()})
    assert len(numbers) > 100 and np.isfinite(numbers).all()
    assert any("physical_interaction_weight" in line for line in nan["hyco"])  # trust weights were computed
    assert set(nan["evaluation"]) == {"physical", "synthetic", "hyco_physical", "hyco_synthetic", "synthetic_matched"}
    _same(nan, huge)  # between two poisons
    _same(nan, clean)  # and against the clean truth: the hidden values were never read, whatever they hold
