"""How far the data pin down each learned coefficient, from an ensemble of refitted solvers.

Each of the K members is a physical model trained anew (the trained run itself is not one of them, see below)
from its own initial guess (`evaluation.ensemble_start`: near the evaluated optimum, or a draw of the bounds'
prior, see `draw_initial_raw`), in its own data order, on the observations with a
second, independent draw of the observation noise added (randomised maximum likelihood): fitting y + ε instead
of y moves the optimum by what the noise moves it by, so for a model that is linear near the optimum the
members' spread around the fit to y is the sampling spread of that fit -- the noise of frame 0, carried by a
trajectory's rollout, included, since frame 0 is perturbed too. Without the perturbation every member would
fit the same data: for a problem with one optimum they would all end where the trained run did, and their
spread would measure the optimiser's tolerance, not the data.

The trained run is left out because it fits the unperturbed data: it is the centre the members scatter around,
not a draw of that scatter. The interval of a number is that centre (the evaluated run's value) ± t_{K-1} s in
raw space, s the members' sample std (ddof 1) and t_{K-1} the 97.5 % quantile of Student's t with K - 1 degrees
of freedom (s is estimated from K members); it is mapped through the number's decoding like the Laplace
interval (hyco.training.laplace.physical_intervals), so the classes, metrics.json fields and figures are the
same. `std` is again the interval's half-width / 1.96; `ensemble_mean` and `ensemble_std` are the members' own
mean and std in physical units.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hyco.training.laplace import (
    DENSE_LIMIT,
    Z95,
    ObservedResiduals,
    Posterior,
    number_decoder,
    number_labels,
    physical_intervals,
)
from hyco.utils.seed import derive_seed, seeded_generator

ENSEMBLE_STREAM = 41  # member seeds: hyco.utils.seed.derive_seed(seed, ENSEMBLE_STREAM, member)
INITIAL_STREAM, ORDER_STREAM = 0, 1  # under a member's seed: its initial guess, its data order
# ensemble_start=optimum: a member starts at the evaluated optimum moved by this many logistic draws (raw units; a
# tenth of the prior's scale): different starts that stay in the optimum's basin
OPTIMUM_JITTER = 0.1


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member `member` under the training `seed` (its guess, data order and noise draw)."""
    return derive_seed(seed, ENSEMBLE_STREAM, member)


def draw_initial_raw(model, raw: dict[str, torch.Tensor], learnable: Sequence[str], seed: int,
                     around: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """A member's initial guess.

    Without `around` (`ensemble_start=prior`): a draw of the bounds' prior -- each learned number with two
    bounds uniform in them (raw = logit of a uniform draw; log-uniform for log-bounded ones), each number with
    one bound its guess in `raw` plus a logistic draw in raw space (variance π²/3, the Laplace prior's).
    With `around` (`ensemble_start=optimum`): those raw numbers plus OPTIMUM_JITTER times a logistic draw: other
    starts in the same basin."""
    specs = {s.name: s for s in model.coefficient_specs}
    generator = seeded_generator(seed, INITIAL_STREAM)
    out = {k: v.detach().clone() for k, v in raw.items()}
    for name in learnable:
        size = raw[name].numel()
        _, _, bounded = number_decoder(model, name, specs[name], size)
        u = torch.rand(size, generator=generator, dtype=torch.float64).clamp(1e-6, 1 - 1e-6)
        logistic = torch.log(u) - torch.log1p(-u)
        if around is not None:
            drawn = around[name].detach().reshape(-1).double().cpu() + OPTIMUM_JITTER * logistic
        else:
            guess = raw[name].detach().reshape(-1).double().cpu()
            drawn = torch.where(bounded.reshape(-1), logistic, guess + logistic)
        out[name] = drawn.reshape(raw[name].shape).to(raw[name])
    return out


def t_quantile(members: int) -> float:
    """The 97.5 % quantile of Student's t with `members` - 1 degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, members - 1))


def ensemble_posterior(model, raw: dict[str, torch.Tensor], learnable: Sequence[str],
                       members: Sequence[dict[str, torch.Tensor]], seconds: float, details: dict | None = None
                       ) -> Posterior:
    """The ensemble's posterior of the `learnable` coefficients, centred on `raw` (the evaluated run's), from
    the members' learned raw numbers (see the module docstring)."""
    if len(members) < 2:
        raise ValueError("evaluation.ensemble_size: at least 2 members are needed for a spread")
    residuals = ObservedResiduals(model, raw, learnable, dynamic=torch.zeros(0, dtype=torch.long))
    theta = residuals.theta().detach().double().cpu()
    samples = torch.stack([torch.cat([m[n].detach().double().cpu().reshape(-1) for n in learnable])
                           for m in members])  # [K, p]
    k, p = samples.shape
    spread = samples.std(dim=0, unbiased=True)
    t = t_quantile(k)
    # θ ± t s: physical_intervals draws θ ± 1.96 · std, so it is given s · t / 1.96
    coefficients = physical_intervals(model, residuals, theta, spread * t / Z95)
    specs = {s.name: s for s in model.coefficient_specs}
    offset = 0
    for name, size in zip(residuals.learnable, residuals.sizes):
        numbers, _, _ = number_decoder(model, name, specs[name], size)
        values = torch.stack([numbers(row[offset:offset + size]) for row in samples]).numpy()  # [K, size]
        coefficients[name].ensemble_mean = values.mean(axis=0)
        coefficients[name].ensemble_std = values.std(axis=0, ddof=1)
        offset += size
    correlation = None
    if p <= DENSE_LIMIT:
        centred = (samples - samples.mean(0)).numpy()
        covariance = centred.T @ centred / (k - 1)
        scale = np.sqrt(np.maximum(np.diag(covariance), np.finfo(float).tiny))
        correlation = covariance / np.outer(scale, scale)
    labels = [label for name in learnable for label in number_labels(coefficients[name])]
    details = dict(details or {})
    posterior = Posterior(coefficients, float(details.pop("noise_std", 0.0)), 0, p, "ensemble", k, seconds,
                          correlation, labels, misfit=float(details.pop("misfit", 1.0)))
    posterior.kind = "ensemble"
    posterior.noise_from = "the members' perturbation of the observations"
    posterior.initial_noise = True  # frame 0 is perturbed with the rest: its noise, carried by a rollout, counts
    posterior.details = {"members": k, "t_quantile": t, "interval": f"evaluated value ± t_{k - 1} × members' "
                         "std (raw space, mapped through the decoding)", **details}
    return posterior

