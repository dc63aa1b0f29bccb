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
        assert process_info().initialised
        assert isinstance(trainer._train_model, torch.nn.parallel.DistributedDataParallel)
        inputs, targets = torch.randn(4, 1, 8), torch.randn(4, 3, 1, 8)  # a 3-step rollout per backward
        metrics = trainer.train([(inputs, targets)], 2)
        assert metrics["epoch"] == 2 and metrics["samples"] == 4
        saved = torch.load(tmp_path / "run" / "last.pt", weights_only=True)["model"]
        assert not any(key.startswith("module.") for key in saved)
        assert saved.keys() == model.state_dict().keys()
    finally:
        dist.destroy_process_group()
    assert not process_info().initialised


def _ddp_worker(rank: int, world_size: int, tmp: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)  # same initial weights on every rank
        model = build_network({"name": "convnet", "width": 4, "depth": 1}, 1, [0], 1)
        g = torch.Generator().manual_seed(rank)  # a different shard of data per rank
        batch = (torch.randn(4, 1, 8, generator=g), torch.randn(4, 2, 1, 8, generator=g))
        trainer = SyntheticTrainer(SyntheticTrainerConfig(epochs=2, batch_size=4), model, run_dir=f"{tmp}/run",
                                   progress=False)
        metrics = trainer.train([batch], 2)
        torch.save({"weights": model.state_dict(), "samples": metrics["samples"], "loss": metrics["train_loss"]},
                   f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_keep_identical_weights_and_only_rank0_writes(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, str(tmp_path)), nprocs=2)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])  # gradients were averaged
    assert a["samples"] == b["samples"] == 8 and a["loss"] == b["loss"]  # metrics summed over ranks
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt", "metrics.jsonl", "tensorboard"]
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2  # one writer
