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


@njit(cache=True, nogil=True, inline="always")
def _lag(values: np.ndarray, s: int, w: np.ndarray, idx: np.ndarray) -> float:
    """Weighted sum of ``values[s, idx]``."""
    acc = 0.0
    for t in range(idx.shape[0]):
        acc += w[t] * values[s, idx[t]]
    return acc


@njit(cache=True, nogil=True)
def draw_matrix(seed: Any, permutations: Any, kmax: Any, m: Any) -> np.ndarray:
    """Random draws shared by all regions: row ``p`` holds ``kmax`` distinct ints < ``m``.

    Row ``p`` depends only on ``(seed, p, kmax, m)``, so every chunk of regions and every
    worker that builds the matrix for the same graph gets the same numbers. As in esda, a
    region with ``k`` neighbours uses the first ``k`` draws of each row.
    """
    out = np.empty((permutations, kmax), dtype=np.int64)
    pool = np.empty(m, dtype=np.int64)
    for p in range(permutations):
        _draw(_stream(seed, p), kmax, m, out[p], pool)
    return out


@njit(cache=True, nogil=True)
def crand_counts(
    values: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    weights: np.ndarray,
    rows: np.ndarray,
    draws: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Count conditional-randomisation spatial lags at or above / at or below the observed.

    Parameters
    ----------
    values : (S, n) float64
        One row per series; columns are regions. All series share the draws.
    indptr, indices, weights : CSR arrays
        Neighbours of every region (no self-links) and their weights.
    rows : (r,) int64
        The regions to test (a chunk).
    draws : (P, kmax) int64
        :func:`draw_matrix` for ``m = n - 1``; index ``j >= i`` stands for region ``j + 1``,
        so region ``i`` never draws itself.

    Returns
    -------
    ge, le : (S, r) int64
        For each series and region, how many permuted lags were >= and <= the observed lag.
    """
    n_series = values.shape[0]
    permutations = draws.shape[0]
    ge = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    le = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    picked = np.empty(draws.shape[1], dtype=np.int64)
    observed = np.empty(n_series)
    for pos in range(rows.shape[0]):
        i = rows[pos]
        start, k = indptr[i], indptr[i + 1] - indptr[i]
        if k == 0:
            continue
        w = weights[start : start + k]
        for s in range(n_series):
            observed[s] = _lag(values, s, w, indices[start : start + k])
        for p in range(permutations):
            for t in range(k):
                j = draws[p, t]
                picked[t] = j + 1 if j >= i else j
            for s in range(n_series):
                acc = _lag(values, s, w, picked[:k])
                ge[s, pos] += acc >= observed[s]
                le[s, pos] += acc <= observed[s]
    return ge, le


def warm_up() -> None:
    """Load (or compile, the first time) the kernels on a two-region problem."""
    two = np.arange(2, dtype=np.int64)
    draws = draw_matrix(np.uint64(0), np.int64(1), np.int64(1), np.int64(1))
    crand_counts(
        np.zeros((1, 2)),
        np.array([0, 1, 2], dtype=np.int64),
        two[::-1].copy(),
        np.ones(2),
        two,
        draws,
    )
