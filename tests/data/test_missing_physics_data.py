"""Physics the learner lacks (issue 37, item 4): data simulated by a model with an extra term
(`data.reference.physics`), the heat_decay model, and the region where the missing term acts."""

import numpy as np
import pytest
import torch

from hyco.config.schema import DataConfig, HycoConfig, ReferenceConfig
from hyco.data.generate import config_hash, ensure_dataset, hashed_config
from hyco.data.reference import missing_term_region, missing_terms, reference_model, reference_plan
from hyco.data.store import TrajectoryStore
from hyco.errors import ConfigError
from hyco.physics import build_physics, shipped_config

BUMP = {"kind": "field", "learn": False,
        "truth": {"type": "gaussians", "value": 0.0, "centers": [[0.5, 0.5]], "widths": [0.1], "heights": [4.0]}}


def _heat(resolution=(8, 8), **extra) -> dict:
    physics = shipped_config("heat_2d")
    physics.update(resolution=list(resolution), substeps=2, dt=0.01, init_modes=1, **extra)
    physics["diffusivity"] = {"kind": "scalar", "truth": {"type": "constant", "value": 0.01},
                              "guess": {"type": "constant", "value": 0.02}}
    return physics


def _config(overrides: dict, refine: int = 1, **physics) -> HycoConfig:
    data = DataConfig(num_train=2, num_val=1, num_test=1, num_frames=4, rollout_steps=1, generation_batch=4,
                      reference=ReferenceConfig(refine=refine, physics=overrides))
    return HycoConfig(task="generate", experiment_name="unit", physics=_heat(**physics), network={"name": "none"},
                      data=data)


def _constant_decay(rate: float) -> dict:
    return {"kind": "scalar", "learn": False, "truth": {"type": "constant", "value": rate}}


def test_heat_decay_without_decay_is_heat_and_a_constant_decay_scales_the_mean_by_hand():
    heat = build_physics(_heat(), dtype=torch.float64)
    state = heat.initial_state(3, seed=5) + 1.0  # Fourier modes have mean 0: a mean of 1 for the decay to scale
    with torch.no_grad():
        plain = heat.rollout(state, heat.true_coefficients(), 3)
        same = build_physics({**_heat(), "name": "heat_decay"}, dtype=torch.float64)
        assert torch.equal(same.rollout(state, same.true_coefficients(), 3), plain)  # decay 0: bitwise heat
        rate = 5.0
        decaying = build_physics({**_heat(), "name": "heat_decay", "decay": _constant_decay(rate)},
                                 dtype=torch.float64)
        frames = decaying.rollout(state, decaying.true_coefficients(), 3)
    # periodic diffusion keeps the mean; explicit Euler multiplies it by (1 - r h) per substep (h = dt / 2)
    h = 0.01 / 2
    for step in range(3):
        factor = (1 - rate * h) ** (2 * (step + 1))
        np.testing.assert_allclose(frames[:, step].mean(dim=(-1, -2)).numpy(),
                                   state.mean(dim=(-1, -2)).numpy() * factor, rtol=1e-10, atol=1e-13)


def test_a_decay_outside_its_bound_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="physics.decay.truth"):
        build_physics({**_heat(), "name": "heat_decay", "decay": _constant_decay(1000.0)})  # |r| h < 0.5: r < 100


def test_the_overrides_join_the_hash_only_when_given():
    model = build_physics(_heat())
    plain = hashed_config(_config({}), model)
    assert "physics" not in plain["reference"]  # the hash of data made before the key existed is unchanged
    assert plain == hashed_config(HycoConfig(task="generate", experiment_name="unit", physics=_heat(),
                                             network={"name": "none"}, data=_config({}).data), model)
    digests = {config_hash(hashed_config(_config(o), model)) for o in
               ({}, {"name": "heat_decay", "decay": BUMP}, {"name": "heat_decay", "decay": _constant_decay(1.0)})}
    assert len(digests) == 3
    plan = reference_plan(_config({"name": "heat_decay", "decay": BUMP}).data.reference, model)
    assert missing_terms(plan, "heat") == {"data_model": "heat_decay", "learner_model": "heat", "terms": ["decay"],
                                           "described": "`decay`"}
    assert missing_terms(reference_plan(ReferenceConfig(), model), "heat") is None


def test_the_data_contain_the_term_and_the_stored_truth_is_the_learners(tmp_path):
    overrides = {"name": "heat_decay", "decay": _constant_decay(5.0)}
    uniform = {"init": "profile", "init_profile": {"type": "constant", "value": 1.0}}  # T = 1: heat keeps it
    cfg = _config(overrides, refine=2, **uniform)
    model = build_physics(dict(cfg.physics))
    simulator = reference_model(dict(cfg.physics), model, reference_plan(cfg.data.reference, model))
    assert type(simulator).__name__ == "HeatDecay" and simulator.resolution == (16, 16)
    path = ensure_dataset(cfg, model, tmp_path)
    plain = ensure_dataset(_config({}, refine=2, **uniform), model, tmp_path)
    assert path != plain
    with TrajectoryStore(path) as store, TrajectoryStore(plain) as other:
        assert set(store.true_coefficients) == {"diffusivity"}
        assert float(store.true_coefficients["diffusivity"]) == pytest.approx(0.01)
        assert "heat_decay" in store.attrs["reference"]
        decayed, undecayed = store.read_simulation("test", 0), other.read_simulation("test", 0)
    np.testing.assert_allclose(undecayed, 1.0, rtol=1e-6)  # plain heat keeps the uniform state
    h = 0.01 / 8  # the reference's substep: 2 x 2^2 substeps per frame
    for k in range(4):  # explicit Euler: the decay multiplies T by (1 - r h) per substep, in every cell
        np.testing.assert_allclose(decayed[k], (1 - 5.0 * h) ** (8 * k), rtol=1e-5)


def test_a_bad_override_is_refused_naming_data_reference(tmp_path):
    cfg = _config({"name": "heat_decay", "decay": _constant_decay(1000.0)}, refine=2)
    with pytest.raises(ConfigError, match="data.reference"):
        ensure_dataset(cfg, build_physics(dict(cfg.physics)), tmp_path)


def test_the_missing_terms_region_is_where_the_bump_acts():
    model = build_physics(_heat((16, 16)))
    plan = reference_plan(ReferenceConfig(physics={"name": "heat_decay", "decay": BUMP}), model)
    region = missing_term_region(_heat((16, 16)), plan, model)
    # the bump exceeds 10 % of its peak within sqrt(2 ln 10) x 0.1 = 0.215 of the centre
    centres = (torch.arange(16, dtype=torch.float64) + 0.5) / 16
    distance = torch.sqrt((centres[:, None] - 0.5) ** 2 + (centres[None, :] - 0.5) ** 2)
    assert torch.equal(region, distance < 0.1 * np.sqrt(2 * np.log(10)))
    scalar = reference_plan(ReferenceConfig(physics={"name": "heat_decay", "decay": _constant_decay(1.0)}), model)
    assert bool(missing_term_region(_heat((16, 16)), scalar, model).all())
    assert missing_term_region(_heat((16, 16)), reference_plan(ReferenceConfig(), model), model) is None
