"""Masked quantities against hand computations on one small sparse case (issue 36, item 2).

Two windows of 3 steps on 16 cells; window 0 observes cells 2..7 at steps 1 and 3, window 1 cells 10..12 at
step 2. Every target is the model's own prediction plus a known error: a pattern of small errors on the
observed values and 50 on the hidden ones. A quantity that reads a hidden value is then off by orders of
magnitude, and the expected numbers are sums over a Python list of the observed errors.

The physical model's inputs are constant fields: diffusion leaves a constant unchanged, so the solver's
prediction is its input at every step, exactly, and its gradient is exactly 0 (the optimiser cannot move).
"""

import math

import pytest
import torch

from tests.builders import (
    RealWindows,
    data_batch,
    hybrid_trainer,
    joined,
    partner_batch,
    physical_trainer,
    synthetic_trainer,
    tiny_network,
    train_physical,
    validation_data,
)
from tests.training.toy_models import ToyDiffusion1D

N, S, X = 2, 3, 16
HIDDEN_ERROR = 50.0


def sparse_mask() -> torch.Tensor:
    mask = torch.zeros(N, S, 1, X, dtype=torch.float64)
    mask[0, 0, 0, 2:8] = 1.0
    mask[0, 2, 0, 2:8] = 1.0
    mask[1, 1, 0, 10:13] = 1.0
    return mask


def errors(mask: torch.Tensor, pattern=(0.5, -1.0, 2.0, 0.25)) -> torch.Tensor:
    """Target minus prediction: the pattern repeated over the observed values, HIDDEN_ERROR elsewhere."""
    out = torch.full(mask.shape, HIDDEN_ERROR, dtype=torch.float64)
    observed = mask.bool()
    count = int(observed.sum())
    out[observed] = torch.tensor([pattern[i % len(pattern)] for i in range(count)], dtype=torch.float64)
    return out


def observed_list(values: torch.Tensor, mask: torch.Tensor) -> list[float]:
    return [v for v, m in zip(values.flatten().tolist(), mask.expand_as(values).flatten().tolist()) if m]


def mean_and_standard_error(observed: list[float]) -> tuple[float, float]:
    """Mean of the squared errors and its standard error sqrt(var / n), by hand."""
    n = len(observed)
    mean = sum(e * e for e in observed) / n
    variance = sum(e ** 4 for e in observed) / n - mean ** 2
    return mean, math.sqrt(variance / n)


def constant_states(values=(1.0, 2.0)) -> torch.Tensor:
    return torch.stack([torch.full((1, X), v, dtype=torch.float64) for v in values])


def test_hand_figures_of_the_case():
    """The case itself: 6 + 6 + 3 observed values, error pattern as stated (guards the helpers above)."""
    mask = sparse_mask()
    observed = observed_list(errors(mask), mask)
    assert len(observed) == 15 and observed[:5] == [0.5, -1.0, 2.0, 0.25, 0.5]
    assert mean_and_standard_error([1.0, -1.0]) == (1.0, 0.0)


def test_physical_validation_reads_only_the_observed_values():
    model = ToyDiffusion1D()
    mask = sparse_mask()
    inputs = constant_states()
    targets = inputs[:, None].expand(N, S, 1, X) + errors(mask)
    result = physical_trainer(model).validate(validation_data(inputs, targets, mask))
    mean, se = mean_and_standard_error(observed_list(errors(mask), mask))
    assert result["val_loss"] == pytest.approx(mean, rel=1e-12)
    assert result["val_loss_se"] == pytest.approx(se, rel=1e-9)


def test_physical_validation_with_a_mask_shared_by_all_windows():
    """One mask for every simulation (`[1, S, 1, X]`) is broadcast, not read as the first window's alone."""
    model = ToyDiffusion1D()
    shared = sparse_mask()[:1]
    inputs = constant_states()
    targets = inputs[:, None].expand(N, S, 1, X) + errors(shared.expand(N, -1, -1, -1))
    result = physical_trainer(model).validate(validation_data(inputs, targets, shared))
    mean, _ = mean_and_standard_error(observed_list(errors(shared.expand(N, -1, -1, -1)), shared.expand(N, -1, -1, -1)))
    assert result["val_loss"] == pytest.approx(mean, rel=1e-12)


def test_synthetic_validation_reads_only_the_observed_values():
    network = tiny_network(dtype=torch.float64)
    trainer = synthetic_trainer(network)
    mask = sparse_mask()
    inputs = torch.randn(N, 1, X, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    network.eval()
    with torch.no_grad():
        prediction = network.rollout(inputs, S)
    error = errors(mask)
    targets = prediction + error
    result = trainer.validate(validation_data(inputs, targets, mask))
    mean, _ = mean_and_standard_error(observed_list(error, mask))
    assert result["val_loss"] == pytest.approx(mean, rel=1e-9)
    # relative L2 per step over the observed values, mean over the simulations that observe that step
    per_step = []
    for k in range(S):
        ratios = []
        for n in range(N):
            seen = mask[n, k, 0].tolist()
            if any(seen):
                num = sum(e * e for e, m in zip(error[n, k, 0].tolist(), seen) if m)
                den = sum(t * t for t, m in zip(targets[n, k, 0].tolist(), seen) if m)
                ratios.append(math.sqrt(num / den))
        per_step.append(sum(ratios) / len(ratios))
    assert result["val_rel_l2"] == pytest.approx(per_step, rel=1e-9)
    assert result["val_rel_l2_mean"] == pytest.approx(sum(per_step) / S, rel=1e-9)
    assert result["val_rel_l2_final"] == pytest.approx(per_step[-1], rel=1e-9)


def test_synthetic_validation_marks_a_step_nobody_observed():
    network = tiny_network(dtype=torch.float64)
    mask = sparse_mask()
    mask[1, 1] = 0.0  # step 2 now observed by no simulation
    inputs = torch.zeros(N, 1, X, dtype=torch.float64)
    with torch.no_grad():
        targets = network.eval().rollout(inputs, S) + errors(mask)
    result = synthetic_trainer(network).validate(validation_data(inputs, targets, mask))
    assert result["val_rel_l2"][1] is None and result["val_rel_l2"][0] is not None
    assert result["val_loss"] == pytest.approx(mean_and_standard_error(observed_list(errors(mask), mask))[0], rel=1e-9)


@pytest.mark.parametrize("optimizer", ["lbfgsb", "adam"])
def test_objective_and_noise_floor_of_both_terms_by_hand(optimizer):
    """L = w_d * mean(data errors^2 over observed) + w_i * mean(partner errors^2 over the region), and the noise
    floor sqrt(w_d^2 var_d / n_d + w_i^2 var_i / n_i): the gradient is 0, so the epoch's loss is the objective
    at the start."""
    model = ToyDiffusion1D()
    mask = sparse_mask()
    region = 1.0 - mask  # the ghost points: where the data say nothing
    inputs = constant_states()
    prediction = inputs[:, None].expand(N, S, 1, X)
    data_errors = errors(mask)
    partner_errors = errors(region, pattern=(0.1, -0.3))
    batch = joined(data_batch(inputs, prediction + data_errors, mask),
                   partner_batch(inputs, prediction + partner_errors, region))
    weights = (0.7, 2.0)
    metrics = train_physical(physical_trainer(model, optimizer=optimizer, iterations=2), [batch], 1, weights)
    mean_d, se_d = mean_and_standard_error(observed_list(data_errors, mask))
    mean_i, se_i = mean_and_standard_error(observed_list(partner_errors, region))
    assert metrics["loss"] == pytest.approx(weights[0] * mean_d + weights[1] * mean_i, rel=1e-12)
    assert metrics["noise_floor"] == pytest.approx(math.hypot(weights[0] * se_d, weights[1] * se_i), rel=1e-9)
    assert metrics["kappa"] == pytest.approx(float(model.initial_guess()["kappa"]), rel=1e-15)  # nothing moved


def test_trust_weights_hear_each_model_by_its_observed_validation_error(tmp_path):
    """Before any training, each model's validation error is its masked MSE (hidden values poisoned), and
    each interaction weight is own / partner error clipped to 1, by hand."""
    model = ToyDiffusion1D(dtype=torch.float32)
    network = tiny_network()
    mask = sparse_mask().float()
    inputs = constant_states().float()
    with torch.no_grad():
        net = network.eval().rollout(inputs, S).double()
    solver = inputs[:, None].expand(N, S, 1, X).double()  # constant states: the solver's prediction
    targets = (solver + errors(mask)).float()
    physical = physical_trainer(model)
    synthetic = synthetic_trainer(network, epochs=0)
    real = RealWindows(inputs, targets, mask)
    hybrid = hybrid_trainer(synthetic, physical, tmp_path, validation=validation_data(inputs, targets, mask),
                            cycles=1, synthetic_epochs_per_cycle=0, physical_epochs_per_cycle=0, hear_untrained=True)
    metrics = hybrid.train(real)
    e_solver, _ = mean_and_standard_error(observed_list(targets.double() - solver, mask))
    e_network, _ = mean_and_standard_error(observed_list(targets.double() - net, mask))
    assert metrics["physical_val_loss"] == pytest.approx(e_solver, rel=1e-5)
    assert metrics["synthetic_val_loss"] == pytest.approx(e_network, rel=1e-5)
    assert metrics["physical_interaction_weight"] == pytest.approx(min(1.0, e_solver / e_network), rel=1e-5)
    assert metrics["synthetic_interaction_weight"] == pytest.approx(min(1.0, e_network / e_solver), rel=1e-5)

