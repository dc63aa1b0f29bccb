"""Heat trajectories from an independent PDE library (py-pde, adaptive Runge–Kutta to a tight tolerance), to judge
the coefficient a hyco solver learns against data it did not make (no inverse crime).

py-pde's Laplacian on a periodic Cartesian grid is the same second-order stencil as hyco's finite volumes with a
constant diffusivity, so the reference differs from a hyco rollout only by hyco's time step (and by py-pde's
tolerance, 1e-10 here): what the coefficient error then shows is the time step's floor. Used by
benchmarks.time_step_floor and the slow external-data test (tests/data/test_pypde_external.py).
"""

from __future__ import annotations

import numpy as np

RTOL, ATOL = 1e-10, 1e-12


def simulate_heat(initial: np.ndarray, diffusivity: float, bounds: tuple[float, float], dt: float, frames: int,
                  method: str = "DOP853") -> np.ndarray:
    """`frames` frames (the initial one first, `dt` apart) of periodic 2D diffusion from each initial state.

    `initial`: [n, y, x] (hyco's layout); returns [n, frames, y, x] float64."""
    import pde

    n, ny, nx = initial.shape
    grid = pde.CartesianGrid([[0.0, bounds[0]], [0.0, bounds[1]]], [nx, ny], periodic=True)
    equation = pde.DiffusionPDE(diffusivity=float(diffusivity))
    out = np.empty((n, frames, ny, nx))
    for i in range(n):
        storage = pde.MemoryStorage()
        state = pde.ScalarField(grid, np.ascontiguousarray(initial[i].T))  # py-pde indexes [x, y]
        equation.solve(state, t_range=dt * (frames - 1), dt=dt, solver="scipy", method=method, rtol=RTOL,
                       atol=ATOL, tracker=[storage.tracker(dt)], backend="numpy")
        stored = np.stack([field.data for field in storage])
        if stored.shape[0] != frames:
            raise RuntimeError(f"py-pde stored {stored.shape[0]} frames, expected {frames}")
        out[i] = stored.transpose(0, 2, 1)
    return out


def simulate_gray_scott(initial: np.ndarray, rates: dict[str, float], bounds: tuple[float, float], dt: float,
                        frames: int, method: str = "DOP853") -> np.ndarray:
    """`frames` frames of periodic 2D Gray-Scott (`rates`: D_u, D_v, f, k) from each initial state `[n, 2, y, x]`
    (u, v); returns [n, frames, 2, y, x] float64. py-pde's Laplacian is hyco's five-point stencil here too."""
    import pde

    n, _, ny, nx = initial.shape
    grid = pde.CartesianGrid([[0.0, bounds[0]], [0.0, bounds[1]]], [nx, ny], periodic=True)
    r = {k: float(v) for k, v in rates.items()}
    equation = pde.PDE({"u": f"{r['D_u']} * laplace(u) - u * v**2 + {r['f']} * (1 - u)",
                        "v": f"{r['D_v']} * laplace(v) + u * v**2 - {r['f'] + r['k']} * v"})
    out = np.empty((n, frames, 2, ny, nx))
    for i in range(n):
        state = pde.FieldCollection([pde.ScalarField(grid, np.ascontiguousarray(initial[i, c].T), label=name)
                                     for c, name in enumerate(("u", "v"))])
        storage = pde.MemoryStorage()
        # a small first trial step: scipy's first step of a whole frame would overflow the reaction term
        equation.solve(state, t_range=dt * (frames - 1), dt=min(0.1, dt), solver="scipy", method=method, rtol=RTOL,
                       atol=ATOL, tracker=[storage.tracker(dt)])
        out[i] = np.stack([field.data for field in storage]).transpose(0, 1, 3, 2)
    return out


def simulate_burgers_1d(initial: np.ndarray, viscosity: float, length: float, dt: float, frames: int,
                        method: str = "DOP853") -> np.ndarray:
    """`frames` frames of periodic 1D viscous Burgers, u_t + u u_x = ν u_xx, from each initial state `[n, x]`;
    returns [n, frames, x] float64. py-pde's stencils are central differences on its own grid: run it on a grid
    finer than the learner's and average the cells (as hyco.data.reference does) for data made elsewhere."""
    import pde

    n, nx = initial.shape
    grid = pde.CartesianGrid([[0.0, length]], [nx], periodic=True)
    equation = pde.PDE({"u": f"{float(viscosity)} * laplace(u) - u * d_dx(u)"})
    out = np.empty((n, frames, nx))
    for i in range(n):
        storage = pde.MemoryStorage()
        equation.solve(pde.ScalarField(grid, np.ascontiguousarray(initial[i])), t_range=dt * (frames - 1),
                       dt=min(1e-4, dt), solver="scipy", method=method, rtol=RTOL, atol=ATOL,
                       tracker=[storage.tracker(dt)])
        out[i] = np.stack([field.data for field in storage])
    return out
