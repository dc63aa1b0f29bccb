"""HYCO with hidden states (completion, trust weights, best cycle) resumes to the uninterrupted result."""

from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import open_experiment
from hyco.tasks.train import train_hybrid
from hyco.training import hybrid as hybrid_module

OVERRIDES = ["experiment=burgers_2d_quick", "observation=centre", "observation.noise_level=0.02",
             "physics.resolution=[12,12]", "data.num_frames=6", "trainer.hybrid.cycles=2",
             "trainer.hybrid.synthetic_epochs_per_cycle=1"]


def _run(tmp: Path, name: str, resume: bool = False) -> RunContext:
    cfg = load("train", [*OVERRIDES, f"output_dir={tmp / name}", f"data_dir={tmp / 'data'}", f"resume={resume}"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    train_hybrid(ctx, open_experiment(ctx))
    return ctx


@pytest.mark.slow  # three HYCO runs of a real PDE (~45 CPU-s); the toy version runs in the default suite
def test_interrupted_hyco_resumes_exactly(tmp_path, monkeypatch):
    straight = _run(tmp_path, "straight")
    original = hybrid_module.HybridTrainer._run_cycle

    def interrupt_in_cycle_2(self, cycle, real):
        if cycle == 1:
            raise KeyboardInterrupt  # e.g. Ctrl-C halfway: the last checkpoint is the end of cycle 1
        return original(self, cycle, real)

    monkeypatch.setattr(hybrid_module.HybridTrainer, "_run_cycle", interrupt_in_cycle_2)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "interrupted")
    monkeypatch.setattr(hybrid_module.HybridTrainer, "_run_cycle", original)
    resumed = _run(tmp_path, "interrupted", resume=True)
    a = torch.load(straight.run_dir / "hyco" / "hybrid_last.pt", weights_only=True)
    b = torch.load(resumed.run_dir / "hyco" / "hybrid_last.pt", weights_only=True)
    assert a["cycle"] == b["cycle"] == 2 and a["best"] == b["best"] and a["errors"] == b["errors"]
    assert all(torch.equal(a["synthetic"]["model"][k], b["synthetic"]["model"][k]) for k in a["synthetic"]["model"])
    assert all(torch.equal(a["physical"]["raw"][k], b["physical"]["raw"][k]) for k in a["physical"]["raw"])
    assert not (resumed.run_dir / "cache" / "generated").exists()
