"""The coupling's direction: the interaction term pulls a solver TOWARD its partner (issue 36, item 3).

- On the toy diffusion with one-step windows the prediction is linear in the coefficient, u1(k) = u1(0) + k g,
  so the objective w_d mean_A((k - k_d)^2 g^2) + w_i mean_B((k - k_p)^2 g^2) has its minimum at
  k* = (w_d G_A k_d + w_i G_B k_p) / (w_d G_A + w_i G_B), G = the mean of g^2 over the data's observed values
  A and over the interaction region B: a hand value between the data's coefficient and the partner's.
- On Burgers (PhiFlow), a solver trained only through an oracle partner (the true model's predictions on the
  ghost points) recovers the true viscosity.
"""

import pytest
import torch

from hyco.config.schema import CouplingConfig
from hyco.evaluation.metrics import coefficient_error
from hyco.physics import build_physics, shipped_config
from tests.builders import (
    RealWindows,
    data_batch,
    hybrid_trainer,
    joined,
    partner_batch,
    physical_trainer,
    sliding_windows,
    synthetic_trainer,
    tiny_network,
    train_physical,
    trajectories,
    validation_data,
)
from tests.training.toy_models import ToyDiffusion1D

K_DATA, K_PARTNER = 0.3, 0.2


def _observed_cells(n: int, lo: int, hi: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, 1, n, dtype=torch.float64)
    mask[..., lo:hi] = 1.0
    return mask


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.0, 4.0), (1.0, 0.0)])
def test_the_optimum_lies_between_data_and_partner_where_the_hand_says(weights):
    model = ToyDiffusion1D()  # truth 0.3 = K_DATA, guess 0.15
    inputs, _ = sliding_windows(trajectories(model, sims=3, frames=4), 1)

    def rollout(k):
        with torch.no_grad():
            return model.rollout(inputs, {"kappa": torch.tensor(k, dtype=torch.float64)}, 1)

    mask = _observed_cells(model.n, 3, 11)
    region = 1.0 - mask  # the ghost points
    batch = joined(data_batch(inputs, rollout(K_DATA), mask), partner_batch(inputs, rollout(K_PARTNER), region))
    trainer = physical_trainer(model, iterations=50, early_stop=False)
    train_physical(trainer, [batch], 2, weights)
    g2 = (rollout(1.0) - rollout(0.0)) ** 2  # [B, 1, 1, n]
    g_data = float((g2 * mask).sum() / (mask.expand_as(g2)).sum())
    g_partner = float((g2 * region).sum() / (region.expand_as(g2)).sum())
    w_d, w_i = weights
    expected = (w_d * g_data * K_DATA + w_i * g_partner * K_PARTNER) / (w_d * g_data + w_i * g_partner)
    assert float(trainer.coefficients()["kappa"]) == pytest.approx(expected, rel=1e-6)


def test_a_partner_heard_more_pulls_harder():
    """The same case with the interaction weight 0, 1, 4: the coefficient walks from the data's value toward the
    partner's, monotonically (the sign of the interaction term)."""
    model = ToyDiffusion1D()
    inputs, _ = sliding_windows(trajectories(model, sims=3, frames=4), 1)
    with torch.no_grad():
        data = model.rollout(inputs, {"kappa": torch.tensor(K_DATA, dtype=torch.float64)}, 1)
        partner = model.rollout(inputs, {"kappa": torch.tensor(K_PARTNER, dtype=torch.float64)}, 1)
    batch = joined(data_batch(inputs, data, torch.ones(1, 1, 1, model.n)), partner_batch(inputs, partner))
    learned = []
    for weight in (0.0, 1.0, 4.0):
        trainer = physical_trainer(model, iterations=50, early_stop=False)
        train_physical(trainer, [batch], 2, (1.0, weight))
        learned.append(float(trainer.coefficients()["kappa"]))
    # full mask and full region: G_A = G_B, so k* = (k_d + w k_p) / (1 + w)
    assert learned == pytest.approx([K_DATA, (K_DATA + K_PARTNER) / 2, (K_DATA + 4 * K_PARTNER) / 5], rel=1e-6)


@pytest.fixture(scope="module")
def burgers():
    section = shipped_config("burgers_1d") | {"resolution": [32]}  # truth 0.005, guess 0.01
    return build_physics(section, dtype=torch.float64)


def test_a_solver_trained_only_through_an_oracle_partner_recovers_its_coefficient(burgers):
    """data_weight 0: the real windows (here made with a wrong viscosity, so any leak shows) do not count; the
    oracle's predictions on the ghost points carry the truth."""
    truth = float(burgers.true_coefficients()["viscosity"])
    inputs, oracle = sliding_windows(trajectories(burgers, sims=2, frames=5), 2)
    _, wrong = sliding_windows(trajectories(burgers, sims=2, frames=5, coefficients={"viscosity": 2 * truth}), 2)
    mask = _observed_cells(32, 8, 24)
    batch = joined(data_batch(inputs, wrong, mask), partner_batch(inputs, oracle, 1.0 - mask))
    trainer = physical_trainer(burgers, iterations=20)
    metrics = train_physical(trainer, [batch], 2, (0.0, 1.0))
    assert metrics["viscosity_rel_error"] < 1e-3, metrics
    assert float(burgers.initial_guess()["viscosity"]) == 2 * truth  # it started a factor 2 away


def _noisy_burgers_case(burgers):
    """Training windows of 3 noisy trajectories (1 % of the data's std) observed on the middle half, and the
    validation split's frame-0 windows, observed alike."""
    traj = trajectories(burgers, sims=3, frames=6)
    noise = torch.randn(traj.shape, generator=torch.Generator().manual_seed(0), dtype=traj.dtype)
    inputs, targets = sliding_windows(traj + 0.01 * traj.std() * noise, 2)
    mask = _observed_cells(32, 8, 24)
    val = trajectories(burgers, sims=2, frames=6, seed=5)
    validation = validation_data(val[:, 0], val[:, 1:], mask.expand(2, 5, 1, 32))
    return RealWindows(inputs, targets, mask.expand(len(inputs), 2, 1, 32)), data_batch(inputs, targets, mask), \
        validation


@pytest.mark.parametrize("forced", [False, True])
def test_a_solver_right_alone_stays_right_in_hyco(burgers, tmp_path, forced):
    """No harm: with trust weights, HYCO's solver ends within 1 % of its error alone (same data, 3 epochs each;
    the 1 % is the issue's bar, the measured gap is 1e-4 of it). The same run with the interaction weight
    forced to 1 is dragged far off by the half-trained network: the check can fail."""
    real, batch, validation = _noisy_burgers_case(burgers)
    alone = physical_trainer(burgers, iterations=20)
    for _ in range(3):
        error_alone = train_physical(alone, [batch], 1, (1.0, 0.0))["viscosity_rel_error"]
    assert error_alone < 0.05  # right alone, to what 1 % noise allows
    solver = physical_trainer(burgers, iterations=20)
    coupling = {"physical": CouplingConfig(interaction_weight=1.0)} if forced else {}
    hybrid = hybrid_trainer(synthetic_trainer(tiny_network(dtype=torch.float64), epochs=6, lr=1e-3), solver, tmp_path,
                            validation=validation, cycles=3, synthetic_epochs_per_cycle=2, physical_epochs_per_cycle=1,
                            **coupling)
    hybrid.train(real)
    error_hyco = coefficient_error(solver.coefficients()["viscosity"], burgers.true_coefficients()["viscosity"])
    if forced:
        assert error_hyco > 1.5 * error_alone
    else:
        assert error_hyco <= 1.01 * error_alone
