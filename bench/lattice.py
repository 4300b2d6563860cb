"""Synthetic inputs: queen lattices and spatially autocorrelated values, all seeded."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from geo.weights import SpatialWeights, WeightsSpec

# The eight queen moves (row offset, column offset).
QUEEN_MOVES = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def queen_adjacency(rows: int, cols: int) -> sp.csr_array:
    """Binary queen adjacency of a ``rows`` x ``cols`` grid, cells numbered row by row.

    Same neighbours as ``libpysal.weights.lat2W(rows, cols, rook=False)``, built directly
    with scipy (a million cells take about a second).
    """
    r, c = np.divmod(np.arange(rows * cols, dtype=np.int64), cols)
    heads, tails = [], []
    for dr, dc in QUEEN_MOVES:
        inside = (r + dr >= 0) & (r + dr < rows) & (c + dc >= 0) & (c + dc < cols)
        heads.append(np.flatnonzero(inside))
        tails.append((r[inside] + dr) * cols + c[inside] + dc)
    i, j = np.concatenate(heads), np.concatenate(tails)
    n = rows * cols
    adj = sp.csr_array((np.ones(len(i)), (i, j)), shape=(n, n))
    adj.sort_indices()
    return adj


def queen_lattice(rows: int, cols: int) -> SpatialWeights:
    """Queen weights over a lattice; the ids are the cell numbers ``row * cols + col``.

    Integer ids keep a million-cell lattice light (8 MB rather than ~100 MB of strings).
    """
    ids = np.arange(rows * cols, dtype=np.int64)
    return SpatialWeights(ids, queen_adjacency(rows, cols), WeightsSpec("queen"))


def smooth(noise: np.ndarray, adjacency: sp.csr_array, passes: int) -> np.ndarray:
    """Average ``noise`` (one row per series) over each unit's closed neighbourhood.

    Every pass replaces a value by the mean of itself and its neighbours, which makes
    neighbouring values alike (positive spatial autocorrelation). The result is
    standardised to mean 0 and standard deviation 1 per series.
    """
    closed = np.diff(adjacency.indptr) + 1.0
    field = np.atleast_2d(np.asarray(noise, dtype=float))
    for _ in range(passes):
        field = (field + (adjacency @ field.T).T) / closed
    field = field - field.mean(axis=1, keepdims=True)
    return field / field.std(axis=1, keepdims=True)


def autocorrelated(
    weights: SpatialWeights, seed: int, series: int = 1, passes: int = 2
) -> np.ndarray:
    """``(series, n)`` seeded values with positive spatial autocorrelation over ``weights``."""
    rng = np.random.default_rng(seed)
    return smooth(rng.standard_normal((series, weights.n)), weights.adjacency, passes)
