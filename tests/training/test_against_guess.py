"""A solver trained through a network that cannot carry its coefficients ends farther from the truth than its
initial guess (issue 37): the hybrid trainer compares its kept solver with the guess on the observed validation
data and says so, and the report marks the run's coefficients as not learned."""

import pytest
import torch

from hyco.config.schema import CouplingConfig, HybridTrainerConfig, PhysicalTrainerConfig, SyntheticTrainerConfig
from hyco.evaluation.comparison import NOT_LEARNED, coefficient_table
from hyco.evaluation.verdict import verdict
from hyco.networks.surrogate import build_network
from hyco.training.hybrid import HybridTrainer
from hyco.training.physical import PhysicalTrainer
from hyco.training.synthetic import SyntheticTrainer
from tests.training.test_hybrid import NET, TensorWindows
from tests.training.toy_models import ToyDiffusion1D


def still_network_hybrid(tmp_path, physical_data_weight: float, physical_interaction_weight: float | str = 1.0,
                         **hybrid_keys):
    """HYCO on the toy diffusion (truth 0.3, guess 0.15) with a network that predicts no change at all (every
    weight zero, residual, learning rate 0): whatever the solver learns from it pulls its diffusivity to 0."""
    torch.manual_seed(0)
    physics = ToyDiffusion1D(dtype=torch.float32)
    network = build_network(NET, 1, [0], 1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.zero_()
    synthetic = SyntheticTrainer(SyntheticTrainerConfig(epochs=0, batch_size=4, lr=1e-12), network, progress=False,
                                 total_epochs=3, per_cycle=True)
    physical = PhysicalTrainer(PhysicalTrainerConfig(optimizer="adam", iterations=5, lr=0.1), physics,
                               true_coefficients=physics.true_coefficients())
    config = HybridTrainerConfig(cycles=2, alpha=1.0, synthetic_epochs_per_cycle=1, physical_epochs_per_cycle=1,
                                 physical=CouplingConfig(data_weight=physical_data_weight,
                                                         interaction_weight=physical_interaction_weight,
                                                         interaction_region="everywhere"), **hybrid_keys)
    validation = TensorWindows(physics, sims=2, frames=6, rollout=5)
    hybrid = HybridTrainer(config, synthetic, physical, cache_dir=tmp_path / "cache", seed=3, batch_size=4,
                           chunk_size=3, validation=(validation.inputs, validation.targets, validation.masks))
    return hybrid, TensorWindows(physics)


def _distance(hybrid) -> float:
    return abs(float(hybrid.physical.coefficients()["kappa"]) - 0.3)


def test_a_solver_trained_through_a_still_network_is_flagged(tmp_path):
    hybrid, real = still_network_hybrid(tmp_path, physical_data_weight=0.0)
    hybrid.train(real)
    assert _distance(hybrid) > 0.15 + 0.01  # the case fails as built: farther from 0.3 than the guess 0.15
    verdict_ = hybrid.physical_against_guess()
    assert verdict_["worse_than_guess"] is True
    assert verdict_["best_val_loss"] > verdict_["initial_val_loss"]


def test_the_same_solver_learning_from_the_data_is_not_flagged(tmp_path):
    hybrid, real = still_network_hybrid(tmp_path, physical_data_weight=1.0, physical_interaction_weight=0.0)
    hybrid.train(real)
    assert _distance(hybrid) < 0.15  # closer to the truth than the guess
    verdict_ = hybrid.physical_against_guess()
    assert verdict_["worse_than_guess"] is False
    assert verdict_["best_val_loss"] < verdict_["initial_val_loss"]


def test_without_validation_data_nothing_is_claimed(tmp_path):
    hybrid, real = still_network_hybrid(tmp_path, physical_data_weight=0.0)
    hybrid.validation = None
    hybrid.train(real, cycles=1)
    assert hybrid.physical_against_guess()["worse_than_guess"] is None


@pytest.mark.parametrize("learn_from_worse", [True, False])
def test_a_solver_through_a_worse_partner_can_be_told_to_wait(tmp_path, learn_from_worse):
    """Trust weights (`auto`) cannot hold back a solver with no data term (the weight only scales its loss):
    `learn_from_worse_partner=false` skips its phase while the network explains the observed data worse than the
    solver does -- here in every cycle, so it keeps its guess and is reported as never trained."""
    hybrid, real = still_network_hybrid(tmp_path, physical_data_weight=0.0, physical_interaction_weight="auto",
                                        learn_from_worse_partner=learn_from_worse)
    hybrid.train(real)
    verdict_ = hybrid.physical_against_guess()
    assert verdict_["trained"] is learn_from_worse
    if learn_from_worse:  # trust 0 < w < 1 changes nothing: the solver follows the still network as with w = 1
        assert verdict_["worse_than_guess"] is True and _distance(hybrid) > 0.16
        assert 0 < hybrid.history[0]["physical_interaction_weight"] < 1
    else:
        assert float(hybrid.physical.coefficients()["kappa"]) == pytest.approx(0.15, rel=1e-6)
        assert verdict_["worse_than_guess"] is False
        assert [r["physical_interaction_weight"] for r in hybrid.history] == [0.0, 0.0]


@pytest.mark.parametrize(("flags", "marked"), [({"worse_than_initial_guess": True}, True),
                                               ({"worse_than_initial_guess": False}, False),
                                               ({"worse_than_initial_guess": False, "trained": False}, True)])
def test_the_report_marks_a_solver_worse_than_its_guess_or_untrained_as_not_learned(flags, marked):
    metrics = {"true_coefficients": {"D_u": 0.2}, "initial_coefficients": {"D_u": 0.1},
               "learned_coefficients": {"hyco_physical": {"D_u": 0.05}},
               "runs": {"hyco_physical": {"coefficients": {"D_u": {"rel_error": 0.75}},
                                          "rollout": {"rel_l2": 0.5}, **flags}}}
    table = coefficient_table(metrics)
    labels = [row[0] for row in table.rows]
    assert any(NOT_LEARNED in label for label in labels) is marked
    assert ("not learned" in verdict(metrics)) is marked
