"""A tiny torch-only PDE model with the PhysicalModel interface, for data tests that must not depend
on PhiFlow's speed: 1D periodic diffusion of `u` with viscosity `nu`, plus a static `source` channel."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Spec:
    name: str
    channels: int
    grid: str = "centered"
    dynamic: bool = True


class FakeDiffusion:
    def __init__(self, resolution: int = 16, nu: float = 0.01, dt: float = 0.1, substeps: int = 2):
        self.resolution, self.nu, self.dt, self.substeps = resolution, nu, dt, substeps
        self.fields = (Spec("u", 1), Spec("source", 1, dynamic=False))
        self.num_channels = 2
        self.dynamic_channels = [0]
        self.ndim = 1
        self.spatial_shape = (resolution,)
        self.bounds = (1.0,)
        self.rollout_calls = 0

    def spec(self) -> dict:
        return {"name": "fake_diffusion", "params": {"resolution": self.resolution, "nu": self.nu, "dt": self.dt,
                                                     "substeps": self.substeps}}

    def true_coefficients(self) -> dict:
        return {"nu": torch.tensor(self.nu)}

    def initial_state(self, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(n, 1, self.resolution, generator=g)
        source = torch.linspace(0, 1, self.resolution).expand(n, 1, self.resolution)
        return torch.cat([u, source], dim=1)

    def rollout(self, state: torch.Tensor, coefficients: dict, steps: int) -> torch.Tensor:
        self.rollout_calls += 1
        dx = 1.0 / self.resolution
        h = self.dt / self.substeps
        frames, u, source = [], state[:, :1], state[:, 1:]
        for _ in range(steps):
            for _ in range(self.substeps):
                lap = (u.roll(1, -1) - 2 * u + u.roll(-1, -1)) / dx**2
                u = u + h * (coefficients["nu"] * lap + 0.1 * source)
            frames.append(torch.cat([u, source], dim=1))
        return torch.stack(frames, dim=1)
