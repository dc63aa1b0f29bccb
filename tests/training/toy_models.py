"""A pure-torch stand-in with the PhysicalModel interface, so trainer logic is tested in milliseconds."""

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: str
    lower: float = 0.0
    upper: float | None = None


class ToyDiffusion1D:
    """u_t = kappa * u_xx on a periodic grid, explicit Euler; kappa scalar or field, learned in log space."""

    def __init__(self, n: int = 16, dt: float = 0.1, field: bool = False, true_kappa=0.3, dtype=torch.float64):
        self.n, self.dt, self.dtype = n, dt, dtype
        self.num_channels, self.dynamic_channels = 1, [0]
        self.spatial_shape = (n,)
        self.substeps = 1
        kind = "field" if field else "scalar"
        self.coefficient_specs = (_Spec("kappa", kind),)
        x = torch.arange(n, dtype=dtype) / n
        profile = 0.3 + 0.1 * torch.sin(2 * torch.pi * x)
        self._true = profile if field else torch.tensor(float(true_kappa), dtype=dtype)
        self._guess = torch.full((n,), 0.15, dtype=dtype) if field else torch.tensor(0.15, dtype=dtype)

    def true_coefficients(self):
        return {"kappa": self._true.clone()}

    def initial_guess(self):
        return {"kappa": self._guess.clone()}

    def encode(self, coefficients):
        return {k: torch.log(v) for k, v in coefficients.items()}

    def decode(self, raw):
        return {k: torch.exp(v) for k, v in raw.items()}

    def initial_state(self, n: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        x = torch.arange(self.n, dtype=self.dtype) / self.n
        amp = torch.randn(n, 3, generator=g, dtype=self.dtype)
        waves = sum(amp[:, k, None] * torch.sin(2 * torch.pi * (k + 1) * x) for k in range(3))
        return waves[:, None, :]

    def rollout(self, state, coefficients, steps):
        kappa = coefficients["kappa"]
        frames = []
        u = state
        for _ in range(steps):
            lap = (torch.roll(u, 1, -1) - 2 * u + torch.roll(u, -1, -1)) * self.n**2
            u = u + self.dt * kappa * lap * 1e-2
            frames.append(u)
        return torch.stack(frames, dim=1)


def simulated_windows(model, sims=2, frames=6, rollout=2):
    """One batch `[(inputs, targets)]` of every sliding window of `sims` trajectories simulated with the
    model's true coefficients (complete, noise-free data for trainer tests)."""
    state = model.initial_state(sims, seed=0)
    with torch.no_grad():
        traj = torch.cat([state[:, None], model.rollout(state, model.true_coefficients(), frames - 1)], dim=1)
    inputs = torch.cat([traj[:, t] for t in range(frames - rollout)])
    targets = torch.cat([traj[:, t + 1:t + 1 + rollout] for t in range(frames - rollout)])
    return [(inputs, targets)]
