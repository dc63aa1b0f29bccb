"""The missing-physics entry of metrics.json (issue 37, item 4): the solver's bias against the shared truth and
the rollout errors where the missing term acts, by hand."""

import math

import pytest
import torch

from hyco.evaluation.missing_physics import missing_physics_entry, region_rel_l2, signed_bias
from hyco.evaluation.verdict import verdict

DECLARED = {"data_model": "heat_decay", "learner_model": "heat", "terms": ["decay"], "described": "`decay`"}


def test_the_region_error_counts_only_the_region_by_hand():
    target = torch.zeros(2, 3, 1, 2, 2)  # [sim, step, channel, y, x]
    target[..., 0, 0] = 2.0
    target[..., 1, 1] = 1.0
    prediction = target.clone()
    prediction[..., 0, 0] = 3.0  # off by 1 in the region
    prediction[..., 0, 1] = 50.0  # off by 50 outside it: not counted
    region = torch.tensor([[True, False], [False, True]])
    # 6 frames: |diff|^2 = 6 x 1, |target|^2 = 6 x (4 + 1)
    assert region_rel_l2(prediction, target, region) == pytest.approx(math.sqrt(6 / 30))
    prediction[0, 0, 0, 1, 1] = float("nan")
    assert region_rel_l2(prediction, target, region) is None


def test_the_bias_is_signed_and_against_the_mean():
    assert signed_bias(0.015, 0.01) == pytest.approx(0.5)
    assert signed_bias([0.004, 0.006], [0.01, 0.01]) == pytest.approx(-0.5)


def test_the_entry_and_its_sentence():
    metrics = {
        "true_coefficients": {"diffusivity": 0.01},
        "learned_coefficients": {"physical": {"diffusivity": 0.0174}, "hyco_physical": {"diffusivity": 0.0121}},
        "runs": {"physical": {"coefficients": {"diffusivity": {"rel_error": 0.74, "std": 0.0002}}},
                 "hyco_physical": {"coefficients": {"diffusivity": {"rel_error": 0.21}}},
                 "synthetic": {}},
    }
    region = torch.zeros(4, 4, dtype=torch.bool)
    region[:2, :2] = True
    entry = missing_physics_entry(DECLARED, metrics, region, {"physical": 0.2, "synthetic": 0.05,
                                                               "hyco_synthetic": None})
    assert entry["bias"]["physical"]["diffusivity"]["bias"] == pytest.approx(0.74)
    assert entry["bias"]["physical"]["diffusivity"]["bias_over_std"] == pytest.approx(0.0074 / 0.0002)
    assert entry["bias"]["hyco_physical"]["diffusivity"]["bias"] == pytest.approx(0.21)
    assert "bias_over_std" not in entry["bias"]["hyco_physical"]["diffusivity"]
    assert entry["region_fraction"] == pytest.approx(0.25)
    text = entry["sentence"]
    assert "diffusivity by +74.0%" in text and "+21.0%" in text
    assert "its equation (heat) lacks the data's `decay` term (heat_decay)" in text
    assert text.index("network alone 0.05") < text.index("solver alone 0.2")  # best first; a diverged run left out
    assert "25% of the domain" in text
    assert text in verdict({**metrics, "runs": {}, "missing_physics": entry})


def test_no_sentence_without_a_declared_missing_term():
    assert "lacks" not in verdict({"runs": {"physical": {"rollout": {"rel_l2": 0.1}}}})
