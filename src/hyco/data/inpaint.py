"""Fill the hidden part of a state from its observed values alone (`observation.initial=observed`).

A trajectory's frame 0 has no earlier frame a model could step from, so its hidden values are filled from
the observed ones by one of two fixed schemes (`observation.initial_fill`):

- ``harmonic`` (default): the smoothest state that keeps every observed value: the hidden values solve
  Laplace's equation (5-point stencil, periodic where the domain is, zero flux through walls otherwise) with
  the observed values as boundary data. Hidden regions that touch no observed value (none in practice) fall
  back to the observed mean through a tiny screening term. One sparse LU factorisation per mask (SciPy),
  reused for every simulation and channel.
- ``mean``: the observed mean of each channel.

Measured on the study's cases (benchmarks/initial_fill.py): see docs/results.md.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
import torch

SCREENING = 1e-8  # pulls values cut off from every observation toward the observed mean


def fill_hidden(values: torch.Tensor, known: torch.Tensor, scheme: str, periodic: bool) -> torch.Tensor:
    """`values` [n, C, *space] with their hidden values filled: `known` [1|C, *space] (bool, True = observed)."""
    out = values.clone()
    known = known.expand(values.shape[1], *known.shape[1:]) if known.shape[0] == 1 else known
    for c in range(values.shape[1]):
        mask = known[c]
        if bool(mask.all()):
            continue
        if not bool(mask.any()):
            raise ValueError(f"channel {c} has no observed value to fill its hidden ones from")
        if scheme == "mean":
            observed = values[:, c][:, mask]  # [n, observed]
            out[:, c] = torch.where(mask, values[:, c], observed.mean(dim=1).reshape(-1, *[1] * mask.dim()))
        elif scheme == "harmonic":
            out[:, c] = _harmonic(values[:, c], mask, periodic)
        else:
            raise ValueError(f"unknown fill scheme {scheme!r}; expected harmonic or mean")
    return out


def _harmonic(values: torch.Tensor, mask: torch.Tensor, periodic: bool) -> torch.Tensor:
    """[n, *space]: the hidden values of every row solve the discrete Laplace equation given the known ones."""
    flat_mask = mask.reshape(-1).numpy()
    solve, hidden_to_known = _factorised(mask.numpy().tobytes(), tuple(mask.shape), periodic)
    data = values.reshape(values.shape[0], -1).to(torch.float64).numpy()
    known_values = data[:, flat_mask]  # [n, K]
    means = known_values.mean(axis=1)
    rhs = (hidden_to_known @ known_values.T) + SCREENING * means[None, :]  # [H, n]
    filled = data.copy()
    filled[:, ~flat_mask] = solve(rhs).T
    return torch.from_numpy(filled).reshape(values.shape).to(values.dtype)


@functools.lru_cache(maxsize=8)
def _factorised(mask_bytes: bytes, shape: tuple[int, ...], periodic: bool):
    """The LU factors of the hidden cells' graph Laplacian and the coupling to the known cells, per mask."""
    mask = np.frombuffer(mask_bytes, dtype=bool).reshape(shape)
    size = mask.size
    index = np.arange(size).reshape(shape)
    rows, cols = [], []
    for axis, step in itertools.product(range(len(shape)), (-1, 1)):
        neighbour = np.roll(index, -step, axis=axis)
        valid = np.ones(shape, dtype=bool)
        if not periodic:  # no neighbour across a wall: zero flux
            edge = [slice(None)] * len(shape)
            edge[axis] = slice(-1, None) if step == 1 else slice(0, 1)
            valid[tuple(edge)] = False
        rows.append(index[valid])
        cols.append(neighbour[valid])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    adjacency = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(size, size))
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    flat = mask.reshape(-1)
    hidden, known = np.flatnonzero(~flat), np.flatnonzero(flat)
    laplacian_hidden = (sparse.diags(degree[hidden] + SCREENING) - adjacency[hidden][:, hidden]).tocsc()
    solve = sparse_linalg.factorized(laplacian_hidden)
    hidden_to_known = adjacency[hidden][:, known].tocsr()

    def solve_all(rhs: np.ndarray) -> np.ndarray:
        return np.stack([solve(np.ascontiguousarray(rhs[:, j])) for j in range(rhs.shape[1])], axis=1)

    return solve_all, hidden_to_known
