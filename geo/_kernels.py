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
SEARCH_FROM = 16  # regions sharing a neighbour count from which sorting beats scanning


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
def draw_matrix(seed: Any, permutations: Any, width: Any, m: Any) -> np.ndarray:
    """Random draws shared by all regions: row ``p`` holds ``width`` distinct ints < ``m``.

    Row ``p`` depends only on ``(seed, p, width, m)``, so every chunk of regions and every
    worker that builds the matrix for the same graph gets the same numbers.
    """
    out = np.empty((permutations, width), dtype=np.int64)
    pool = np.empty(max(m, 1), dtype=np.int64)
    for p in range(permutations):
        _draw(_stream(seed, p), width, m, out[p], pool)
    return out


@njit(cache=True, nogil=True)
def hits(draws: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For every region, the flat positions in ``draws`` where it was drawn, as CSR."""
    start = np.zeros(n + 1, dtype=np.int64)
    flat = draws.ravel()
    for h in range(flat.shape[0]):
        start[flat[h] + 1] += 1
    start = np.cumsum(start)
    fill = start[:-1].copy()
    where = np.empty(flat.shape[0], dtype=np.int64)
    for h in range(flat.shape[0]):
        where[fill[flat[h]]] = h
        fill[flat[h]] += 1
    return start, where


@njit(cache=True, nogil=True)
def neighbour_sums(values: np.ndarray, indptr: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``(S, r)`` sums of ``values`` (n, S) over the neighbours of each row of a CSR chunk.

    The additions run in CSR order, as ``adjacency @ values`` does with binary weights.
    """
    n_series = values.shape[1]
    rows = indptr.shape[0] - 1
    out = np.zeros((n_series, rows))
    for pos in range(rows):
        for t in range(indptr[pos], indptr[pos + 1]):
            j = indices[t]
            for s in range(n_series):
                out[s, pos] += values[j, s]
    return out


@njit(cache=True, nogil=True)
def crand_counts(
    values: np.ndarray,
    observed: np.ndarray,
    indptr: np.ndarray,
    indices: np.ndarray,
    rows: np.ndarray,
    draws: np.ndarray,
    hit_start: np.ndarray,
    hit_where: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Count conditional-randomisation neighbour sums at or above / at or below the observed.

    Every permutation ``p`` draws one random sequence of ``kmax + 1`` distinct regions,
    shared by all regions. Region ``i`` with ``k`` neighbours takes the first ``k`` regions
    of that sequence other than itself: the first ``k`` of a uniform random order of the
    other regions, so a uniform sample without replacement, as conditional randomisation
    requires. Unless ``i`` is among them, that is the same set for every region with ``k``
    neighbours, so the permuted sums are computed once per ``k``, sorted, and each region's
    counts come from a binary search, corrected for the permutations that drew ``i``.

    Parameters
    ----------
    values : (n, S) float64, C-contiguous
        One column per series over all regions, all sharing the same draws (a batch).
    observed : (S, r) float64
        Each chunk region's neighbour sum (:func:`neighbour_sums`).
    indptr, indices : CSR arrays of the chunk
        ``indptr`` has ``r + 1`` entries; ``indices`` are region numbers in ``range(n)``.
    rows : (r,) int64
        The region numbers of the chunk's rows.
    draws : (permutations, width) int64
        :func:`draw_matrix` with ``width = min(kmax + 1, n)``, where ``kmax`` is the largest
        neighbour count of the whole graph (not of the chunk), so that every chunking gives
        the same numbers.
    hit_start, hit_where : int64
        :func:`hits` of ``draws``: where each region was drawn.

    Returns
    -------
    ge, le : (S, r) int64
        For each series and region, how many permuted sums were >= and <= the observed sum.
    """
    n_series = values.shape[1]
    permutations = draws.shape[0]
    ge = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    le = np.zeros((n_series, rows.shape[0]), dtype=np.int64)
    alt = np.empty(n_series)
    card = indptr[1:] - indptr[:-1]
    for k in np.unique(card):
        if k == 0:
            continue
        sims = np.zeros((n_series, permutations))
        for p in range(permutations):
            for t in range(k):
                sims[:, p] += values[draws[p, t]]
        members = np.flatnonzero(card == k)
        search = members.size >= SEARCH_FROM  # sorting pays off for many regions only
        ordered = sims
        if search:
            ordered = np.empty_like(sims)
            for s in range(n_series):
                ordered[s] = np.sort(sims[s])
        for pos in members:
            i = rows[pos]
            _count_region(
                values,
                observed[:, pos],
                i,
                k,
                draws,
                sims,
                ordered,
                search,
                hit_where[hit_start[i] : hit_start[i + 1]],
                alt,
                ge[:, pos],
                le[:, pos],
            )
    return ge, le


@njit(cache=True, nogil=True)
def _count_region(
    values: np.ndarray,
    observed: np.ndarray,
    i: int,
    k: int,
    draws: np.ndarray,
    sims: np.ndarray,
    ordered: np.ndarray,
    search: bool,
    hits: np.ndarray,
    alt: np.ndarray,
    ge: np.ndarray,
    le: np.ndarray,
) -> None:
    """Counts of one region from the shared sums (binary search in ``ordered`` or a scan of
    ``sims``), then the fixes for the permutations that drew the region itself (``hits``:
    flat positions in ``draws``)."""
    n_series, permutations = sims.shape
    width = draws.shape[1]
    for s in range(n_series):
        if search:
            ge[s] = permutations - np.searchsorted(ordered[s], observed[s], side="left")
            le[s] = np.searchsorted(ordered[s], observed[s], side="right")
        else:
            ge[s] = np.sum(sims[s] >= observed[s])
            le[s] = np.sum(sims[s] <= observed[s])
    for h in hits:
        p, t = h // width, h % width
        if t >= k:
            continue
        alt[:] = 0.0  # the first k + 1 draws without region i
        for u in range(k + 1):
            if draws[p, u] != i:
                alt += values[draws[p, u]]
        for s in range(n_series):
            ge[s] += (alt[s] >= observed[s]) - (sims[s, p] >= observed[s])
            le[s] += (alt[s] <= observed[s]) - (sims[s, p] <= observed[s])


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


@njit(cache=True, nogil=True)
def moments(indptr: np.ndarray, indices: np.ndarray, inv: np.ndarray) -> tuple[float, float]:
    """``s1`` and ``s2`` of row-standardised weights ``a_ij * inv[i]`` (esda's moments).

    Column indices must be sorted within rows; ``a_ji`` is found by binary search, so the
    graph need not be symmetric (knn).
    """
    n = inv.shape[0]
    s1 = 0.0
    col = np.zeros(n)
    for i in range(n):
        s1 += inv[i]  # sum_j w_ij^2 = k_i / k_i^2
        for t in range(indptr[i], indptr[i + 1]):
            j = indices[t]
            col[j] += inv[i]
            row_j = indices[indptr[j] : indptr[j + 1]]
            at = np.searchsorted(row_j, i)
            if at < row_j.shape[0] and row_j[at] == i:
                s1 += inv[i] * inv[j]
    s2 = 0.0
    for i in range(n):
        s2 += ((1.0 if inv[i] > 0 else 0.0) + col[i]) ** 2
    return s1, s2


def warm_up() -> None:
    """Load (or compile, the first time) the kernels on a two-region problem."""
    rows = np.arange(2, dtype=np.int64)
    indptr = np.array([0, 1, 2], dtype=np.int32)  # int32, as SpatialWeights.csr gives them
    indices = np.array([1, 0], dtype=np.int32)
    values = np.zeros((2, 1))
    observed = neighbour_sums(values, indptr, indices)
    draws = draw_matrix(np.uint64(0), np.int64(1), np.int64(2), np.int64(2))
    crand_counts(values, observed, indptr, indices, rows, draws, *hits(draws, np.int64(2)))
    moran_counts(values, indptr, indices, np.int64(0), np.int64(1), np.uint64(0))
    moments(indptr, indices, np.ones(2))
