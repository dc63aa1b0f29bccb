"""Tiny files in The Well's and PDEBench's HDF5 layouts, written by the tests themselves (arrays x first), and a
heat equation simulated with NumPy alone: data made elsewhere, not by hyco's solver."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py
import numpy as np


def cell_centres(n: int, length: float) -> np.ndarray:
    return (np.arange(n) + 0.5) * length / n


def write_well(path: Path, *, coords: Mapping[str, np.ndarray], time: np.ndarray,
               fields: Mapping[str, tuple[int, np.ndarray]], constant: Sequence[str] = (),
               bc: str = "PERIODIC", n_trajectories: int | None = None) -> Path:
    """The Well layout: `fields` name -> (tensor order, array [n_traj, T, *space, (D,)*order]); the fields named
    in `constant` are stored without their time axis ([n_traj, *space, ...], time_varying False)."""
    names = list(coords)
    with h5py.File(path, "w") as f:
        arrays = {name: np.asarray(a, dtype=np.float32) for name, (_, a) in fields.items()}
        f.attrs["dataset_name"] = "written_by_a_test"
        f.attrs["grid_type"] = "cartesian"
        f.attrs["n_spatial_dims"] = len(names)
        f.attrs["n_trajectories"] = n_trajectories or next(iter(arrays.values())).shape[0]
        f.attrs["simulation_parameters"] = ["alpha"]
        f.attrs["alpha"] = 0.5
        dims = f.create_group("dimensions")
        dims.attrs["spatial_dims"] = names
        dims["time"] = np.asarray(time, dtype=np.float32)
        dims["time"].attrs["sample_varying"] = False
        for name, values in coords.items():
            dims[name] = np.asarray(values, dtype=np.float32)
            dims[name].attrs.update({"sample_varying": False, "time_varying": False})
        bcs = f.create_group("boundary_conditions")
        for name in names:
            group = bcs.create_group(f"{name}_{bc.lower()}")
            group.attrs.update({"associated_dims": [name], "associated_fields": [], "bc_type": bc,
                                "sample_varying": False, "time_varying": False})
            group["mask"] = np.zeros(len(coords[name]), dtype=bool)
        scalars = f.create_group("scalars")
        scalars.attrs["field_names"] = ["alpha"]
        scalars["alpha"] = np.float32(0.5)
        scalars["alpha"].attrs.update({"sample_varying": False, "time_varying": False})
        for order in range(3):
            group = f.create_group(f"t{order}_fields")
            mine = [name for name, (o, _) in fields.items() if o == order]
            group.attrs["field_names"] = mine
            for name in mine:
                group[name] = arrays[name]
                group[name].attrs.update({"sample_varying": True, "time_varying": name not in constant,
                                          "dim_varying": [True] * len(names)})
    return path


def write_pdebench_groups(path: Path, data: np.ndarray, coords: Mapping[str, np.ndarray], times: np.ndarray) -> Path:
    """PDEBench's per-trajectory groups: `0000/data` [T, *space, C], `0000/grid/x` (`y`), `0000/grid/t`."""
    with h5py.File(path, "w") as f:
        for index, trajectory in enumerate(np.asarray(data, dtype=np.float32)):
            group = f.create_group(f"{index:04d}")
            group["data"] = trajectory
            group.attrs["config"] = "sim: written_by_a_test"
            grid = group.create_group("grid")
            for name, values in coords.items():
                grid[name] = np.asarray(values, dtype=np.float32)
            grid["t"] = np.asarray(times, dtype=np.float32)
    return path


def write_pdebench_arrays(path: Path, arrays: Mapping[str, np.ndarray], coords: Mapping[str, np.ndarray],
                          times: np.ndarray) -> Path:
    """PDEBench's root arrays: `tensor` (or `density`, `Vx`, ...) [N, T, *space], `x-coordinate`, `t-coordinate`."""
    with h5py.File(path, "w") as f:
        for name, values in arrays.items():
            f[name] = np.asarray(values, dtype=np.float32)
        for name, values in coords.items():
            f[f"{name}-coordinate"] = np.asarray(values, dtype=np.float32)
        f["t-coordinate"] = np.asarray(times, dtype=np.float32)
    return path


def numpy_heat(n: int, frames: int, resolution: tuple[int, int], bounds: tuple[float, float], kappa: float,
               dt: float, substeps: int, seed: int = 0) -> np.ndarray:
    """dT/dt = kappa laplace(T) on a periodic box, explicit Euler with `substeps` steps per frame, five-point
    stencil; smooth random initial states. Returns float64 [n, frames, x, y] (x first, as The Well stores it)."""
    rng = np.random.default_rng(seed)
    x = cell_centres(resolution[0], bounds[0])[:, None]
    y = cell_centres(resolution[1], bounds[1])[None, :]
    h = dt / substeps
    dx, dy = bounds[0] / resolution[0], bounds[1] / resolution[1]
    out = np.empty((n, frames, *resolution))
    for k in range(n):
        t = np.zeros(resolution)
        for kx in range(3):
            for ky in range(3):
                a, phase = rng.normal(), rng.uniform(0, 2 * np.pi)
                t = t + a * np.cos(2 * np.pi * (kx * x / bounds[0] + ky * y / bounds[1]) + phase) / (1 + kx + ky)
        out[k, 0] = t
        for frame in range(1, frames):
            for _ in range(substeps):
                lap = ((np.roll(t, 1, 0) - 2 * t + np.roll(t, -1, 0)) / dx**2
                       + (np.roll(t, 1, 1) - 2 * t + np.roll(t, -1, 1)) / dy**2)
                t = t + h * kappa * lap
            out[k, frame] = t
    return out
