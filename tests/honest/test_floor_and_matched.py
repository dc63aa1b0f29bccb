"""The model floor and the compute-matched network alone (issue 28)."""

import json
from pathlib import Path

import pytest
import torch

from hyco.config.validate import load
from hyco.tasks.context import RunContext
from hyco.tasks.experiment import open_experiment
from hyco.tasks.floor import fit_model_floor, read_model_floor
from hyco.tasks.train import matched_epochs

QUICK = ["experiment=burgers_1d_quick", "physics.resolution=[32]", "data.num_frames=8", "trainer.physical.epochs=4",
         "trainer.physical.iterations=20"]


def _floor(tmp_path: Path, refine: int) -> dict:
    cfg = load("run", [*QUICK, f"data.reference.refine={refine}", f"output_dir={tmp_path / str(refine)}",
                       f"data_dir={tmp_path / 'data'}"])
    ctx = RunContext(cfg, Path(cfg.output_dir), torch.device("cpu"))
    floor = fit_model_floor(ctx, open_experiment(ctx))
    assert read_model_floor(ctx) == floor  # what evaluation copies into metrics.json
    return floor


def test_the_floor_is_round_off_on_the_solvers_own_data_and_the_discretisation_error_on_reference_data(tmp_path):
    own, reference = _floor(tmp_path, 1), _floor(tmp_path, 2)
    assert "made by the learning solver itself" in own["how"] and "2x finer grid" in reference["how"]
    assert "noise-free" in reference["how"] and "epochs of L-BFGS-B" in reference["how"]
    # the observation (box, 1 % noise, frame 0 observed) plays no part: the floor sees every clean value
    assert own["coefficients"]["viscosity"] < 1e-4
    assert reference["coefficients"]["viscosity"] > 10 * own["coefficients"]["viscosity"]


def _record(cycle: int, num_real: int, generated: int, data_weight: float, interaction: float) -> dict:
    return {"cycle": cycle, "num_real": num_real, "num_generated_physical": generated,
            "synthetic_data_weight": data_weight, "synthetic_interaction_weight": interaction}


def test_matched_epochs_count_the_samples_hycos_network_trained_on(tmp_path):
    cfg = load("run", ["experiment=burgers_2d_quick", "trainer.hybrid.synthetic_epochs_per_cycle=3",
                       "trainer.hybrid.cycles=3", f"output_dir={tmp_path}"])
    ctx = RunContext(cfg, tmp_path, torch.device("cpu"))
    # planned, without a HYCO record: 3 cycles x 3 epochs x (40 real + int(0.5 x 40) generated) = 540 samples
    epochs, how = matched_epochs(ctx, 40)
    assert epochs == 14 and "as planned" in how  # 540 / 40 = 13.5, rounded half to even
    # counted from the record: the first cycle heard nobody (no generated windows), the second skipped the
    # network's phase (data weight 0, nothing heard), the third heard the solver on 20 windows
    records = [_record(1, 40, 0, 1.0, 0.0), _record(2, 40, 0, 0.0, 0.0), _record(3, 40, 20, 1.0, 0.5)]
    (tmp_path / "hyco").mkdir()
    (tmp_path / "hyco" / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records))
    epochs, how = matched_epochs(ctx, 40)
    assert how.startswith(f"{epochs} epochs over 40 real windows: 300 samples")  # 3 x 40 + 3 x (40 + 20)
    assert epochs == round(300 / 40) == 8
    with pytest.raises(KeyError):  # a record without its counts is not guessed at
        (tmp_path / "hyco" / "metrics.jsonl").write_text(json.dumps({"cycle": 1}))
        matched_epochs(ctx, 40)
