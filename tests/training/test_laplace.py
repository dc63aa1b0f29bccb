"""The Laplace posterior (hyco.training.laplace): its Gauss–Newton products against a dense Jacobian, its
curvature against finite differences of the loss, and the identifiability classes of numbers the data see and
do not see."""

import math

import numpy as np
import pytest
import torch

from hyco.data.batch import Batch
from hyco.physics import build_physics, shipped_config
from hyco.training.identifiability import CLASSES, classify, describe
from hyco.training.laplace import (
    MISFIT_LIMIT,
    PRIOR_RAW_VARIANCE,
    Z95,
    ObservedResiduals,
    gauss_newton_product,
    laplace_posterior,
)


def heat_field_model(resolution=(8, 8)):
    """The heat equation with a learned diffusivity field on a small grid, in float64."""
    section = {**shipped_config("heat_2d"), "resolution": list(resolution)}
    return build_physics(section, dtype=torch.float64)


def windows(model, sims=1, steps=2, seed=0, coefficients=None) -> Batch:
    state = model.initial_state(sims, seed)
    with torch.no_grad():
        targets = model.rollout(state, coefficients or model.true_coefficients(), steps)
    return Batch(state, targets)


def test_gauss_newton_product_equals_the_dense_jacobian_product():
    model = heat_field_model()
    raw = model.initial_raw()
    batch = windows(model)
    mask = torch.zeros_like(batch.targets[:, :, :1])
    mask[..., 2:6, 1:5] = 1.0  # a box observed: the product must follow the mask
    batch = Batch(batch.inputs, batch.targets, mask)
    dynamic = torch.as_tensor(model.dynamic_channels)
    residuals = ObservedResiduals(model, raw, ["diffusivity"], dynamic)
    theta = residuals.theta().clone()
    jacobian = torch.autograd.functional.jacobian(lambda t: residuals(t, batch), theta)  # [m, p], reverse mode
    assert jacobian.shape == (int(mask.sum()) * len(model.dynamic_channels), theta.numel())
    v = torch.randn(theta.numel(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    dense = jacobian.T @ (jacobian @ v)
    product = gauss_newton_product(residuals, [batch], v)
    assert float((product - dense).norm() / dense.norm()) <= 1e-4


def test_scalar_posterior_matches_the_finite_difference_curvature_of_the_loss():
    """At the truth of noise-free data the residuals vanish, so the Gauss–Newton matrix is the loss's Hessian:
    d²(RSS/2)/dθ² = JᵀJ. The posterior variance is 1 / (JᵀJ/σ² + 1/s0²)."""
    section = {**shipped_config("burgers_1d"), "resolution": [32]}
    model = build_physics(section, dtype=torch.float64)
    truth = model.true_coefficients()
    batch = windows(model, sims=2, steps=3)
    noise = 1e-3 * torch.randn(batch.targets.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    batch = Batch(batch.inputs, batch.targets + noise)
    raw = model.encode(truth)
    dynamic = torch.as_tensor(model.dynamic_channels)
    residuals = ObservedResiduals(model, raw, ["viscosity"], dynamic)
    theta = residuals.theta()

    def half_rss(t: float) -> float:
        with torch.no_grad():
            return 0.5 * float(residuals(theta + t, batch).pow(2).sum())

    h = 1e-3
    curvature = (half_rss(h) - 2 * half_rss(0.0) + half_rss(-h)) / h ** 2
    posterior = laplace_posterior(model, raw, ["viscosity"], [batch], dynamic)
    sigma2 = posterior.noise_std ** 2
    expected_std = 1 / math.sqrt(curvature / sigma2 + 1 / PRIOR_RAW_VARIANCE)
    # the residuals are the noise, not 0: its second-order term is small against JᵀJ, not absent
    c = posterior.coefficients["viscosity"]
    value = float(truth["viscosity"])
    from hyco.physics.coefficients import decode_value

    spec = model.coefficient_specs[0]
    low = float(decode_value(theta - Z95 * expected_std, spec))
    high = float(decode_value(theta + Z95 * expected_std, spec))
    assert c.value[0] == pytest.approx(value, rel=1e-12)
    assert c.low[0] == pytest.approx(low, rel=2e-2 * (high - low) / value)
    assert c.high[0] == pytest.approx(high, rel=2e-2 * (high - low) / value)
    # the estimated noise is the noise added (σ = 1e-3), within its sampling error over the residuals
    assert posterior.noise_std == pytest.approx(1e-3, rel=0.1)
    assert classify(c.prior_fraction) == ["determined"]


def test_a_cell_no_data_reach_keeps_the_prior_and_low_rank_matches_the_dense_posterior():
    """A field observed in one corner box for one step: far cells keep the prior's width (their interval spans
    nearly all the bounds), cells inside the box are narrowed; the low-rank posterior, with more
    eigenpairs than the data inform, gives the dense one's variances."""
    model = heat_field_model((16, 16))
    batch = windows(model, sims=2, steps=1)
    mask = torch.zeros_like(batch.targets[:, :, :1])
    mask[..., 0:6, 0:6] = 1.0
    noise = 1e-4 * torch.randn(batch.targets.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    batch = Batch(batch.inputs, batch.targets + noise, mask)
    raw = model.encode(model.true_coefficients())
    dynamic = torch.as_tensor(model.dynamic_channels)
    posterior = laplace_posterior(model, raw, ["diffusivity"], [batch], dynamic, rank=100, dense_limit=96)
    dense = laplace_posterior(model, raw, ["diffusivity"], [batch], dynamic)
    assert (posterior.method, dense.method) == ("low-rank", "dense")
    c = posterior.coefficients["diffusivity"]
    np.testing.assert_allclose(c.prior_fraction, dense.coefficients["diffusivity"].prior_fraction, rtol=1e-3)
    fraction = c.prior_fraction.reshape(16, 16)
    theta = raw["diffusivity"].numpy()
    s0 = math.sqrt(PRIOR_RAW_VARIANCE)
    prior = 1 / (1 + np.exp(-(theta + Z95 * s0))) - 1 / (1 + np.exp(-(theta - Z95 * s0)))
    far = (slice(9, 12), slice(9, 12))  # >= 3 cells from the box, also across the periodic edges
    np.testing.assert_allclose(fraction[far], prior[far], rtol=1e-3)  # the prior's width, untouched by the data
    assert set(classify(fraction[far].reshape(-1))) == {CLASSES[2]}
    assert CLASSES[2] not in classify(fraction[2:5, 2:5].reshape(-1))
    std = c.std.reshape(16, 16)
    assert std[far].min() > 5 * std[2:5, 2:5].max()


def test_classes_follow_the_share_of_the_bounds_and_read_in_words():
    assert classify([0.01, 0.049, 0.05, 0.3, 0.5, 1.0]) == [CLASSES[0], CLASSES[0], CLASSES[1], CLASSES[1],
                                                           CLASSES[2], CLASSES[2]]
    assert describe("viscosity", ["value"], ["determined"]) == "viscosity is determined by the data"
    text = describe("kappa", ["heights[0]", "heights[1]", "centers[1][0]"],
                    [CLASSES[0], CLASSES[2], CLASSES[2]])
    assert text == ("kappa: heights[0] is determined by the data; heights[1] and centers[1][0] are not determined "
                    "by these observations")


def test_the_gram_matrix_from_products_equals_the_one_from_the_jacobian(monkeypatch):
    """Past `_JACOBIAN_BYTES`, JᵀJ is built from Gauss–Newton products of the unit vectors: the same matrix."""
    import hyco.training.laplace as laplace

    model = heat_field_model((4, 4))
    batch = windows(model, sims=1, steps=2)
    residuals = ObservedResiduals(model, model.initial_raw(), ["diffusivity"], torch.as_tensor(model.dynamic_channels))
    part = laplace._Linearised(residuals, residuals.theta(), batch)
    from_jacobian = laplace._gram(part, 16)
    monkeypatch.setattr(laplace, "_JACOBIAN_BYTES", 0)
    from_products = laplace._gram(part, 16)
    torch.testing.assert_close(from_products, from_jacobian, rtol=1e-10, atol=1e-12 * float(from_jacobian.abs().max()))


def test_the_smoothness_prior_is_the_penalty_s_hessian():
    """On a constant field the penalty's differences vanish, so its Hessian is its Gauss–Newton matrix: what
    `prior_precision` adds with weight 2 (−log p = weight/2 · S) besides the bounds' I / s0²."""
    from hyco.config.schema import PhysicalTrainerConfig
    from hyco.training.laplace import prior_precision
    from hyco.training.physical import PhysicalTrainer

    model = heat_field_model((4, 4))
    trainer = PhysicalTrainer(PhysicalTrainerConfig(smoothness=1.0), model)
    raw = {"diffusivity": torch.full((4, 4), -1.3, dtype=torch.float64)}
    residuals = ObservedResiduals(model, raw, ["diffusivity"], torch.as_tensor(model.dynamic_channels))
    theta = residuals.theta()
    hessian = torch.autograd.functional.hessian(lambda t: trainer._smoothness(residuals.unflatten(t)), theta)
    prior = prior_precision(model, residuals, theta, weight=2.0) - np.eye(16) / PRIOR_RAW_VARIANCE
    np.testing.assert_allclose(prior, hessian.numpy(), rtol=1e-9, atol=1e-12 * float(hessian.abs().max()))
    assert float(hessian.abs().max()) > 0


def burgers_linearised():
    """1D Burgers on 16 cells, one 2-step window, linearised with the initial state's gradient kept."""
    import hyco.training.laplace as laplace

    section = {**shipped_config("burgers_1d"), "resolution": [16]}
    model = build_physics(section, dtype=torch.float64)
    batch = windows(model, sims=1, steps=2)
    dynamic = torch.as_tensor(model.dynamic_channels)
    residuals = ObservedResiduals(model, model.initial_raw(), ["viscosity"], dynamic)
    return model, batch, dynamic, residuals, laplace._Linearised(residuals, residuals.theta(), batch, inputs_grad=True)


def test_the_initial_state_noise_term_equals_the_dense_jacobians_product():
    """BᵀB = Jᵀ J_x S J_xᵀ J, J_x the residuals' Jacobian in the initial state, S its noise variance."""
    model, batch, dynamic, residuals, part = burgers_linearised()
    jacobian = part.jacobian()
    noise = torch.full((len(model.dynamic_channels),), 0.3, dtype=torch.float64)
    gram = part.input_gram(jacobian, dynamic, noise)
    inputs = batch.inputs.clone()
    j_x = torch.autograd.functional.jacobian(lambda x: residuals(residuals.theta(), batch, x), inputs)
    j_x = j_x.index_select(2, dynamic).reshape(j_x.shape[0], -1)  # [m, dynamic inputs]
    expected = jacobian.T @ j_x @ (0.09 * j_x.T) @ jacobian
    torch.testing.assert_close(gram, expected, rtol=1e-8, atol=1e-12 * float(expected.abs().max()))
    assert float(expected.abs().max()) > 0


def test_the_carried_noise_trace_is_that_of_the_dense_jacobian():
    """Hutchinson's estimate of tr(J_x S J_xᵀ) (what the initial states' noise adds to the expected RSS) against
    the dense J_x: unbiased, within its sampling error at 512 probes."""
    model, batch, dynamic, residuals, part = burgers_linearised()
    noise = torch.full((len(model.dynamic_channels),), 0.3, dtype=torch.float64)
    j_x = torch.autograd.functional.jacobian(lambda x: residuals(residuals.theta(), batch, x), batch.inputs.clone())
    exact = 0.09 * float(j_x.index_select(2, dynamic).pow(2).sum())
    assert exact > 0
    assert part.carried_trace(dynamic, noise, probes=512) == pytest.approx(exact, rel=0.1)


def test_residuals_beyond_the_configured_noise_widen_the_interval_by_that_factor_and_say_so():
    """J depends on the prediction only, so data with a term the model lacks (a fixed ripple) give the same JᵀJ
    as data the model explains: with the noise known, the raw variance is 1/(JᵀJ/φ + 1/s0²) against 1/(JᵀJ + 1/s0²),
    φ = RSS/(n - p) in noise units, and the entry says the solver misfits. Data the model explains are left at the
    noise (φ below MISFIT_LIMIT)."""
    from hyco.evaluation.uncertainty import coefficient_entries

    section = {**shipped_config("burgers_1d"), "resolution": [32]}
    model = build_physics(section, dtype=torch.float64)
    clean = windows(model, sims=2, steps=3)
    sigma = 1e-3
    noise = sigma * torch.randn(clean.targets.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x = torch.linspace(0, 2 * math.pi, clean.targets.shape[-1], dtype=torch.float64)
    ripple = 0.01 * torch.sin(3 * x)  # 10 x the noise
    raw, dynamic = model.encode(model.true_coefficients()), torch.as_tensor(model.dynamic_channels)
    known = torch.tensor([sigma], dtype=torch.float64)
    fits = laplace_posterior(model, raw, ["viscosity"], [Batch(clean.inputs, clean.targets + noise)], dynamic,
                             noise=known)
    wrong_batch = Batch(clean.inputs, clean.targets + noise + ripple)
    wrong = laplace_posterior(model, raw, ["viscosity"], [wrong_batch], dynamic, noise=known)
    assert 0.8 < fits.misfit < 1.25 and not fits.misfits
    residuals = ObservedResiduals(model, raw, ["viscosity"], dynamic, known)
    with torch.no_grad():
        rss = float(residuals(residuals.theta(), wrong_batch).pow(2).sum())
    assert wrong.misfit == pytest.approx(rss / (wrong.observed_values - 1), rel=1e-9)
    assert wrong.misfit > 10 * MISFIT_LIMIT
    jtj = 1 / float(fits.coefficients["viscosity"].raw_std[0]) ** 2 - 1 / PRIOR_RAW_VARIANCE  # σ² = 1: fits
    expected = 1 / math.sqrt(jtj / wrong.misfit + 1 / PRIOR_RAW_VARIANCE)
    assert float(wrong.coefficients["viscosity"].raw_std[0]) == pytest.approx(expected, rel=1e-6)
    entry = coefficient_entries(wrong, None)["viscosity"]
    assert entry["misfit"] == wrong.misfit and "misfits the observed data" in entry["identifiability"]
    assert "misfit" not in coefficient_entries(fits, None)["viscosity"]
