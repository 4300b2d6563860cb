"""Local hot-spot statistics: Getis-Ord Gi* and Local Moran's I (LISA), with global Moran's I.

Definitions follow ArcGIS "Hot Spot Analysis" (Gi*, binary weights with the region itself)
and GeoDa/PySAL esda (Local Moran with row-standardised weights). Inference is by
conditional randomisation (see :mod:`geo._kernels`) and, for Gi*, by the normal
approximation. All p-values here are two-sided and never exceed 1.

The computation is batched: series that share their missing values form a :class:`Batch`
whose analytic statistics are computed at once (:func:`batches`), whose permutation counts
come from the kernels (locally or as dask tasks, see :mod:`geo.engine`), and which
:func:`finish` turns into one :class:`HotSpotResult` per series.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from geo.errors import InvalidParameterError
from geo.weights import SpatialWeights

Method = Literal["gi_star", "local_moran"]
Correction = Literal["none", "fdr", "bonferroni"]
Inference = Literal["permutation", "normal"]
METHODS: tuple[str, ...] = ("gi_star", "local_moran")
CORRECTIONS: tuple[str, ...] = ("none", "fdr", "bonferroni")
INFERENCES: tuple[str, ...] = ("permutation", "normal")
CONFIDENCE_LEVELS = (0.10, 0.05, 0.01)  # Gi_Bin +-1, +-2, +-3
GLOBAL_PERMUTATIONS = 999  # global Moran's I: at most this many permutations ...
GLOBAL_PERMUTATION_LIMIT = 50_000  # ... and only up to this many regions (else analytic)

# Region status, and GeoDa's LISA cluster codes. "untested": the region has a value but its
# series has fewer than MIN_REGIONS values, too few for any inference.
OK, ISOLATE, MISSING, UNTESTED = "ok", "isolate", "missing", "untested"
MIN_REGIONS = 3
LISA_CODES = {
    "not significant": 0,
    "HH": 1,
    "LL": 2,
    "LH": 3,
    "HL": 4,
    "undefined": 5,
    "neighbourless": 6,
}


@dataclass(frozen=True, eq=False)
class GlobalMoran:
    """Global Moran's I (row-standardised weights) with analytic and permutation inference.

    ``z_norm``/``p_norm`` assume randomisation (esda's ``z_rand``, two-sided p). ``p_sim``
    uses ``permutations`` full shuffles (at most :data:`GLOBAL_PERMUTATIONS`; none, and NaN,
    above :data:`GLOBAL_PERMUTATION_LIMIT` regions).
    """

    I: float  # noqa: E741 (the statistic's name)
    EI: float
    z_norm: float
    p_norm: float
    p_sim: float
    permutations: int


@dataclass(frozen=True, eq=False)
class HotSpotResult:
    """Per-region results of one local statistic, arrays aligned with ``ids``.

    Regions with a missing value have ``status == "missing"`` and NaN statistics;
    regions without neighbours have ``status == "isolate"``, NaN inference and are
    never significant.
    """

    method: str
    ids: np.ndarray
    value: np.ndarray
    status: np.ndarray
    n_neighbors: np.ndarray
    p_sim: np.ndarray
    significant: np.ndarray
    hot: np.ndarray
    global_moran: GlobalMoran
    permutations: int
    seed: int
    alpha: float
    correction: str
    inference: str
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per region, indexed by region id."""
        columns = {"value": self.value, "status": self.status, "n_neighbors": self.n_neighbors}
        columns |= self.stats
        columns |= {"p_sim": self.p_sim, "significant": self.significant, "hot": self.hot}
        return pd.DataFrame(columns, index=pd.Index(self.ids, name="region"))

    @property
    def excluded(self) -> list[str]:
        """Regions left out for a missing value (GeoDa's 'undefined')."""
        return self.ids[self.status == MISSING].tolist()

    @property
    def isolates(self) -> list[str]:
        return self.ids[self.status == ISOLATE].tolist()


@dataclass(frozen=True)
class Options:
    """Inference options shared by both statistics."""

    permutations: int = 999
    seed: int = 0
    alpha: float = 0.05
    correction: str = "fdr"
    inference: str = "permutation"

    def __post_init__(self) -> None:
        p = self.permutations
        if not isinstance(p, int | np.integer) or isinstance(p, bool) or p < 0:
            raise InvalidParameterError(f"permutations must be an integer >= 0, not {p!r}")
        if not 0 < self.alpha < 1:
            raise InvalidParameterError(
                f"alpha must lie strictly between 0 and 1, not {self.alpha!r}"
            )
        if self.correction not in CORRECTIONS:
            raise InvalidParameterError(
                f"correction {self.correction!r} not understood; use one of {list(CORRECTIONS)}"
            )
        if self.inference not in INFERENCES:
            raise InvalidParameterError(
                f"inference {self.inference!r} not understood; use one of {list(INFERENCES)}"
            )
        if self.inference == "permutation" and p < 1:
            raise InvalidParameterError("permutation inference needs permutations >= 1")
        if self.seed < 0:
            raise InvalidParameterError(f"seed must be >= 0, not {self.seed}")

    @property
    def global_permutations(self) -> int:
        return min(self.permutations, GLOBAL_PERMUTATIONS)


@dataclass(frozen=True, eq=False)
class Batch:
    """Series that share their missing values, ready for the chunk tasks.

    ``raw`` holds the values (series x regions). ``data`` (regions x series, C-contiguous)
    holds what neighbour sums and conditional permutations add up: the raw values for Gi*,
    the standardised values for Local Moran. ``consts`` are the per-series constants a
    chunk needs besides ``data`` (see :func:`chunk_stats`); ``ss`` and ``kurtosis`` are
    the sum of squares and kurtosis of the centred data, for global Moran's I.
    """

    method: str
    series: np.ndarray
    valid: np.ndarray
    weights: SpatialWeights
    raw: np.ndarray
    data: np.ndarray
    consts: tuple[np.ndarray, ...]
    ss: np.ndarray
    kurtosis: np.ndarray

    @property
    def kmax(self) -> int:
        return int(self.weights.cardinalities.max(initial=0))

    @property
    def centred(self) -> np.ndarray:
        """(regions x series) centred data, shuffled by the global Moran permutations."""
        if self.method == "gi_star":
            return np.ascontiguousarray(self.data - self.consts[1])
        return self.data


def resolve_seed(seed: int | None) -> int:
    """A user seed, or a fresh one that is then recorded with the result."""
    if seed is None:
        return secrets.randbits(32)
    if seed < 0:
        raise InvalidParameterError(f"seed must be >= 0, not {seed}")
    return int(seed)


def significant(p: np.ndarray, alpha: float, correction: str) -> np.ndarray:
    """Which p-values are significant at ``alpha`` after the multiple-testing correction.

    NaN p-values (isolates, missing values) are never significant and are not counted as
    tests. ``fdr`` is Benjamini-Hochberg; ``bonferroni`` divides alpha by the test count.
    """
    return significant_at(p, (alpha,), correction)[0]


def significant_at(p: np.ndarray, alphas: Sequence[float], correction: str) -> list[np.ndarray]:
    """:func:`significant` at several levels, sorting the p-values once."""
    tested = ~np.isnan(p)
    m = int(tested.sum())
    if m == 0:
        return [np.zeros(p.shape, dtype=bool) for _ in alphas]
    cuts = list(alphas)
    if correction == "bonferroni":
        cuts = [a / m for a in alphas]
    elif correction == "fdr":
        ps = np.sort(p[tested])
        ranks = np.arange(1, m + 1) / m
        cuts = []
        for a in alphas:
            passing = np.flatnonzero(ps <= a * ranks)
            cuts.append(ps[passing[-1]] if len(passing) else -1.0)
    with np.errstate(invalid="ignore"):
        return [p <= cut for cut in cuts]  # NaN compares False


def two_sided(ge: np.ndarray, le: np.ndarray, permutations: int) -> np.ndarray:
    """Two-sided pseudo p-value from counts of permuted statistics at/above and at/below."""
    extreme = np.minimum(ge, le)
    return np.minimum(1.0, 2.0 * (extreme + 1.0) / (permutations + 1.0))


def panel(values: np.ndarray | pd.Series | pd.DataFrame, weights: SpatialWeights) -> np.ndarray:
    """Values as a (series, regions) float array aligned with ``weights.ids``."""
    if isinstance(values, pd.Series):
        values = values.reindex(weights.ids).to_numpy(dtype=float)
    elif isinstance(values, pd.DataFrame):
        values = values.reindex(columns=weights.ids).to_numpy(dtype=float)
    arr = np.atleast_2d(np.asarray(values, dtype=float))
    if arr.ndim != 2 or arr.shape[1] != weights.n:
        raise InvalidParameterError(f"got values of shape {arr.shape} for {weights.n} regions")
    return arr


def batches(values: np.ndarray, weights: SpatialWeights, method: str) -> list[Batch]:
    """Group the series of a (series, regions) panel by missing values; compute analytics.

    Series with fewer than :data:`MIN_REGIONS` values are left out: see :func:`untested`.
    """
    if method not in METHODS:
        raise InvalidParameterError(f"method {method!r} not understood; use {list(METHODS)}")
    valid = np.isfinite(values)
    groups: dict[bytes, list[int]] = {}
    for s in range(values.shape[0]):
        groups.setdefault(np.packbits(valid[s]).tobytes(), []).append(s)
    out = []
    for members in groups.values():
        mask = valid[members[0]]
        if mask.sum() < MIN_REGIONS:
            continue  # see untested()
        x = values[np.ix_(np.array(members), np.flatnonzero(mask))]
        w = weights.subset(mask)
        build = _gi_star_batch if method == "gi_star" else _local_moran_batch
        out.append(build(np.array(members), mask, w, x))
    return out


def _gi_star_batch(series: np.ndarray, mask: np.ndarray, w: SpatialWeights, x: np.ndarray) -> Batch:
    """Gi* sums the raw values; its z needs each series' mean and standard deviation."""
    mean = x.mean(axis=1)
    s = np.sqrt((x**2).mean(axis=1) - mean**2)
    centred = x - mean[:, None]
    return Batch(
        "gi_star",
        series,
        mask,
        w,
        x,
        np.ascontiguousarray(x.T),
        (np.array([x.shape[1]]), mean, s),
        *_spread(centred),
    )


def _local_moran_batch(
    series: np.ndarray, mask: np.ndarray, w: SpatialWeights, x: np.ndarray
) -> Batch:
    """Local Moran sums the standardised values (esda's ``z``)."""
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    ss, kurtosis = _spread(z)
    return Batch(
        "local_moran",
        series,
        mask,
        w,
        x,
        np.ascontiguousarray(z.T),
        (np.array([x.shape[1]]), (z * z).sum(axis=1)),
        ss,
        kurtosis,
    )


def _spread(centred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squares and kurtosis (esda's ``k``) of centred series."""
    n = centred.shape[1]
    sq = centred**2
    ss = sq.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ss, ((sq**2).sum(axis=1) / n) / (ss / n) ** 2


def chunk_stats(
    method: str,
    data: np.ndarray,
    piece: tuple[np.ndarray, np.ndarray, np.ndarray],
    consts: tuple[np.ndarray, ...],
    permutations: int,
    seed: int,
    kmax: int,
) -> dict[str, np.ndarray]:
    """Everything local about a chunk of regions: statistics, permutation p-values, and
    its share of global Moran's cross-product.

    ``piece`` is ``(rows, indptr, indices)``: the chunk's region numbers and their CSR
    rows. ``data`` (n x S) and ``consts`` come from the :class:`Batch`. Returns
    ``(S, r)`` arrays (Gi*: ``z``, ``p_norm``; Local Moran: ``I``, ``lag``; both
    ``p_sim`` when ``permutations``) and ``cross``, each region's term of global Moran's
    cross-product (summed in region order by :func:`finish`, so that every chunking gives
    the same sum to the last bit).
    """
    from geo._kernels import crand_counts, neighbour_sums

    rows, indptr, indices = piece
    card = np.diff(indptr).astype(np.int64)
    isolate = card == 0
    inv = np.divide(1.0, card, out=np.zeros(len(card)), where=~isolate)
    observed = neighbour_sums(data, indptr, indices)
    x = data[rows].T
    out: dict[str, np.ndarray] = {}
    if method == "gi_star":
        n, mean, s = consts
        mean, s = mean[:, None], s[:, None]
        c = card + 1.0  # binary weights with the region itself
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (x + observed - mean * c) / (s * np.sqrt((n * c - c**2) / (n - 1)))
        z[:, isolate] = np.nan
        out |= {"z": z, "p_norm": 2.0 * ndtr(-np.abs(z))}
        out["cross"] = (x - mean) * (observed - card * mean) * inv
    else:
        n, zz = consts
        lag = observed * inv
        out |= {"I": (n - 1) * x * lag / zz[:, None], "lag": lag}
        out["cross"] = x * lag
    if permutations:
        draws = shared_draws(seed, permutations, min(kmax + 1, len(data)), len(data))
        ge, le = crand_counts(data, observed, indptr, indices, rows, *draws)
        if method == "local_moran":
            # I_i grows with the neighbour sum where z_i > 0, falls where z_i < 0, is 0 at 0.
            ge, le = (
                np.where(x > 0, ge, np.where(x < 0, le, permutations)),
                np.where(x > 0, le, np.where(x < 0, ge, permutations)),
            )
        p_sim = two_sided(ge, le, permutations)
        p_sim[:, isolate] = np.nan
        out["p_sim"] = p_sim
    return out


@functools.lru_cache(maxsize=8)
def shared_draws(seed: int, permutations: int, width: int, n: int) -> tuple[np.ndarray, ...]:
    """The draws of every region of a layer, and where each region was drawn: the same for
    every chunk and series of the layer, so made once per process (and worker)."""
    from geo._kernels import draw_matrix, hits

    draws = draw_matrix(np.uint64(seed), np.int64(permutations), np.int64(width), np.int64(n))
    return (draws, *hits(draws, n))


def finish(
    batch: Batch,
    rows: Sequence[np.ndarray],
    parts: Sequence[dict[str, np.ndarray]],
    global_counts: tuple[np.ndarray, np.ndarray] | None,
    ids: np.ndarray,
    opts: Options,
) -> list[HotSpotResult]:
    """Turn a batch and its chunks' outputs (:func:`chunk_stats` of ``rows``) into one
    result per series; ``global_counts`` are the global Moran permutation counts."""
    if len(parts) == 1:  # one chunk of every region in order: nothing to assemble
        arrays = dict(parts[0])
    else:
        shape = (len(batch.series), batch.weights.n)
        arrays = {key: np.empty(shape) for key in parts[0]}  # the chunks cover every region
        for idx, part in zip(rows, parts, strict=True):
            for key, array in arrays.items():
                array[:, idx] = part[key]
    analytic = _global_moran_analytic(batch, arrays.pop("cross").sum(axis=1))
    n_perm = opts.global_permutations if global_counts is not None else 0
    out = []
    for pos in range(len(batch.series)):
        gm = _global_result(analytic, pos, global_counts, n_perm)
        local = {key: array[pos] for key, array in arrays.items()}
        finish_one = _finish_gi_star if batch.method == "gi_star" else _finish_local_moran
        out.append(finish_one(batch, pos, local, gm, ids, opts))
    return out


def _global_moran_analytic(batch: Batch, cross: np.ndarray) -> dict[str, np.ndarray]:
    """Global Moran's I, its expectation and z under randomisation (esda ``Moran``) from
    the cross-product ``sum_i c_i * mean_{j in N(i)} c_j`` of the centred data ``c``."""
    w = batch.weights
    n = w.n
    s0 = float((w.cardinalities > 0).sum())  # every non-isolate row sums to one
    with np.errstate(divide="ignore", invalid="ignore"):
        moran_i = n / s0 * cross / batch.ss
    ei = -1.0 / (n - 1)
    s1, s2 = w.moran_moments
    n2, s02 = n * n, s0 * s0
    a = n * ((n2 - 3 * n + 3) * s1 - n * s2 + 3 * s02)
    b = batch.kurtosis * ((n2 - n) * s1 - 2 * n * s2 + 6 * s02)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s02) - ei * ei
        z = (moran_i - ei) / np.sqrt(var)
    return {
        "I": moran_i,
        "EI": np.full_like(moran_i, ei),
        "z_norm": z,
        "p_norm": 2.0 * ndtr(-np.abs(z)),
    }


def _global_result(
    analytic: dict[str, np.ndarray],
    pos: int,
    counts: tuple[np.ndarray, np.ndarray] | None,
    permutations: int,
) -> GlobalMoran:
    p_sim = float("nan")
    if counts is not None and permutations:
        p_sim = float(two_sided(counts[0][pos], counts[1][pos], permutations))
    return GlobalMoran(
        I=float(analytic["I"][pos]),
        EI=float(analytic["EI"][pos]),
        z_norm=float(analytic["z_norm"][pos]),
        p_norm=float(analytic["p_norm"][pos]),
        p_sim=p_sim,
        permutations=permutations,
    )


def _finish_gi_star(
    batch: Batch,
    pos: int,
    local: dict[str, np.ndarray],
    gm: GlobalMoran,
    ids: np.ndarray,
    opts: Options,
) -> HotSpotResult:
    z, p_norm = local["z"], local["p_norm"]
    p_sim = local.get("p_sim", np.full(len(z), np.nan))
    p_class = p_sim if opts.inference == "permutation" else p_norm
    *level_sig, sig = significant_at(p_class, (*CONFIDENCE_LEVELS, opts.alpha), opts.correction)
    bins = np.sign(np.nan_to_num(z)).astype(int) * np.sum(level_sig, axis=0)
    return _result(
        batch,
        pos,
        ids,
        opts,
        gm,
        p_sim,
        sig,
        sig & (z > 0),
        {"z": z, "p_norm": p_norm, "bin": (bins, 0)},
    )


def _finish_local_moran(
    batch: Batch,
    pos: int,
    local: dict[str, np.ndarray],
    gm: GlobalMoran,
    ids: np.ndarray,
    opts: Options,
) -> HotSpotResult:
    assert "p_sim" in local, "Local Moran needs permutation counts"
    z, lag, p_sim = batch.data[:, pos], local["lag"], local["p_sim"]
    isolate = batch.weights.cardinalities == 0
    sig = significant(p_sim, opts.alpha, opts.correction)
    quadrant = np.where(z > 0, np.where(lag > 0, "HH", "HL"), np.where(lag > 0, "LH", "LL"))
    quadrant = np.where(isolate, "", quadrant)
    cluster = np.where(sig, [LISA_CODES.get(q, 0) for q in quadrant], 0)
    cluster[isolate] = LISA_CODES["neighbourless"]
    return _result(
        batch,
        pos,
        ids,
        opts,
        gm,
        p_sim,
        sig,
        sig & (quadrant == "HH"),
        {
            "I": local["I"],
            "quadrant": (quadrant, ""),
            "cluster": (cluster, LISA_CODES["undefined"]),
        },
    )


def _result(
    batch: Batch,
    pos: int,
    ids: np.ndarray,
    opts: Options,
    gm: GlobalMoran,
    p_sim: np.ndarray,
    sig: np.ndarray,
    hot: np.ndarray,
    extra: dict[str, np.ndarray | tuple[np.ndarray, object]],
) -> HotSpotResult:
    """Spread the valid regions' arrays over all regions."""
    valid = batch.valid
    code = np.full(valid.shape, 2, dtype=np.int8)  # missing
    code[valid] = batch.weights.cardinalities == 0  # 1: isolate, 0: ok
    status = np.array([OK, ISOLATE, MISSING])[code]
    values = _scatter(valid, batch.raw[pos])
    stats_out = {}
    for name, item in extra.items():
        arr, fill = item if isinstance(item, tuple) else (item, np.nan)
        stats_out[name] = _scatter(valid, arr, fill)
    return HotSpotResult(
        method=batch.method,
        ids=ids,
        value=values,
        status=status,
        n_neighbors=_scatter(valid, batch.weights.cardinalities, -1),
        p_sim=_scatter(valid, p_sim),
        significant=_scatter(valid, sig, False),
        hot=_scatter(valid, hot, False),
        global_moran=gm,
        permutations=opts.permutations,
        seed=opts.seed,
        alpha=opts.alpha,
        correction=opts.correction,
        inference=opts.inference if batch.method == "gi_star" else "permutation",
        stats=stats_out,
    )


def untested(row: np.ndarray, ids: np.ndarray, method: str, opts: Options) -> HotSpotResult:
    """The result of a series with too few values for any inference: nothing significant."""
    n = len(row)
    valid = np.isfinite(row)
    status = np.where(valid, UNTESTED, MISSING)
    nan = np.full(n, np.nan)
    if method == "gi_star":
        extra = {"z": nan, "p_norm": nan, "bin": np.zeros(n, dtype=int)}
    else:
        extra = {
            "I": nan,
            "quadrant": np.full(n, ""),
            "cluster": np.full(n, LISA_CODES["undefined"]),
        }
    gm = GlobalMoran(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    return HotSpotResult(
        method=method,
        ids=ids,
        value=row.astype(float),
        status=status,
        n_neighbors=np.full(n, -1),
        p_sim=nan,
        significant=np.zeros(n, dtype=bool),
        hot=np.zeros(n, dtype=bool),
        global_moran=gm,
        permutations=opts.permutations,
        seed=opts.seed,
        alpha=opts.alpha,
        correction=opts.correction,
        inference=opts.inference if method == "gi_star" else "permutation",
        stats=extra,
    )


def _scatter(valid: np.ndarray, sub: np.ndarray, fill: object = np.nan) -> np.ndarray:
    """Spread values of the valid regions back over all regions, ``fill`` elsewhere."""
    sub = np.asarray(sub)
    if len(sub) == len(valid):
        return sub
    out = np.full(valid.shape, fill, dtype=np.result_type(sub.dtype, np.asarray(fill).dtype))
    out[valid] = sub
    return out


def gi_star(
    values: pd.Series | np.ndarray,
    weights: SpatialWeights,
    *,
    permutations: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    correction: str = "fdr",
    inference: str = "permutation",
) -> HotSpotResult:
    """Getis-Ord Gi* of one series, with binary weights that include the region itself.

    The z-score is the ArcGIS "Hot Spot Analysis" definition (equal to esda's
    ``G_Local(y, w, transform="B", star=True).Zs``). Classes use the permutation pseudo
    p-value (``inference="permutation"``) or the normal p-value as ArcGIS does
    (``inference="normal"``), corrected per confidence level: ``bin`` is +-3, +-2, +-1 at
    99, 95 and 90 % confidence (ArcGIS ``Gi_Bin``). A region is *hot* when its z is
    positive and it is significant at ``alpha``.
    """
    from geo.engine import run_panel

    opts = Options(permutations, resolve_seed(seed), alpha, correction, inference)
    return run_panel(panel(values, weights), weights, "gi_star", opts, scheduler="sync")[0]


def local_moran(
    values: pd.Series | np.ndarray,
    weights: SpatialWeights,
    *,
    permutations: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    correction: str = "fdr",
) -> HotSpotResult:
    """Local Moran's I of one series, row-standardised weights (esda ``Moran_Local``).

    ``cluster`` uses GeoDa's codes: 0 not significant, 1 HH, 2 LL, 3 LH, 4 HL,
    5 undefined (missing value), 6 neighbourless. *Hot* regions are significant HH.
    """
    from geo.engine import run_panel

    if permutations < 1:
        raise InvalidParameterError("local_moran needs permutations >= 1 for its inference")
    opts = Options(permutations, resolve_seed(seed), alpha, correction, "permutation")
    return run_panel(panel(values, weights), weights, "local_moran", opts, scheduler="sync")[0]
