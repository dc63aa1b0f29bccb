"""Trust weights: a partner that explains the observed validation data badly is not heard."""

import math

import pytest
import torch

from hyco.config.schema import (
    CouplingConfig,
    HybridTrainerConfig,
    PhysicalTrainerConfig,
    SyntheticTrainerConfig,
)
from hyco.data.loader import WindowLoader
from hyco.networks.surrogate import build_network
from hyco.training.hybrid import HybridTrainer, trust_weight
from hyco.training.physical import PhysicalTrainer
from hyco.training.synthetic import SyntheticTrainer
from tests.training.test_hybrid import NET, TensorWindows
from tests.training.toy_models import ToyDiffusion1D


def test_trust_rule():
    assert trust_weight(1e-6, 1e-2) == pytest.approx(1e-4)
    assert trust_weight(1e-2, 1e-6) == 1.0  # a better partner is heard in full
    assert trust_weight(1.0, math.inf) == 0.0  # a diverged partner is not
    assert trust_weight(math.nan, 1.0) == 1.0 and trust_weight(1.0, 0.0) == 1.0


def _validation(model):
    val = TensorWindows(model, sims=2, frames=6, rollout=5)  # one window per simulation, from frame 0
    starts = torch.arange(len(val)) % (6 - 5)
    keep = starts == 0
    return val.inputs[keep], val.targets[keep], val.masks[keep]


def _physical(model, lr_config):
    return PhysicalTrainer(lr_config, model, true_coefficients=model.true_coefficients())


def test_a_random_network_gets_no_say_and_the_solver_stays_where_it_is_alone(tmp_path):
    model = ToyDiffusion1D(dtype=torch.float32)
    real = TensorWindows(model, sims=3, frames=6)
    validation = _validation(model)
    config = PhysicalTrainerConfig(iterations=20)
    alone = _physical(model, config)
    for epoch in range(3):
        alone.train(WindowLoader(real, batch_size=4, seed=epoch), 1)
    torch.manual_seed(0)
    network = build_network(NET, 1, [0], 1)
    with torch.no_grad():
        for p in network.parameters():
            p.mul_(30.0)  # a corrupted partner: its predictions are far off
    synthetic = SyntheticTrainer(SyntheticTrainerConfig(epochs=0, batch_size=4), network, progress=False,
                                 total_epochs=1)
    physical = _physical(model, config)
    hybrid = HybridTrainer(HybridTrainerConfig(cycles=3, synthetic_epochs_per_cycle=0, physical_epochs_per_cycle=1),
                           synthetic, physical, cache_dir=tmp_path, validation=validation, batch_size=4)
    hybrid.train(real)
    weights = [record["physical_interaction_weight"] for record in hybrid.history]
    # cycle 1: the solver still at its guess listens a little (its own error is not small either); once it
    # has fitted the data, the corrupted partner gets no say
    assert weights[0] < 0.5 and weights[-1] < 1e-3 and weights == sorted(weights, reverse=True), weights
    kappa, kappa_alone = physical.coefficients()["kappa"].item(), alone.coefficients()["kappa"].item()
    assert abs(kappa - kappa_alone) <= 1e-3 * abs(kappa_alone), (kappa, kappa_alone)
    # with the interaction weight forced to 1 the same partner drags the solver away
    dragged = _physical(model, config)
    forced = HybridTrainer(HybridTrainerConfig(cycles=3, synthetic_epochs_per_cycle=0, physical_epochs_per_cycle=1,
                                               physical=CouplingConfig(interaction_weight=1.0)),
                           synthetic, dragged, cache_dir=tmp_path, validation=validation, batch_size=4)
    forced.train(real)
    assert abs(dragged.coefficients()["kappa"].item() - kappa_alone) > 10 * abs(kappa - kappa_alone)
