"""`hyco train mode=synthetic` end to end on a tiny 1D Burgers experiment (real data pipeline)."""

import json

import pytest
import torch

from hyco.config.validate import load
from hyco.errors import DataError
from hyco.tasks.context import RunContext
from hyco.tasks.train import train_synthetic
from hyco.training.synthetic import SyntheticTrainer, load_surrogate

TINY = ["physics=burgers_1d", "physics.resolution=[16]", "network.width=4", "network.depth=1", "network.blocks=1",
        "data.num_train=2", "data.num_val=1", "data.num_test=0", "data.num_frames=5", "data.rollout_steps=2",
        "trainer.synthetic.batch_size=4", "trainer.synthetic.curriculum=[1,2]", "device=cpu"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


def _train(run_dir, data_dir, epochs, *extra):
    cfg = load("train", [*TINY, f"output_dir={run_dir}", f"data_dir={data_dir}",
                         f"trainer.synthetic.epochs={epochs}", *extra])
    torch.manual_seed(cfg.seed)  # what the CLI does before every task
    return train_synthetic(RunContext(cfg=cfg, run_dir=run_dir, device=torch.device("cpu")))


def _records(run_dir):
    return [json.loads(line) for line in (run_dir / "synthetic" / "metrics.jsonl").read_text().splitlines()]


def test_train_writes_the_run_directory_and_resumes_exactly(tmp_path, data_dir, monkeypatch):
    straight = tmp_path / "straight"
    summary = _train(straight, data_dir, 3)
    out = straight / "synthetic"
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl", "summary.json", "tensorboard"}
    assert summary["epoch"] == 3 and summary["best_val_loss"] is not None
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3
    assert [r["rollout_steps"] for r in _records(straight)] == [1, 1, 2]  # curriculum over the whole run
    model = load_surrogate(out / "best.pt")
    assert model.ndim == 1 and model.num_channels == 1

    interrupted = tmp_path / "interrupted"
    original = SyntheticTrainer._train_epoch

    def crash_in_epoch_two(trainer, *args):
        if trainer.epoch == 1:
            raise KeyboardInterrupt
        return original(trainer, *args)

    monkeypatch.setattr(SyntheticTrainer, "_train_epoch", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _train(interrupted, data_dir, 3)
    monkeypatch.setattr(SyntheticTrainer, "_train_epoch", original)
    with pytest.raises(DataError, match="resume=true"):
        _train(interrupted, data_dir, 3)
    _train(interrupted, data_dir, 3, "resume=true")
    assert [r["train_loss"] for r in _records(interrupted)] == [r["train_loss"] for r in _records(straight)]
    a = torch.load(out / "last.pt", weights_only=True)["model"]
    b = torch.load(interrupted / "synthetic" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
