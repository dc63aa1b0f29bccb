"""How far the data pin down each learned coefficient: the Laplace (Gauss–Newton) posterior at the optimum.

Around the learned raw parameters θ̂ (the unconstrained numbers the optimiser moved, hyco.physics.coefficients),
the posterior of θ is approximated by a Gaussian with precision

    H = JᵀJ / σ² + c ∇²S + I / s0²

- J: the Jacobian of the observed residuals (prediction − observation at every observed value of the real
  windows, through the differentiable rollout) with respect to θ; σ² the noise variance, estimated from the
  residuals at the optimum, RSS / (n − p), so it also holds what the solver's discretisation cannot fit;
- c ∇²S: the smoothness regulariser (`trainer.physical.smoothness`) read as a prior (its Gauss–Newton matrix),
  c = n · smoothness / σ² (the objective RSS/n + smoothness·S scaled to a negative log-posterior);
- I / s0²: the bounds read as a prior. A number uniform in its bounds is logistic in raw space
  (x = lo + (hi − lo) sigmoid(θ)); s0² = π²/3 is that distribution's variance.

Few numbers (scalar, parametric, a small field): J is formed column by column (a double-backward pass per
number), and H is inverted densely: full covariance, correlations. A field: matrix-free. A Gauss–Newton–vector
product Jᵀ(Jv) costs two backward passes; the prior-whitened data term L⁻¹(JᵀJ/σ²)L⁻ᵀ (prior precision L Lᵀ) is
reduced to its leading eigenpairs by a randomised range finder, and the covariance is the prior's minus what
those directions learned — exact in their span, the prior's width outside it (directions the data do not
inform).

Intervals are mapped from raw space through each number's (monotone) decoding, so they stay inside the
bounds; `std` is the interval's half-width / 1.96 in physical units. A number's *prior fraction* is the share of
its bounds the interval spans, measured where the prior is uniform (sigmoid(raw); for a number with one bound,
the posterior raw std over the prior's): how much of what the bounds allowed the data still allow
(hyco.training.identifiability turns it into a class).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from hyco.data.batch import Batch
from hyco.training.loss import sensor_samples
from hyco.utils.seed import seeded_generator

PRIOR_RAW_VARIANCE = math.pi ** 2 / 3  # the logistic distribution's variance: a uniform-in-bounds prior in raw space
Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
_BLOCK = 16  # vectors per batched backward pass (memory: this many copies of the rollout's gradient state)
# Up to this many learned numbers (a 64x64 field), JᵀJ is formed in full and H inverted densely: measured on heat_2d
# (32x32, centre quarter observed), a rank-64 low-rank posterior left every cell near the prior, since the data inform
# more directions (~ the observed cells) than it keeps; forming JᵀJ costs p Jacobian-vector products.
DENSE_LIMIT = 4096
# Beyond this many learned numbers (a 128x128 field) the low-rank path's dense p x p prior and its Cholesky factor
# (2 GiB each at the limit, O(p³) to factor) are out of reach: the method is refused (hyco.tasks.experiment)
LAPLACE_LIMIT = 16384
_JACOBIAN_BYTES = 2 ** 29  # above this, JᵀJ is built from Gauss–Newton products of the unit vectors instead of J


@dataclass
class CoefficientPosterior:
    """One learned coefficient's posterior, in physical units (flat over its numbers or cells).

    `labels` name the numbers (`value`; `heights[0]`, `centers[1][0]`, ...; empty for a field, whose numbers are
    its cells in tensor order, `shape`)."""

    name: str
    kind: str
    shape: tuple[int, ...]
    labels: list[str]
    value: np.ndarray
    low: np.ndarray
    high: np.ndarray
    prior_fraction: np.ndarray  # the share of the bounds (the prior's range) the 95 % interval spans, 0..1
    raw_std: np.ndarray | None = None  # the posterior std of the raw (unconstrained) numbers
    ensemble_mean: np.ndarray | None = None  # an ensemble's (hyco.training.ensemble): its members' mean and std
    ensemble_std: np.ndarray | None = None

    @property
    def std(self) -> np.ndarray:
        return (self.high - self.low) / (2 * Z95)


CARRIED_PROBES = 1  # the stream of seeded_generator for the probes of `carried_trace`
MISFIT_LIMIT = 2.0  # residuals over twice what the configured noise explains: the solver misfits the data


@dataclass
class Posterior:
    """The posterior of every learned coefficient, and how it was made."""

    coefficients: dict[str, CoefficientPosterior]
    noise_std: float  # σ, in the data's units
    observed_values: int  # n: residuals that entered J
    parameters: int  # p: learned raw numbers
    method: str  # "dense" | "low-rank"
    rank: int  # eigenpairs kept (p when dense)
    seconds: float
    correlation: np.ndarray | None = None  # dense only: over all learned numbers, in `labels` order
    labels: list[str] = field(default_factory=list)  # "name" or "name.label" for each learned number (dense)
    noise_from: str = "residuals at the optimum, RSS / (n - p)"
    initial_noise: bool = False  # the noise of the initial states, carried through the rollout, is counted
    misfit: float = 1.0  # known noise: RSS over what the noise explains (above MISFIT_LIMIT σ² was widened by it)
    kind: str = "laplace"  # how it was made: "laplace" (here) or "ensemble" (hyco.training.ensemble)
    details: dict = field(default_factory=dict)  # what else metrics.json says of how it was made

    def summary(self) -> dict:
        """How the posterior was made, for metrics.json."""
        return {"method": self.kind, **self.details, "solver": self.method, "noise_std": self.noise_std,
                "noise_from": self.noise_from,
                "initial_state_noise_counted": self.initial_noise, "observed_values": self.observed_values,
                "parameters": self.parameters, "rank": self.rank, "seconds": self.seconds, "misfit": self.misfit}

    @property
    def misfits(self) -> bool:
        """The residuals are more than twice what the configured noise explains: the solver does not fit the
        data (its discretisation, physics it lacks, a filled initial state), and the intervals, widened by that
        factor, still rest on a model that is wrong."""
        return self.misfit > MISFIT_LIMIT


class ObservedResiduals:
    """The observed residuals of the real windows as a function of the flat vector θ of learned raw numbers;
    every other coefficient stays at `raw`."""

    def __init__(self, model, raw: dict[str, torch.Tensor], learnable: Sequence[str], dynamic: torch.Tensor,
                 scale: torch.Tensor | None = None):
        self.model, self.dynamic = model, dynamic
        self.scale = scale  # per dynamic channel: residuals are divided by it (the known noise std)
        self.raw = {k: v.detach() for k, v in raw.items()}
        self.learnable = list(learnable)
        self.sizes = [self.raw[n].numel() for n in self.learnable]

    def theta(self) -> torch.Tensor:
        return torch.cat([self.raw[n].reshape(-1) for n in self.learnable])

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = dict(self.raw)
        for name, part in zip(self.learnable, torch.split(theta, self.sizes)):
            raw[name] = part.reshape(self.raw[name].shape)
        return raw

    def __call__(self, theta: torch.Tensor, batch: Batch, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """√mask · (prediction − observation) [/ scale] at the observed values of `batch`'s dynamic channels, flat;
        rolled out from `inputs` (default: the batch's)."""
        start = batch.inputs if inputs is None else inputs
        frames = self.model.rollout(start, self.model.decode(self.unflatten(theta)), batch.steps)
        if batch.has_sensors:  # point sensors: the residuals are at their samples (a grid mask of 0 adds none)
            return self._at_sensors(frames, batch)
        prediction = frames.index_select(2, self.dynamic)
        target = batch.targets[:, :batch.steps].index_select(2, self.dynamic)
        difference = prediction - target
        if self.scale is not None:
            difference = difference / self.scale.to(difference).reshape(1, 1, -1, *[1] * (difference.dim() - 3))
        mask = batch.dynamic_mask(self.dynamic)
        if mask is None:
            return difference.reshape(-1)
        weights = torch.broadcast_to(mask.to(prediction.dtype), prediction.shape)
        seen = weights != 0
        return (difference * weights.sqrt())[seen]


    def _at_sensors(self, frames: torch.Tensor, batch: Batch) -> torch.Tensor:
        predicted, observed, active = sensor_samples(frames, batch, self.dynamic)  # [B, S, Cd, K]
        difference = predicted - observed
        if self.scale is not None:
            difference = difference / self.scale.to(difference).reshape(1, 1, -1, 1)
        return difference[torch.broadcast_to(active != 0, difference.shape)]


class _Linearised:
    """The residuals of one batch with the graph kept for Jacobian–vector products (double backward):
    g(u) = Jᵀu is built once; J v = ∂(g·v)/∂u, Jᵀw = ∂(r·w)/∂θ."""

    def __init__(self, residuals: ObservedResiduals, theta: torch.Tensor, batch: Batch, inputs_grad: bool = False):
        self.theta = theta.detach().clone().requires_grad_(True)
        self.inputs = batch.inputs.detach().clone().requires_grad_(inputs_grad)
        self.r = residuals(self.theta, batch, self.inputs)
        self.u = torch.zeros_like(self.r, requires_grad=True)
        (self.g,) = torch.autograd.grad(self.r, self.theta, self.u, create_graph=True)

    def jvp(self, v: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(self.g, self.u, v, retain_graph=True)[0]

    def vjp(self, w: torch.Tensor) -> torch.Tensor:
        return torch.autograd.grad(self.r, self.theta, w, retain_graph=True)[0]

    def gn(self, v: torch.Tensor) -> torch.Tensor:
        """Jᵀ(J v)."""
        return self.vjp(self.jvp(v))

    def gn_block(self, block: torch.Tensor) -> torch.Tensor:
        """Jᵀ(J v) for each row v of `block` [b, p], the rows' backward passes batched (vmap)."""
        out = []
        for rows in torch.split(block, _BLOCK):
            jv = torch.autograd.grad(self.g, self.u, rows, retain_graph=True, is_grads_batched=True)[0]
            out.append(torch.autograd.grad(self.r, self.theta, jv, retain_graph=True, is_grads_batched=True)[0])
        return torch.cat(out)

    def input_gram(self, jacobian: torch.Tensor, dynamic: torch.Tensor, input_noise: torch.Tensor) -> torch.Tensor:
        """BᵀB [p, p], B = S^½ J_xᵀ J: what noise of std `input_noise` (per dynamic channel) on the initial states
        adds to Jᵀ Cov(r) J, through the rollout (J_x: the residuals' Jacobian in the initial states)."""
        rows = torch.cat([torch.autograd.grad(self.r, self.inputs, cols, retain_graph=True, is_grads_batched=True)[0]
                          for cols in torch.split(jacobian.T.to(self.r.dtype).contiguous(), _BLOCK)])
        rows = rows.index_select(2, dynamic) * input_noise.to(rows).reshape(1, 1, -1, *[1] * (rows.dim() - 3))
        b = rows.reshape(rows.shape[0], -1).double()
        return b @ b.T

    def carried_trace(self, dynamic: torch.Tensor, input_noise: torch.Tensor, probes: int = 8, seed: int = 0) -> float:
        """tr(J_x S J_xᵀ): see `carried_trace`."""
        return carried_trace(self.r, self.inputs, dynamic, input_noise, probes, seed)

    def jacobian(self) -> torch.Tensor:
        """J [m, p], one column per learned number."""
        eye = torch.eye(self.theta.numel(), dtype=self.theta.dtype, device=self.theta.device)
        return torch.cat([torch.autograd.grad(self.g, self.u, rows, retain_graph=True, is_grads_batched=True)[0]
                          for rows in torch.split(eye, _BLOCK)]).T


def carried_trace(r: torch.Tensor, inputs: torch.Tensor, dynamic: torch.Tensor, input_noise: torch.Tensor,
                  probes: int = 8, seed: int = 0) -> float:
    """tr(J_x S J_xᵀ) of residuals `r` rolled out from `inputs` (with their graph): what noise of std
    `input_noise` on the initial states adds, through the rollout, to the expected sum of squared residuals
    (Hutchinson's estimator, Rademacher probes drawn from `seed`)."""
    signs = torch.randint(0, 2, (probes, r.numel()), generator=seeded_generator(seed, CARRIED_PROBES))
    probe = (2 * signs - 1).to(r)
    rows = torch.autograd.grad(r, inputs, probe, retain_graph=True, is_grads_batched=True)[0]
    rows = rows.index_select(2, dynamic) * input_noise.to(rows).reshape(1, 1, -1, *[1] * (rows.dim() - 3))
    return float(rows.double().pow(2).sum()) / probes


def misfit_ratio(model, raw: dict[str, torch.Tensor], learnable: Sequence[str], batches: Sequence[Batch],
                 dynamic: torch.Tensor, noise: torch.Tensor, carried: bool, seed: int = 0) -> float:
    """φ = RSS / (n − p + the carried noise), the residuals in units of the known noise std `noise` (per dynamic
    channel): about 1 when the solver explains the data to the noise (`laplace_posterior`'s `misfit`, without
    its Jacobians). `carried`: the initial states carry that noise too, and the rollout carries it along."""
    scale = noise.to(device=raw[learnable[0]].device, dtype=torch.float64).clamp_min(torch.finfo(torch.float64).tiny)
    residuals = ObservedResiduals(model, raw, learnable, dynamic, scale)
    theta = residuals.theta().detach()
    rss, n, extra = 0.0, 0, 0.0
    for batch in batches:
        inputs = batch.inputs.detach().clone().requires_grad_(carried)
        r = residuals(theta, batch, inputs)
        rss += float(r.detach().double().pow(2).sum())
        n += int(r.numel())
        if carried and r.numel():
            extra += carried_trace(r, inputs, dynamic, noise.double(), seed=seed)
    return rss / max(n - int(theta.numel()) + extra, 1.0)


def gauss_newton_product(residuals: ObservedResiduals, batches: Sequence[Batch], v: torch.Tensor) -> torch.Tensor:
    """JᵀJ v summed over `batches`, at the residuals' raw parameters (matrix-free)."""
    theta = residuals.theta()
    return sum(_Linearised(residuals, theta, b).gn(v.to(theta)) for b in batches)


def prior_precision(model, residuals: ObservedResiduals, theta: torch.Tensor, weight: float) -> np.ndarray:
    """The prior's precision over θ [p, p]: the bounds' I / s0², plus, for field coefficients, the smoothness
    penalty's Gauss–Newton matrix `weight` · Dᵀ GᵀG D (G: the periodic differences per axis over √cells, as
    PhysicalTrainer._smoothness takes them; D: d value / d raw per cell)."""
    p = int(theta.numel())
    precision = np.eye(p) / PRIOR_RAW_VARIANCE
    if weight <= 0:
        return precision
    specs = {s.name: s for s in model.coefficient_specs}
    offset = 0
    for name, size in zip(residuals.learnable, residuals.sizes):
        if specs[name].kind == "field":
            shape = tuple(residuals.raw[name].shape)
            raw = theta[offset:offset + size].detach().double().cpu().requires_grad_(True)
            from hyco.physics.coefficients import decode_value

            (slope,) = torch.autograd.grad(decode_value(raw, specs[name]).sum(), raw)
            eye = torch.eye(size, dtype=torch.float64).reshape(size, *shape)
            gram = sum(((torch.roll(eye, -1, axis + 1) - eye).reshape(size, size)) @
                       ((torch.roll(eye, -1, axis + 1) - eye).reshape(size, size)).T for axis in range(len(shape)))
            block = (slope[:, None] * gram * slope[None, :]).numpy() / size
            precision[offset:offset + size, offset:offset + size] += weight * block
        offset += size
    return precision


def laplace_posterior(model, raw: dict[str, torch.Tensor], learnable: Sequence[str], batches: Sequence[Batch],
                      dynamic: torch.Tensor, smoothness: float = 0.0, rank: int = 256,
                      dense_limit: int = DENSE_LIMIT, seed: int = 0, noise: torch.Tensor | None = None,
                      input_noise: torch.Tensor | None = None) -> Posterior:
    """The Laplace posterior of the `learnable` coefficients at `raw` from the observed values of `batches`
    (see the module docstring); `smoothness` the weight of the trainer's smoothness penalty (a prior on
    fields); `rank` bounds the eigenpairs kept for more than `dense_limit` numbers (randomised, from `seed`).

    `noise`: the observation noise std per dynamic channel, when known (else σ is estimated from the residuals).
    `input_noise`: the noise std of the windows' input states per dynamic channel, when they carry noise that no
    target shares (trajectories rolled out from a noisy frame 0). The rollout carries it into every frame, so the
    residuals are correlated; with few numbers (dense) the covariance is then the sandwich
    H⁻¹ (JᵀJ/σ² + BᵀB/σ² + P) H⁻¹ (hyco's fit is least squares, which ignores that correlation; see
    `_Linearised.input_gram` for B)."""
    start = time.perf_counter()
    scale = None if noise is None else noise.to(device=raw[learnable[0]].device, dtype=torch.float64).clamp_min(
        torch.finfo(torch.float64).tiny)
    residuals = ObservedResiduals(model, raw, learnable, dynamic, scale)
    theta = residuals.theta()
    p = int(theta.numel())
    dense = p <= dense_limit
    inputs_grad = dense and input_noise is not None and bool((input_noise > 0).any())
    parts = [_Linearised(residuals, theta, b, inputs_grad) for b in batches]
    parts = [part for part in parts if part.r.numel()]
    n = sum(int(part.r.numel()) for part in parts)
    if n == 0:
        raise ValueError("uncertainty: the data term has no observed value to estimate a posterior from")
    rss = sum(float(part.r.detach().double().pow(2).sum()) for part in parts)
    misfit = 1.0
    if noise is not None:  # residuals already divided by the known noise std: RSS ≈ n - p (+ the carried noise)
        carried = sum(part.carried_trace(dynamic, input_noise.double(), seed=seed) for part in parts) \
            if inputs_grad else 0.0
        misfit = rss / max(n - p + carried, 1.0)
        # residuals clearly beyond the noise (model error) widen σ² by their factor; below the limit the gap is
        # within what the noise model, whose carried part is itself an estimate, explains
        sigma2, noise_std = (misfit if misfit > MISFIT_LIMIT else 1.0), float(noise.double().mean())
    else:
        sigma2 = max(rss / max(n - p, max(1, n // 2)), torch.finfo(theta.dtype).tiny)
        noise_std = math.sqrt(sigma2)
    # the objective RSS/n + smoothness·S as a negative log-posterior: (n / 2σ²) times it
    prior = prior_precision(model, residuals, theta, n * smoothness / sigma2)
    if dense:
        jacobians = [part.jacobian() if inputs_grad else None for part in parts]
        jtj = sum((j.T.double() @ j.double()) if j is not None else _gram(part, p) for part, j in zip(parts, jacobians))
        precision = jtj.cpu().numpy() / sigma2 + prior
        precision = 0.5 * (precision + precision.T)
        covariance = np.linalg.pinv(precision, hermitian=True)
        if inputs_grad:
            # J and J_x are those of the residuals as they are: already divided by the known noise, else not
            scaled = input_noise.double() / (1.0 if scale is not None else math.sqrt(sigma2))
            carried = sum(part.input_gram(j, dynamic, scaled) for part, j in zip(parts, jacobians)).cpu().numpy()
            covariance = covariance @ (precision + carried / sigma2) @ covariance
            covariance = 0.5 * (covariance + covariance.T)
        variance, kept = np.clip(np.diag(covariance), 0, None), p
        scale = np.sqrt(np.maximum(variance, np.finfo(float).tiny))
        correlation = covariance / np.outer(scale, scale)
    else:
        variance, kept = _low_rank_variance(parts, prior, theta, sigma2, rank, seed)
        correlation = None
    posterior_std = torch.as_tensor(np.sqrt(variance), dtype=torch.float64)
    coefficients = physical_intervals(model, residuals, theta.detach().double().cpu(), posterior_std)
    labels = [label for name in learnable for label in number_labels(coefficients[name])]
    posterior = Posterior(coefficients, noise_std, n, p, "dense" if dense else "low-rank", kept,
                          time.perf_counter() - start, correlation if dense else None, labels)
    posterior.noise_from = "the configured observation noise" if noise is not None else \
        "residuals at the optimum, RSS / (n - p)"
    posterior.initial_noise = inputs_grad
    posterior.misfit = misfit
    return posterior


def _gram(part: _Linearised, p: int) -> torch.Tensor:
    """JᵀJ [p, p] (float64) of one batch: from J itself when it is small, else column by column."""
    if part.r.numel() * p * part.r.element_size() <= _JACOBIAN_BYTES:
        j = part.jacobian().double()
        return j.T @ j
    eye = torch.eye(p, dtype=part.theta.dtype, device=part.theta.device)
    return part.gn_block(eye).double()


def _low_rank_variance(parts, prior: np.ndarray, theta, sigma2, rank, seed) -> tuple[np.ndarray, int]:
    """diag of (JᵀJ/σ² + P)⁻¹ from the leading eigenpairs (λ, V) of the prior-whitened data term
    A = L⁻¹ (JᵀJ/σ²) L⁻ᵀ, P = L Lᵀ: L⁻ᵀ (I − V diag(λ/(1+λ)) Vᵀ) L⁻¹, exact in the span of V, the prior
    outside it. The eigenpairs come from a randomised range finder with one power iteration (Halko, Martinsson
    & Tropp 2011): 2 (rank + 10) Gauss–Newton products."""
    from scipy.linalg import cho_factor, cho_solve, solve_triangular

    p = int(theta.numel())
    lower = np.linalg.cholesky(prior)

    def apply(block: np.ndarray) -> np.ndarray:
        w = torch.as_tensor(solve_triangular(lower.T, block, lower=False).T.copy(), dtype=theta.dtype,
                            device=theta.device)
        g = (sum(part.gn_block(w) for part in parts).double() / sigma2).cpu().numpy().T
        return solve_triangular(lower, g, lower=True)

    k = max(1, min(rank, p))
    probes = min(p, k + 10)
    omega = np.random.default_rng(seed).standard_normal((p, probes))
    basis, _ = np.linalg.qr(apply(omega))
    basis, _ = np.linalg.qr(apply(basis))  # one power iteration: the leading directions sharpen
    image = apply(basis)
    small = basis.T @ image
    values, vectors = np.linalg.eigh(0.5 * (small + small.T))
    order = np.argsort(values)[::-1][:k]
    values, vectors = np.clip(values[order], 0, None), basis @ vectors[:, order]
    prior_variance = np.diag(cho_solve(cho_factor(prior, lower=True), np.eye(p)))
    whitened = solve_triangular(lower.T, vectors, lower=False)  # L⁻ᵀ V
    variance = prior_variance - (whitened ** 2) @ (values / (1 + values))
    return np.clip(variance, 0, None), k


def physical_intervals(model, residuals: ObservedResiduals, theta: torch.Tensor, std: torch.Tensor
                       ) -> dict[str, CoefficientPosterior]:
    """Per coefficient: the learned numbers and their interval θ ± 1.96 std, mapped from raw space (monotone
    per number)."""
    out = {}
    thetas = torch.split(theta, residuals.sizes)
    stds = torch.split(std, residuals.sizes)
    specs = {s.name: s for s in model.coefficient_specs}
    for name, t, s in zip(residuals.learnable, thetas, stds):
        numbers, labels, bounded = number_decoder(model, name, specs[name], t.numel())
        shape = tuple(residuals.raw[name].shape)
        spanned = torch.sigmoid(t + Z95 * s) - torch.sigmoid(t - Z95 * s)  # sigmoid(raw) is uniform under the prior
        fraction = torch.where(bounded, spanned, torch.clamp(s / math.sqrt(PRIOR_RAW_VARIANCE), max=1.0))
        out[name] = CoefficientPosterior(
            name, specs[name].kind, shape, labels,
            numbers(t).numpy(), numbers(t - Z95 * s).numpy(), numbers(t + Z95 * s).numpy(), fraction.numpy(),
            s.numpy())
    return out


def number_decoder(model, name: str, spec, size: int):
    """raw numbers (flat, float64) -> physical numbers (flat); the numbers' labels; which numbers have two finite
    bounds (decoded through a sigmoid: the prior is uniform in sigmoid(raw))."""
    parametric = getattr(model, "parametric_coefficients", [])
    if name in parametric:
        coefficient = model.parametric(name)
        labels = [f"{g}{_index(i, coefficient.shapes[g])}" for g in coefficient.groups
                  for i in range(math.prod(coefficient.shapes[g]))]

        def numbers(raw: torch.Tensor) -> torch.Tensor:
            decoded = coefficient.decode(raw)
            return torch.cat([decoded[g].reshape(-1) for g in coefficient.groups])
        return numbers, labels, torch.isfinite(coefficient.upper.double())
    from hyco.physics.coefficients import decode_value

    labels = ["value"] if spec.kind == "scalar" else []
    bounded = torch.full((size,), spec.upper is not None)
    return (lambda raw: decode_value(raw, spec).reshape(-1)), labels, bounded


def _index(flat: int, shape: tuple[int, ...]) -> str:
    return "".join(f"[{i}]" for i in np.unravel_index(flat, shape)) if shape else ""


def number_labels(posterior: CoefficientPosterior) -> list[str]:
    """`name` for a scalar, `name.heights[0]` for a parametric number, `name[i]` for a field's cell i (flat)."""
    if posterior.kind == "scalar":
        return [posterior.name]
    if posterior.labels:
        return [f"{posterior.name}.{label}" for label in posterior.labels]
    return [f"{posterior.name}[{i}]" for i in range(posterior.value.size)]
