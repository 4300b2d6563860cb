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

import secrets
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
    """Series that share their missing values, ready for the permutation kernels.

    ``raw`` holds the values (series x regions); ``data`` (regions x series, C-contiguous)
    holds what the conditional permutations sum:
    the raw values for Gi*, the standardised values for Local Moran. ``centred`` feeds the
    global Moran permutations. ``stats`` holds analytic (series x regions) arrays.
    """

    method: str
    series: np.ndarray
    valid: np.ndarray
    weights: SpatialWeights
    raw: np.ndarray
    data: np.ndarray
    centred: np.ndarray
    stats: dict[str, np.ndarray]
    global_moran: dict[str, np.ndarray]

    @property
    def kmax(self) -> int:
        return int(self.weights.cardinalities.max(initial=0))


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
    tested = ~np.isnan(p)
    m = int(tested.sum())
    out = np.zeros(p.shape, dtype=bool)
    if m == 0:
        return out
    if correction == "none":
        out[tested] = p[tested] <= alpha
    elif correction == "bonferroni":
        out[tested] = p[tested] <= alpha / m
    else:
        ps = np.sort(p[tested])
        passing = np.flatnonzero(ps <= alpha * np.arange(1, m + 1) / m)
        if len(passing):
            out[tested] = p[tested] <= ps[passing[-1]]
    return out


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
    """ArcGIS Gi* z-scores of every series (rows of ``x``) at once."""
    n = x.shape[1]
    c = w.cardinalities + 1.0  # binary weights with the region itself
    lag = (w.adjacency @ x.T).T
    mean = x.mean(axis=1, keepdims=True)
    s = np.sqrt((x**2).mean(axis=1, keepdims=True) - mean**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x + lag - mean * c) / (s * np.sqrt((n * c - c**2) / (n - 1)))
    z[:, w.cardinalities == 0] = np.nan
    p_norm = 2.0 * ndtr(-np.abs(z))
    return Batch(
        "gi_star",
        series,
        mask,
        w,
        x,
        np.ascontiguousarray(x.T),
        np.ascontiguousarray((x - mean).T),
        {"z": z, "p_norm": p_norm},
        _global_moran_analytic(x - mean, w),
    )


def _local_moran_batch(
    series: np.ndarray, mask: np.ndarray, w: SpatialWeights, x: np.ndarray
) -> Batch:
    """esda Local Moran's I of every series at once, with the sign of each region's lag."""
    n = x.shape[1]
    z = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    card = w.cardinalities
    with np.errstate(divide="ignore", invalid="ignore"):
        lag = np.where(card > 0, (w.adjacency @ z.T).T / card, 0.0)
    local_i = (n - 1) * z * lag / (z * z).sum(axis=1, keepdims=True)
    centred = x - x.mean(axis=1, keepdims=True)
    return Batch(
        "local_moran",
        series,
        mask,
        w,
        x,
        np.ascontiguousarray(z.T),
        np.ascontiguousarray(centred.T),
        {"I": local_i, "z_std": z, "lag": lag},
        _global_moran_analytic(centred, w),
    )


def _global_moran_analytic(centred: np.ndarray, w: SpatialWeights) -> dict[str, np.ndarray]:
    """Global Moran's I, its expectation and z under randomisation (esda ``Moran``)."""
    n = centred.shape[1]
    adj = w.adjacency
    card = w.cardinalities.astype(float)
    inv = np.divide(1.0, card, out=np.zeros(n), where=card > 0)
    s0 = float((card > 0).sum())  # every non-isolate row sums to one
    ss = (centred**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        lag = (adj @ centred.T).T * inv
        moran_i = n / s0 * np.einsum("sn,sn->s", centred, lag) / ss
    ei = -1.0 / (n - 1)
    s1, s2 = _moment_sums(w, inv)
    k = ((centred**4).sum(axis=1) / n) / (ss / n) ** 2
    n2, s02 = n * n, s0 * s0
    a = n * ((n2 - 3 * n + 3) * s1 - n * s2 + 3 * s02)
    b = k * ((n2 - n) * s1 - 2 * n * s2 + 6 * s02)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (a - b) / ((n - 1) * (n - 2) * (n - 3) * s02) - ei * ei
        z = (moran_i - ei) / np.sqrt(var)
    return {
        "I": moran_i,
        "EI": np.full_like(moran_i, ei),
        "z_norm": z,
        "p_norm": 2.0 * ndtr(-np.abs(z)),
    }


def _moment_sums(w: SpatialWeights, inv: np.ndarray) -> tuple[float, float]:
    """esda's ``s1`` and ``s2`` of the row-standardised weights ``w_ij = a_ij / k_i``.

    ``s1 = sum_ij w_ij^2 + sum_ij w_ij w_ji`` and ``s2 = sum_i (1 + sum_j w_ji)^2`` over
    non-isolates, in one pass over the binary adjacency (see :func:`geo._kernels.moments`).
    """
    from geo._kernels import moments

    s1, s2 = moments(*w.csr, inv)
    return float(s1), float(s2)


def finish(
    batch: Batch,
    counts: tuple[np.ndarray, np.ndarray] | None,
    global_counts: tuple[np.ndarray, np.ndarray] | None,
    ids: np.ndarray,
    opts: Options,
) -> list[HotSpotResult]:
    """Turn a batch and its permutation counts into one result per series.

    ``counts`` are the kernel's (series x regions) counts of permuted neighbour sums at or
    above / below the observed; ``global_counts`` those of the global Moran permutations.
    """
    n_perm = opts.global_permutations if global_counts is not None else 0
    out = []
    for pos in range(len(batch.series)):
        gm = _global_result(batch.global_moran, pos, global_counts, n_perm)
        ge_le = None if counts is None else (counts[0][pos], counts[1][pos])
        finish_one = _finish_gi_star if batch.method == "gi_star" else _finish_local_moran
        out.append(finish_one(batch, pos, ge_le, gm, ids, opts))
    return out


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
    counts: tuple[np.ndarray, np.ndarray] | None,
    gm: GlobalMoran,
    ids: np.ndarray,
    opts: Options,
) -> HotSpotResult:
    z, p_norm = batch.stats["z"][pos], batch.stats["p_norm"][pos]
    isolate = batch.weights.cardinalities == 0
    p_sim = np.full(len(z), np.nan)
    if counts is not None:
        p_sim = two_sided(counts[0], counts[1], opts.permutations)
        p_sim[isolate] = np.nan
    p_class = p_sim if opts.inference == "permutation" else p_norm
    level_sig = [significant(p_class, a, opts.correction) for a in CONFIDENCE_LEVELS]
    bins = np.sign(np.nan_to_num(z)).astype(int) * np.sum(level_sig, axis=0)
    sig = significant(p_class, opts.alpha, opts.correction)
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
    counts: tuple[np.ndarray, np.ndarray] | None,
    gm: GlobalMoran,
    ids: np.ndarray,
    opts: Options,
) -> HotSpotResult:
    assert counts is not None, "Local Moran needs permutation counts"
    z, lag = batch.stats["z_std"][pos], batch.stats["lag"][pos]
    isolate = batch.weights.cardinalities == 0
    # I_i grows with the neighbour sum where z_i > 0, falls where z_i < 0, is 0 where z_i = 0.
    ge = np.where(z > 0, counts[0], np.where(z < 0, counts[1], opts.permutations))
    le = np.where(z > 0, counts[1], np.where(z < 0, counts[0], opts.permutations))
    p_sim = two_sided(ge, le, opts.permutations)
    p_sim[isolate] = np.nan
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
            "I": batch.stats["I"][pos],
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
    isolate = batch.weights.cardinalities == 0
    isolated = np.zeros(valid.shape, dtype=bool)
    isolated[valid] = isolate
    status = np.where(valid, np.where(isolated, ISOLATE, OK), MISSING)
    values = np.full(valid.shape, np.nan)
    values[valid] = batch.raw[pos]
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
