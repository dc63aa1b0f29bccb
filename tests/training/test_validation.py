"""Observed validation (one implementation for every trainer) and the choice of the kept model."""

import math

import pytest
import torch

from hyco.data.batch import Batch
from hyco.errors import DataError
from hyco.training.best import BestKeeper
from hyco.training.validation import VALIDATION_CHUNK, observed_validation, validation_batch


def test_observed_validation_by_hand():
    """Prediction = input + 1 per step, truth = input + 1 + step error: only observed values count."""
    sims = VALIDATION_CHUNK + 6  # two chunks
    inputs = torch.zeros(sims, 2, 3)
    truth = torch.zeros(sims, 2, 2, 3)
    truth[:, 0] = 1.0 + 0.5  # step 1: error 0.5 everywhere
    truth[:, 1] = 2.0 + 2.0  # step 2: error 2 everywhere, but observed only in cell 0
    truth[:, :, 1] = 99.0  # channel 1 is static: never scored
    mask = torch.ones(1, 2, 1, 3)  # shared by every simulation
    mask[:, 1, :, 1:] = 0.0

    def predict(states, steps):
        return torch.stack([states + (k + 1) for k in range(steps)], dim=1)

    result = observed_validation(predict, Batch(inputs, truth, mask), torch.tensor([0]), torch.device("cpu"),
                                 torch.float32)
    errors = torch.tensor([0.25] * 3 + [4.0], dtype=torch.float64)  # per simulation: 3 + 1 observed values
    assert result["val_loss"] == pytest.approx(errors.mean().item())
    assert result["val_loss_se"] == pytest.approx(math.sqrt(errors.var(unbiased=False).item() / (4 * sims)))
    assert result["val_rel_l2"] == pytest.approx([0.5 / 1.5, 2.0 / 4.0])
    assert result["val_rel_l2_mean"] == pytest.approx((1 / 3 + 0.5) / 2) and result["val_rel_l2_final"] == 0.5


def test_a_step_without_observed_values_has_no_relative_error():
    mask = torch.ones(2, 2, 1, 3)
    mask[:, 1] = 0.0
    data = Batch(torch.zeros(2, 1, 3), torch.ones(2, 2, 1, 3), mask)
    result = observed_validation(lambda s, n: torch.zeros(2, n, 1, 3), data, torch.tensor([0]), torch.device("cpu"),
                                 torch.float32)
    assert result["val_rel_l2"] == [1.0, None] and result["val_rel_l2_final"] == 1.0 and result["val_loss"] == 1.0


def test_validation_trajectories_are_frame_0_and_the_frames_after_it_and_other_shapes_are_refused():
    trajectories = torch.arange(3 * 2 * 1 * 5, dtype=torch.float32).reshape(3, 2, 1, 5)  # [N, T=2, C=1, x]
    batch = validation_batch(trajectories, 1)
    assert torch.equal(batch.inputs, trajectories[:, 0]) and torch.equal(batch.targets, trajectories[:, 1:])
    assert batch.mask is None
    given = Batch(trajectories[:, 0], trajectories[:, 1:], torch.ones(1, 1, 1, 5))
    assert validation_batch(given, None) is given and validation_batch(given.tensors(), None).mask is given.mask
    for bad in (trajectories[:, :1], trajectories[..., None]):  # one frame; two spatial axes for a 1D model
        with pytest.raises(DataError, match=r"validation trajectories: expected \[N, T>=2, C, \*space\]"):
            validation_batch(bad, 1)


def test_best_keeper_within_noise_and_strict(tmp_path):
    saved = []
    noisy = BestKeeper(tmp_path / "best.pt")
    assert noisy.offer({"val_loss": 1.0, "val_loss_se": 0.1}, 1, saved.append)
    assert noisy.offer({"val_loss": 1.05, "val_loss_se": 0.1}, 2, saved.append)  # worse by less than the noise
    assert not noisy.offer({"val_loss": 1.2, "val_loss_se": 0.1}, 3, saved.append)
    assert noisy.offer({"val_loss": 1.09, "val_loss_se": 0.1}, 4, saved.append)  # measured from the lowest (1.0)
    assert (noisy.loss, noisy.step) == (1.0, 4) and saved == [tmp_path / "best.pt"] * 3
    strict = BestKeeper(None, within_noise=False)
    assert strict.offer({"val_loss": 1.0, "val_loss_se": 0.5}, 1, saved.append)
    assert not strict.offer({"val_loss": 1.0, "val_loss_se": 0.5}, 2, saved.append)  # not strictly lower
    assert strict.step == 1 and len(saved) == 3  # no path: nothing written
    again = BestKeeper()
    again.load_state_dict(noisy.state_dict())
    assert (again.loss, again.step, again.finite_loss) == (1.0, 4, 1.0) and BestKeeper().finite_loss is None
