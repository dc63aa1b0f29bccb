"""REGRESSION PIN: `observation.states=full` (oracle states) reproduces the numbers of hyco before honest
observations.

The figures in RECORDED are not independent expectations: nothing but an earlier run of hyco says they are
right. They pin behaviour (a change of them means the oracle-state path now trains differently) and are to be
re-pinned, after a deliberate change, with the command that prints them:

    python -m tests.honest.test_states_full_regression

The independent checks of what the trainers compute are in tests/training/test_masked_by_hand.py and
tests/training/test_coupling_direction.py.

The reference figures were recorded with commit 2159be2 (before `observation.states` existed) on the same
tiny sparse experiment, without noise (the normalisation statistics now come from the observed, noisy
values; without noise they are the same as before). Since then the loaders' shuffling is seeded through
`hyco.utils.seed` (one seed-derivation scheme); the test restores 2159be2's shuffling so that the comparison
stays exact and still covers everything else."""

from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import open_experiment
from hyco.tasks.train import train_physical, train_synthetic

RECORDED = {"physical_loss": 2.874699589483498e-09, "viscosity": 0.020054461434483528,
            "synthetic_train_loss": [0.0012565104601283867, 0.0012463109257320564]}


def _shuffling_of_2159be2(monkeypatch):
    """The loader seed was `seed + offset` and an epoch's order came from `seed * 1_000_003 + epoch`."""
    from hyco.data import loader as loader_module
    from hyco.tasks import experiment, train

    offsets = {train.SYNTHETIC_LOADER: 0, train.PHYSICAL_LOADER: 11}

    def loader(self, dataset, batch_size, stream=0):
        return loader_module.make_loader(dataset, batch_size, shuffle=True, seed=self.cfg.seed + offsets[stream],
                                         device=self.ctx.device)

    monkeypatch.setattr(experiment.Experiment, "loader", loader)
    monkeypatch.setattr(loader_module, "seeded_generator",
                        lambda seed, epoch: torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch)))


def _train(tmp_path) -> dict:
    """The pinned run: physical and synthetic training on oracle states; its figures as in RECORDED."""
    cfg = load("train", ["experiment=burgers_2d_quick", "observation=centre", "observation.states=full",
                         "observation.noise_level=0", "trainer.physical.epochs=2", "trainer.physical.optimizer=adam",
                         "trainer.physical.iterations=4", "trainer.synthetic.epochs=2",
                         f"output_dir={tmp_path}/run", f"data_dir={tmp_path}/data"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    exp = open_experiment(ctx)
    physical = train_physical(ctx, exp)
    synthetic = train_synthetic(ctx, exp)
    return {"physical_loss": physical["loss"], "viscosity": physical["viscosity"],
            "synthetic_train_loss": [h["train_loss"] for h in synthetic["history"]]}


def test_oracle_states_reproduce_the_previous_numbers(tmp_path, monkeypatch):
    _shuffling_of_2159be2(monkeypatch)
    figures = _train(tmp_path)
    assert figures["physical_loss"] == pytest.approx(RECORDED["physical_loss"], rel=1e-5)
    assert figures["viscosity"] == pytest.approx(RECORDED["viscosity"], rel=1e-6)
    assert figures["synthetic_train_loss"] == pytest.approx(RECORDED["synthetic_train_loss"], rel=1e-5)


if __name__ == "__main__":  # re-pin: print the figures RECORDED should hold
    import tempfile

    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as tmp:
        _shuffling_of_2159be2(patch)
        print(_train(Path(tmp)))
