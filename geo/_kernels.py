"""Numba kernels for conditional randomisation.

Random draws come from a counter-based generator keyed on ``(seed, permutation)``. As in
esda, one matrix of draws serves every region and series of a graph, and it does not
depend on how regions are chunked: the same seed gives the same numbers on every
scheduler and chunking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@njit(cache=True, nogil=True, inline="always")
def _mix(z: int) -> int:
    """SplitMix64 finaliser."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def _stream(seed: int, perm: int) -> int:
    """Starting state of the draw stream of one permutation."""
    s = _mix(seed + _GOLDEN)
    return _mix(s ^ np.uint64(perm) + _GOLDEN)


@njit(cache=True, nogil=True)
def _draw(state: int, k: int, m: int, out: np.ndarray, pool: np.ndarray) -> None:
    """Fill ``out[:k]`` with ``k`` distinct integers from ``range(m)``, uniformly."""
    if 4 * k > m:  # dense: partial Fisher-Yates on a fresh pool
        for t in range(m):
            pool[t] = t
        for t in range(k):
            state += _GOLDEN
            r = np.int64((_mix(state) >> np.uint64(11)) * _TO_UNIT * (m - t))
            j = t + r
            tmp = pool[t]
            pool[t] = pool[j]
            pool[j] = tmp
            out[t] = pool[t]
        return
    t = 0
    while t < k:  # sparse: rejection of repeats
        state += _GOLDEN
        r = np.int64((_mix(state) >> np.uint64(11)) * _TO_UNIT * m)
        dup = False
        for u in range(t):
            if out[u] == r:
                dup = True
                break
        if not dup:
            out[t] = r
            t += 1


@njit(cache=True, nogil=True)
def draw_matrix(seed: Any, permutations: Any, kmax: Any, m: Any) -> np.ndarray:
    """Random draws shared by all regions: row ``p`` holds ``kmax`` distinct ints < ``m``.

    Row ``p`` depends only on ``(seed, p, kmax, m)``, so every chunk of regions and every
    worker that builds the matrix for the same graph gets the same numbers. As in esda, a
    region with ``k`` neighbours uses the first ``k`` draws of each row.
    """
    out = np.empty((permutations, kmax), dtype=np.int64)
    pool = np.empty(max(m, 1), dtype=np.int64)
    for p in range(permutations):
        _draw(_stream(seed, p), kmax, m, out[p], pool)
    return out


@njit(cache=True, nogil=True)
def crand_counts(
    values: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    permutations: Any,
    seed: Any,
    kmax: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Count conditional-randomisation neighbour sums at or above / at or below the observed.

    Parameters
    ----------
    values : (n, S) float64, C-contiguous
        One column per series, all sharing the same draws (a batch).
    indptr, indices : CSR arrays
        Neighbours of every region (binary weights, no self-links).
    rows : (r,) int64
        The regions to test (a chunk).
    permutations, seed, kmax : int
        The draw matrix is :func:`draw_matrix` ``(seed, permutations, kmax, n - 1)``, with
        ``kmax`` the largest neighbour count of the whole graph (not of the chunk), so that
        every chunking gives the same numbers. Drawn index ``j >= i`` stands for ``j + 1``:
        region ``i`` never draws itself.

    Returns
    -------
    ge, le : (S, r) int64
        For each series and region, how many permuted sums were >= and <= the observed sum.
    """
    n, n_series = values.shape
    draws = draw_matrix(seed, permutations, kmax, n - 1)
    ge = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    le = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    observed = np.empty(n_series)
    acc = np.empty(n_series)
    for pos in range(rows.shape[0]):
        i = rows[pos]
        start, k = indptr[i], indptr[i + 1] - indptr[i]
        if k == 0:
            continue
        observed[:] = 0.0
        for t in range(k):
            observed += values[indices[start + t]]
        for p in range(permutations):
            acc[:] = 0.0
            for t in range(k):
                j = draws[p, t]
                acc += values[j + 1 if j >= i else j]
            for s in range(n_series):
                ge[s, pos] += acc[s] >= observed[s]
                le[s, pos] += acc[s] <= observed[s]
    return ge, le


@njit(cache=True, nogil=True)
def moran_counts(
    z: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    first: Any,
    last: Any,
    seed: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Global Moran permutations ``first..last-1``: counts of cross-products >= / <= observed.

    ``z`` is (n, S), centred. The statistic compared is ``sum_i z_i * mean_{j in N(i)} z_j``
    (row-standardised weights), which is proportional to Moran's I for a fixed series.
    Permutation ``p`` is a full shuffle keyed on ``(seed, p)``, the same in every block.
    """
    n, n_series = z.shape
    observed = _cross(z, indptr, indices, np.arange(n))
    ge = np.zeros(n_series, dtype=np.int64)
    le = np.zeros(n_series, dtype=np.int64)
    perm = np.empty(n, dtype=np.int64)
    pool = np.empty(n, dtype=np.int64)
    for p in range(first, last):
        _draw(_stream(seed ^ np.uint64(0xA5A5A5A5), p), n, n, perm, pool)
        sims = _cross(z, indptr, indices, perm)
        for s in range(n_series):
            ge[s] += sims[s] >= observed[s]
            le[s] += sims[s] <= observed[s]
    return ge, le


@njit(cache=True, nogil=True)
def _cross(z: np.ndarray, indptr: np.ndarray, indices: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """``sum_i z[perm[i]] * mean_j z[perm[j]]`` over the neighbours ``j`` of every ``i``."""
    n, n_series = z.shape
    total = np.zeros(n_series)
    lag = np.empty(n_series)
    for i in range(n):
        k = indptr[i + 1] - indptr[i]
        if k == 0:
            continue
        lag[:] = 0.0
        for t in range(indptr[i], indptr[i + 1]):
            lag += z[perm[indices[t]]]
        total += z[perm[i]] * lag / k
    return total


def warm_up() -> None:
    """Load (or compile, the first time) the kernels on a two-region problem."""
    two = np.arange(2, dtype=np.int64)
    indptr = np.array([0, 1, 2], dtype=np.int64)
    values = np.zeros((2, 1))
    crand_counts(values, indptr, two[::-1].copy(), two, np.int64(1), np.uint64(0), np.int64(1))
    moran_counts(values, indptr, two[::-1].copy(), np.int64(0), np.int64(1), np.uint64(0))
