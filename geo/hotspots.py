"""Local hot-spot statistics: Getis-Ord Gi* and Local Moran's I (LISA), with global Moran's I.

Definitions follow ArcGIS "Hot Spot Analysis" (Gi*, binary weights with the region itself)
and GeoDa/PySAL esda (Local Moran with row-standardised weights). Inference is by
conditional randomisation (see :mod:`geo._kernels`) and, for Gi*, by the normal
approximation. All p-values here are two-sided and never exceed 1.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from geo._kernels import crand_counts, draw_matrix
from geo.errors import InvalidParameterError
from geo.weights import SpatialWeights

Method = Literal["gi_star", "local_moran"]
Correction = Literal["none", "fdr", "bonferroni"]
Inference = Literal["permutation", "normal"]
INFERENCES: tuple[str, ...] = ("permutation", "normal")
METHODS: tuple[str, ...] = ("gi_star", "local_moran")
CORRECTIONS: tuple[str, ...] = ("none", "fdr", "bonferroni")
CONFIDENCE_LEVELS = (0.10, 0.05, 0.01)  # Gi_Bin +-1, +-2, +-3

# Region status, and GeoDa's LISA cluster codes.
OK, ISOLATE, MISSING = "ok", "isolate", "missing"
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
    """Global Moran's I with row-standardised weights and its permutation pseudo p-value."""

    I: float  # noqa: E741 (the statistic's name)
    EI: float
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
        frame = pd.DataFrame(
            {
                "value": self.value,
                "status": self.status,
                "n_neighbors": self.n_neighbors,
                **self.stats,
                "p_sim": self.p_sim,
                "significant": self.significant,
                "hot": self.hot,
            },
            index=pd.Index(self.ids, name="region"),
        )
        return frame

    @property
    def excluded(self) -> list[str]:
        """Regions left out for a missing value (GeoDa's 'undefined')."""
        return self.ids[self.status == MISSING].tolist()

    @property
    def isolates(self) -> list[str]:
        return self.ids[self.status == ISOLATE].tolist()


def check_parameters(permutations: int, alpha: float, correction: str) -> None:
    """Validate the inference parameters shared by both statistics."""
    if not isinstance(permutations, int | np.integer) or permutations < 0:
        raise InvalidParameterError(f"permutations must be an integer >= 0, not {permutations!r}")
    if not 0 < alpha < 1:
        raise InvalidParameterError(f"alpha must lie strictly between 0 and 1, not {alpha!r}")
    if correction not in CORRECTIONS:
        raise InvalidParameterError(
            f"correction {correction!r} not understood; use one of {list(CORRECTIONS)}"
        )


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


def _prepare(
    values: pd.Series | np.ndarray, weights: SpatialWeights
) -> tuple[np.ndarray, np.ndarray, SpatialWeights]:
    """Align values to the weights' ids; return all values, the valid mask, valid weights."""
    if isinstance(values, pd.Series):
        vals = values.reindex(weights.ids).to_numpy(dtype=float)
    else:
        vals = np.asarray(values, dtype=float)
        if vals.shape != (weights.n,):
            raise InvalidParameterError(
                f"got {vals.shape[0] if vals.ndim else 0} values for {weights.n} regions"
            )
    valid = np.isfinite(vals)
    if valid.sum() < 3:
        raise InvalidParameterError(
            f"only {int(valid.sum())} regions have a value; at least 3 are needed"
        )
    return vals, valid, weights.subset(valid)


def _scatter(valid: np.ndarray, sub: np.ndarray, fill: float | int | str = np.nan) -> np.ndarray:
    """Spread values of the valid regions back over all regions, ``fill`` elsewhere."""
    sub = np.asarray(sub)
    out = np.full(valid.shape, fill, dtype=np.result_type(sub.dtype, np.asarray(fill).dtype))
    out[valid] = sub
    return out


def _permute(
    values: np.ndarray, w: SpatialWeights, data: np.ndarray, permutations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Conditional randomisation counts for one series on the valid sub-graph."""
    adj = w.adjacency
    kmax = int(w.cardinalities.max(initial=0))
    draws = draw_matrix(np.uint64(seed), np.int64(permutations), np.int64(kmax), np.int64(w.n - 1))
    ge, le = crand_counts(
        values[None, :],
        adj.indptr.astype(np.int64),
        adj.indices.astype(np.int64),
        data,
        np.arange(w.n, dtype=np.int64),
        draws,
    )
    return ge[0], le[0]


def resolve_seed(seed: int | None) -> int:
    """A user seed, or a fresh one that is then recorded with the result."""
    if seed is None:
        return secrets.randbits(32)
    if seed < 0:
        raise InvalidParameterError(f"seed must be >= 0, not {seed}")
    return int(seed)


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
    """Getis-Ord Gi* with binary weights that include the region itself.

    The z-score is the ArcGIS "Hot Spot Analysis" definition (equal to esda's
    ``G_Local(y, w, transform="B", star=True).Zs``). Classes use the permutation pseudo
    p-value (``inference="permutation"``) or the normal p-value as ArcGIS does
    (``inference="normal"``), corrected per confidence
    level: ``bin`` is +-3, +-2, +-1 at 99, 95 and 90 % confidence (ArcGIS ``Gi_Bin``).
    A region is *hot* when its z is positive and it is significant at ``alpha``.
    """
    check_parameters(permutations, alpha, correction)
    if inference not in INFERENCES:
        raise InvalidParameterError(f"inference {inference!r} not understood; use {INFERENCES}")
    if inference == "permutation" and permutations < 1:
        raise InvalidParameterError("permutation inference needs permutations >= 1")
    seed = resolve_seed(seed)
    vals, valid, w = _prepare(values, weights)
    x = vals[valid]
    n = len(x)
    card = w.cardinalities
    c = card + 1.0  # binary weights with the region itself
    lag = w.adjacency @ x
    mean = x.mean()
    s = np.sqrt((x**2).mean() - mean**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x + lag - mean * c) / (s * np.sqrt((n * c - c**2) / (n - 1)))
    isolate = card == 0
    z[isolate] = np.nan
    p_norm = 2.0 * stats.norm.sf(np.abs(z))
    p_sim = np.full(n, np.nan)
    if permutations:
        ge, le = _permute(x, w, w.adjacency.data.astype(float), permutations, seed)
        p_sim = two_sided(ge, le, permutations)
        p_sim[isolate] = np.nan
    p_class = p_sim if inference == "permutation" else p_norm
    level_sig = [significant(p_class, a, correction) for a in CONFIDENCE_LEVELS]
    bins = np.sign(np.nan_to_num(z)).astype(int) * np.sum(level_sig, axis=0)
    sig = significant(p_class, alpha, correction)
    return HotSpotResult(
        method="gi_star",
        ids=weights.ids,
        value=vals,
        status=_status(valid, isolate),
        n_neighbors=_scatter(valid, card, -1),
        p_sim=_scatter(valid, p_sim),
        significant=_scatter(valid, sig, False),
        hot=_scatter(valid, sig & (z > 0), False),
        global_moran=global_moran(x, w, permutations, seed),
        permutations=permutations,
        seed=seed,
        alpha=alpha,
        correction=correction,
        inference=inference,
        stats={
            "z": _scatter(valid, z),
            "p_norm": _scatter(valid, p_norm),
            "bin": _scatter(valid, bins, 0),
        },
    )


def local_moran(
    values: pd.Series | np.ndarray,
    weights: SpatialWeights,
    *,
    permutations: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    correction: str = "fdr",
) -> HotSpotResult:
    """Local Moran's I with row-standardised weights (esda ``Moran_Local``).

    ``cluster`` uses GeoDa's codes: 0 not significant, 1 HH, 2 LL, 3 LH, 4 HL,
    5 undefined (missing value), 6 neighbourless. *Hot* regions are significant HH.
    """
    check_parameters(permutations, alpha, correction)
    if permutations < 1:
        raise InvalidParameterError("local_moran needs permutations >= 1 for its inference")
    seed = resolve_seed(seed)
    vals, valid, w = _prepare(values, weights)
    x = vals[valid]
    n = len(x)
    card = w.cardinalities
    isolate = card == 0
    z = (x - x.mean()) / x.std()
    row_w = row_standardised(w.adjacency)
    lag = row_w @ z
    local_i = (n - 1) * z * lag / (z @ z)
    ge, le = _permute(z, w, row_w.data, permutations, seed)
    # I_i is increasing in the lag where z_i > 0, decreasing where z_i < 0.
    ge, le = np.where(z >= 0, ge, le), np.where(z >= 0, le, ge)
    ge[z == 0] = le[z == 0] = permutations  # I_i = 0 whatever the neighbours: every draw ties
    p_sim = two_sided(ge, le, permutations)
    p_sim[isolate] = np.nan
    sig = significant(p_sim, alpha, correction)
    quadrant = np.where(z > 0, np.where(lag > 0, "HH", "HL"), np.where(lag > 0, "LH", "LL"))
    quadrant = np.where(isolate, "", quadrant)
    cluster = np.where(sig, [LISA_CODES.get(q, 0) for q in quadrant], 0)
    cluster[isolate] = LISA_CODES["neighbourless"]
    return HotSpotResult(
        method="local_moran",
        ids=weights.ids,
        value=vals,
        status=_status(valid, isolate),
        n_neighbors=_scatter(valid, card, -1),
        p_sim=_scatter(valid, p_sim),
        significant=_scatter(valid, sig, False),
        hot=_scatter(valid, sig & (quadrant == "HH"), False),
        global_moran=global_moran(x, w, permutations, seed),
        permutations=permutations,
        seed=seed,
        alpha=alpha,
        correction=correction,
        inference="permutation",
        stats={
            "I": _scatter(valid, local_i),
            "quadrant": _scatter(valid, quadrant, ""),
            "cluster": _scatter(valid, cluster, LISA_CODES["undefined"]),
        },
    )


def row_standardised(adjacency: sp.csr_array) -> sp.csr_array:
    """Row-standardised copy of a binary adjacency; rows of isolates stay empty."""
    card = np.diff(adjacency.indptr)
    out = adjacency.astype(float).copy()
    out.data = 1.0 / np.repeat(card, card).astype(float)
    return out


def global_moran(
    x: np.ndarray, w: SpatialWeights, permutations: int, seed: int, block: int = 256
) -> GlobalMoran:
    """Global Moran's I, row-standardised, with a two-sided permutation pseudo p-value."""
    n = len(x)
    z = x - x.mean()
    row_w = row_standardised(w.adjacency)
    s0 = row_w.sum()
    scale = n / s0 / (z @ z) if s0 else np.nan
    observed = float(scale * (z @ (row_w @ z)))
    p = np.nan
    if permutations and s0:
        rng = np.random.default_rng(seed)
        ge = le = 0
        for start in range(0, permutations, block):
            size = min(block, permutations - start)
            zs = rng.permuted(np.broadcast_to(z, (size, n)), axis=1).T
            sims = scale * np.einsum("ij,ij->j", zs, row_w @ zs)
            ge += int((sims >= observed).sum())
            le += int((sims <= observed).sum())
        p = float(two_sided(np.array(ge), np.array(le), permutations))
    return GlobalMoran(I=observed, EI=-1.0 / (n - 1), p_sim=p, permutations=permutations)


def _status(valid: np.ndarray, isolate: np.ndarray) -> np.ndarray:
    status = np.full(valid.shape, MISSING, dtype=object)
    status[valid] = np.where(isolate, ISOLATE, OK)
    return status.astype(str)
