"""Reference data (issue 28): simulated on a finer grid and time step, restricted to the learning grid."""

import numpy as np
import pytest
import torch

from hyco.config.schema import DataConfig, HycoConfig, ReferenceConfig
from hyco.data.generate import config_hash, ensure_dataset, hashed_config
from hyco.data.reference import reference_model, reference_plan, restrict
from hyco.data.store import TrajectoryStore
from hyco.errors import ConfigError
from hyco.physics import build_physics, shipped_config

from .conftest import make_config
from .fake_physics import FakeDiffusion

CENTRED = [{"channels": 1, "grid": "centered"}]
STAGGERED = [{"channels": 2, "grid": "staggered"}]


def test_cell_average_of_a_centred_field_by_hand():
    fine = torch.arange(2 * 1 * 6 * 4, dtype=torch.float64).reshape(2, 1, 6, 4)  # [b, C, y, x]
    coarse = restrict(fine, 2, CENTRED)
    assert coarse.shape == (2, 1, 3, 2)
    for j in range(3):
        for i in range(2):
            hand = (fine[1, 0, 2 * j, 2 * i] + fine[1, 0, 2 * j + 1, 2 * i] + fine[1, 0, 2 * j, 2 * i + 1]
                    + fine[1, 0, 2 * j + 1, 2 * i + 1]) / 4
            assert float(coarse[1, 0, j, i]) == pytest.approx(float(hand))
    # a time axis in front and a third of the cells: [b, T, C, x]
    line = torch.tensor([[[[1.0, 2.0, 3.0, 7.0, 8.0, 9.0]]]])
    assert restrict(line, 3, CENTRED).flatten().tolist() == [2.0, 8.0]


def test_face_average_of_a_staggered_field_by_hand():
    fine = torch.randn(1, 2, 4, 6, dtype=torch.float64)  # x component (channel 0) on lower x faces, y on lower y
    coarse = restrict(fine, 2, STAGGERED)
    assert coarse.shape == (1, 2, 2, 3)
    for j in range(2):
        for i in range(3):
            # the coarse lower x face of cell (j, i) is fine x face 2i, split across fine rows 2j, 2j + 1
            x_face = (fine[0, 0, 2 * j, 2 * i] + fine[0, 0, 2 * j + 1, 2 * i]) / 2
            y_face = (fine[0, 1, 2 * j, 2 * i] + fine[0, 1, 2 * j, 2 * i + 1]) / 2
            assert float(coarse[0, 0, j, i]) == pytest.approx(float(x_face))
            assert float(coarse[0, 1, j, i]) == pytest.approx(float(y_face))


def test_face_averages_keep_a_periodic_field_divergence_free():
    """The flux through a coarse face is the fine flux through it: a discretely divergence-free fine field
    (the curl of a stream function on the cell corners) stays divergence-free on the coarse grid."""
    n, factor = 12, 3
    psi = torch.randn(n, n, dtype=torch.float64)  # on the corners (lower-left of each cell)
    u = torch.roll(psi, -1, 0) - psi  # x component on lower x faces: d psi / dy (unit spacing)
    v = -(torch.roll(psi, -1, 1) - psi)  # y component on lower y faces: -d psi / dx

    def divergence(field):
        return (torch.roll(field[0], -1, 1) - field[0]) + (torch.roll(field[1], -1, 0) - field[1])

    fine = torch.stack([u, v])
    assert float(divergence(fine).abs().max()) < 1e-12
    coarse = restrict(fine[None], factor, STAGGERED)[0]
    assert float(divergence(coarse).abs().max()) < 1e-12  # in units of the coarse spacing: fine sums / factor
    assert float(coarse.abs().max()) > 0.1


def test_the_reference_plan_and_its_hash():
    model = FakeDiffusion(substeps=2)
    assert reference_plan(ReferenceConfig(), model).hashed() == {"refine": 1, "substeps": 2}
    assert reference_plan(ReferenceConfig(refine=2), model).hashed() == {"refine": 2, "substeps": 8}
    assert reference_plan(ReferenceConfig(refine=3, substeps=5), model).hashed() == {"refine": 3, "substeps": 5}
    digests = {refine: config_hash(hashed_config(make_config(reference=ReferenceConfig(refine=refine)), model))
               for refine in (1, 2)}
    assert digests[1] != digests[2]
    with pytest.raises(ConfigError, match="data.reference.refine.*no `resolution` key"):
        ensure_dataset(make_config(reference=ReferenceConfig(refine=2)), model, "unused")


def _heat_config(refine: int) -> HycoConfig:
    physics = shipped_config("heat_2d")
    physics.update(resolution=[8, 8], substeps=2, dt=0.01, init_modes=1)  # smooth states: a small grid resolves them
    data = DataConfig(num_train=2, num_val=1, num_test=1, num_frames=4, rollout_steps=1, generation_batch=4,
                      reference=ReferenceConfig(refine=refine))
    return HycoConfig(task="generate", experiment_name="unit", physics=physics, network={"name": "none"}, data=data)


def test_generated_frames_are_the_restricted_fine_rollout(tmp_path):
    cfg = _heat_config(refine=2)
    model = build_physics(dict(cfg.physics))
    path = ensure_dataset(cfg, model, tmp_path)
    fine = reference_model(dict(cfg.physics), model, reference_plan(cfg.data.reference, model))
    assert fine.resolution == (16, 16) and fine.substeps == 8
    with TrajectoryStore(path) as store:
        seed = int(store.seeds("test")[0])
        stored = store.read_simulation("test", 0)
        assert "2x finer grid" in store.attrs["reference"]
        truth = store.true_coefficients["diffusivity"]
    state = fine.initial_state(1, seed)
    with torch.no_grad():
        frames = torch.cat([state[:, None], fine.rollout(state, fine.true_coefficients(), 3)], dim=1)
    np.testing.assert_allclose(stored, restrict(frames, 2, fine.fields)[0].numpy(), rtol=1e-5, atol=1e-6)
    # the truth the learner is judged by: the same profile on the learning grid's own cell centres
    np.testing.assert_allclose(truth.numpy(), model.true_coefficients()["diffusivity"].numpy(), rtol=1e-6)
    # and the data differ from the learning solver's own (the inverse crime's) by a discretisation error: small
    # for these smooth states, far above round-off
    crime = ensure_dataset(_heat_config(refine=1), model, tmp_path)
    with TrajectoryStore(crime) as store:
        own = store.read_simulation("test", 0)
    relative = float(np.abs(own[1:] - stored[1:]).max()) / float(np.abs(stored).max())
    assert 1e-4 < relative < 0.05
