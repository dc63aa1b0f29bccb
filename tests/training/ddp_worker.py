"""A tiny synthetic training run through hyco's loader and trainer, run by `torchrun` (2 ranks) or imported by
a test (1 process): tests/training/test_torchrun.py compares the two."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from hyco.config.schema import SyntheticTrainerConfig
from hyco.data.chunks import ChunkStore
from hyco.data.loader import make_loader
from hyco.networks import build_network
from hyco.training.synthetic import SyntheticTrainer
from hyco.utils.distributed import process_group

GLOBAL_BATCH = 4
EPOCHS = 3


class TinyWindows:
    """10 random windows (state [1, 8], two target frames) with the loader's dataset interface."""

    def __init__(self, count: int = 10):
        generator = torch.Generator().manual_seed(0)
        self.inputs = torch.randn(count, 1, 8, generator=generator)
        self.targets = torch.randn(count, 2, 1, 8, generator=generator)
        self.seen: list[int] = []  # the window indices this process trained on, in order

    def __len__(self) -> int:
        return len(self.inputs)

    def batch(self, indices: torch.Tensor):
        self.seen += indices.tolist()
        return self.inputs[indices], self.targets[indices]


def train(run_dir: Path) -> dict:
    torch.manual_seed(0)
    model = build_network({"name": "convnet", "width": 4, "depth": 1}, 1, [0], 1)
    trainer = SyntheticTrainer(SyntheticTrainerConfig(epochs=EPOCHS, batch_size=GLOBAL_BATCH), model,
                               run_dir=run_dir, progress=False)
    data = TinyWindows()
    loader = make_loader(data, GLOBAL_BATCH, shuffle=True, seed=3)
    metrics = trainer.train(loader, EPOCHS)
    trainer.close()
    return {"weights": {k: v.clone() for k, v in model.state_dict().items()}, "samples": metrics["samples"],
            "loss": metrics["train_loss"], "steps": int(trainer.optimizer.state_dict()["state"][0]["step"]),
            "seen": data.seen, "batches": len(loader)}


def generate_chunks(count: int = 5) -> dict:
    """A store of `count` generated chunks (HYCO's partner windows): which this process made, what it holds."""
    made: list[int] = []

    def produce(k: int):
        made.append(k)
        return (torch.full((2, 3), float(k)), torch.arange(4.0) * k)

    store = ChunkStore(produce, count, "memory")
    return {"made": made, "held": [store.chunk(k) for k in range(count)]}


if __name__ == "__main__":
    out = Path(sys.argv[1])
    with process_group("auto", torch.device("cpu")) as ranks:
        result = train(out / "run") | generate_chunks()
        torch.save(result, out / f"rank{ranks.rank}.pt")
