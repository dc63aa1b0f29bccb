"""The trainer under a (one-process) torch.distributed group: DDP wrapping, unwrapped checkpoints."""

import torch
import torch.distributed as dist

from hyco.config.schema import SyntheticTrainerConfig
from hyco.networks import build_network
from hyco.training.distributed import process_info
from hyco.training.synthetic import SyntheticTrainer


def test_trainer_runs_under_ddp_and_saves_unwrapped_weights(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        model = build_network({"name": "convnet", "width": 4, "depth": 1}, 1, [0], 1)
        trainer = SyntheticTrainer(SyntheticTrainerConfig(epochs=2, batch_size=2), model, run_dir=tmp_path / "run",
                                   progress=False)
        assert process_info().initialised and trainer._train_model is not model
        inputs, targets = torch.randn(4, 1, 8), torch.randn(4, 1, 1, 8)
        metrics = trainer.train([(inputs, targets)], 2)
        assert metrics["epoch"] == 2 and metrics["samples"] == 4
        saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
        assert not any(key.startswith("module.") for key in saved)
        assert saved.keys() == model.state_dict().keys()
    finally:
        dist.destroy_process_group()
    assert not process_info().initialised
