"""Emerging hot-spot analysis: Gi* hot spots per year, their trend, and 17 space-time patterns.

This follows ArcGIS Pro's *Emerging Hot Spot Analysis* (Space Time Pattern Mining toolbox),
"How Emerging Hot Spot Analysis works",
<https://pro.arcgis.com/en/pro-app/latest/tool-reference/space-time-pattern-mining/learnmoreemerging.htm>
(PySAL has no such analysis, esda issue #221). Every year of a regions x years panel gets its
own Getis-Ord Gi* (:mod:`geo.hotspots`, all years in one dask graph of :func:`geo.engine.
run_panel`, the multiple-testing correction applied per year); the Mann-Kendall trend test
runs on each region's series of Gi* z-scores (ArcGIS runs it on the z-scores of each
location's bin time series); and every region falls into one of the 17 categories of the
documentation, quoted in :func:`classify`.

ArcGIS works on a space-time cube whose neighbourhood may span several time steps; here a
region's neighbours are those of the spatial weights within the same year (a neighbourhood
time step of one), which is the per-year Gi* of the rest of AlpClusters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from geo.errors import InvalidParameterError
from geo.hotspots import Options, resolve_seed
from geo.weights import SpatialWeights

MIN_YEARS = 6
HOT, COLD, NOT_SIGNIFICANT = 1, -1, 0

# The eight patterns of either side, in the documentation's order, with their labels.
PATTERNS: tuple[str, ...] = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
NO_PATTERN = "no_pattern"
CATEGORIES: tuple[str, ...] = (
    *(f"{p}_hot" for p in PATTERNS),
    *(f"{p}_cold" for p in PATTERNS),
    NO_PATTERN,
)
LABELS: dict[str, str] = {
    **{f"{p}_hot": f"{p.capitalize()} hot spot" for p in PATTERNS},
    **{f"{p}_cold": f"{p.capitalize()} cold spot" for p in PATTERNS},
    NO_PATTERN: "No pattern detected",
}


@dataclass(frozen=True, eq=False)
class MannKendall:
    """Mann-Kendall trend test of many series at once, arrays aligned with the series.

    ``s`` is the Mann-Kendall score, ``var_s`` its variance with the tie correction, ``z``
    the normal score with the continuity correction, ``p`` its two-sided p-value, ``tau``
    Kendall's tau (``s`` over the number of pairs) and ``n`` the number of values used.
    Series with fewer than two values have NaN statistics.
    """

    s: np.ndarray
    var_s: np.ndarray
    z: np.ndarray
    p: np.ndarray
    tau: np.ndarray
    n: np.ndarray


def mann_kendall(x: np.ndarray) -> MannKendall:
    """The Mann-Kendall trend test of every row of ``x`` (series x time), vectorised.

    Mann (1945), Kendall (1975), as in Gilbert (1987) and the ``pymannkendall`` package's
    ``original_test``: ``S = sum_{i<j} sign(x_j - x_i)``; ``Var(S) = (n(n-1)(2n+5) -
    sum_t t(t-1)(2t+5)) / 18`` over the groups of ``t`` tied values; ``z = (S - 1) /
    sqrt(Var S)`` for ``S > 0``, ``(S + 1) / sqrt(Var S)`` for ``S < 0``, 0 for ``S = 0``;
    ``p = 2 (1 - Phi(|z|))``. NaN values are skipped (pymannkendall's default).

    Parameters
    ----------
    x : (R, T) float
        One series per row, in time order.
    """
    x = np.atleast_2d(np.asarray(x, dtype=float))
    finite = np.isfinite(x)
    n = finite.sum(axis=1)
    pair = finite[:, :, None] & finite[:, None, :]
    later = np.triu(np.ones((x.shape[1],) * 2, dtype=bool), k=1)  # j > i
    with np.errstate(invalid="ignore"):
        diff = np.sign(x[:, None, :] - x[:, :, None])  # [r, i, j] = sign(x_j - x_i)
        tied = (x[:, :, None] == x[:, None, :]) & pair
    s = np.where(pair & later, diff, 0.0).sum(axis=(1, 2))
    ties = tied.sum(axis=2)  # per value: how many values equal it (itself included)
    tie_term = np.where(finite, (ties - 1) * (2 * ties + 5), 0).sum(axis=1)
    var_s = (n * (n - 1) * (2 * n + 5) - tie_term) / 18.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s == 0, 0.0, (s - np.sign(s)) / np.sqrt(var_s))
        tau = s / (0.5 * n * (n - 1))
    p = 2.0 * ndtr(-np.abs(z))
    few = n < 2
    nan = np.full(len(x), np.nan)
    return MannKendall(
        s=np.where(few, nan, s),
        var_s=np.where(few, nan, var_s),
        z=np.where(few, nan, z),
        p=np.where(few, nan, p),
        tau=np.where(few, nan, tau),
        n=n,
    )


def _side(bins: np.ndarray, trend_z: np.ndarray, trend: np.ndarray) -> np.ndarray:
    """The pattern of one side (``bins`` +1 for this side, -1 for the other) or ''."""
    n = bins.shape[1]
    this, other = bins == HOT, bins == COLD
    count = this.sum(axis=1)
    mostly = 10 * count >= 9 * n  # at least 90 %, in exact integer arithmetic
    final = this[:, -1]
    run = _final_run(this)
    mixed = other[:, :-1].any(axis=1)
    recent = final & ~mostly & ~mixed
    rules = [
        (final & mostly & trend & (trend_z > 0), "intensifying"),
        (final & mostly & trend & (trend_z < 0), "diminishing"),
        (final & mostly & ~trend, "persistent"),
        ((bins[:, -1] == NOT_SIGNIFICANT) & mostly, "historical"),
        (final & ~mostly & mixed, "oscillating"),
        (recent & (count == run) & (run == 1), "new"),
        (recent & (count == run) & (run >= 2), "consecutive"),
        (recent & (count > run), "sporadic"),
    ]
    return np.select([r for r, _ in rules], [name for _, name in rules], default="")


def _final_run(flags: np.ndarray) -> np.ndarray:
    """Length of the uninterrupted run of true values that ends at the last time step."""
    broken = ~flags[:, ::-1]
    first_break = np.where(broken.any(axis=1), broken.argmax(axis=1), flags.shape[1])
    return first_break


def classify(
    bins: np.ndarray,
    trend_z: np.ndarray,
    trend_p: np.ndarray,
    trend_alpha: float = 0.05,
) -> np.ndarray:
    """The emerging hot-spot category of every region (row) of a bins x years array.

    ``bins`` holds +1 (a statistically significant hot spot that year), -1 (cold spot) or
    0 (neither, or not tested); ``trend_z`` and ``trend_p`` are the Mann-Kendall z and
    p-value of the region's Gi* z-scores. The definitions, from ArcGIS Pro's "How Emerging
    Hot Spot Analysis works" (cold spots alike, with cold for hot and *low* for *high*):

    * *New*: "a statistically significant hot spot for the final time step and has never
      been a statistically significant hot spot before".
    * *Consecutive*: "a single uninterrupted run of at least two statistically significant
      hot spot bins in the final time-step intervals. The location has never been a
      statistically significant hot spot prior to the final hot spot run and less than
      ninety percent of all bins are statistically significant hot spots".
    * *Intensifying*: "a statistically significant hot spot for ninety percent of the
      time-step intervals, including the final time step. In addition, the intensity of
      clustering of high counts in each time step is increasing overall and that increase
      is statistically significant".
    * *Persistent*: "a statistically significant hot spot for ninety percent of the
      time-step intervals with no discernible trend in the intensity of clustering over
      time".
    * *Diminishing*: as intensifying, with the intensity "decreasing overall and that
      decrease is statistically significant".
    * *Sporadic*: "a statistically significant hot spot for the final time-step interval
      with a history of also being an on-again and off-again hot spot. Less than ninety
      percent of the time-step intervals have been statistically significant hot spots
      and none of the time-step intervals have been statistically significant cold spots".
    * *Oscillating*: "a statistically significant hot spot for the final time-step interval
      that has a history of also being a statistically significant cold spot during a prior
      time step. Less than ninety percent of the time-step intervals have been
      statistically significant hot spots".
    * *Historical*: "the most recent time period is not hot, but at least ninety percent of
      the time-step intervals have been statistically significant hot spots".
    * *No pattern detected*: none of the above.

    Where the documentation leaves room, these choices are made (and tested):

    * *Ninety percent* is "at least 90 %", without rounding: ``10 * k >= 9 * n`` for ``k``
      significant bins of ``n`` (with 6 to 9 years, every year; with 10 to 19, all but one).
    * A trend is significant when ``trend_p <= trend_alpha`` (as a hot spot is significant
      at ``p <= alpha`` in :func:`geo.hotspots.significant`); its sign is that of
      ``trend_z``, and cold spots intensify when their z-scores fall. A NaN trend is no
      trend.
    * The final year decides the side: a significant hot final year gives a hot pattern,
      a cold one a cold pattern, and only a final year that is neither can be
      *historical* (so 9 hot years then a final cold one is an oscillating cold spot, not
      a historical hot spot). Intensifying, persistent and diminishing spots are
      significant in the final year too; with 90 % but not the final year a spot is
      historical, whatever its trend.
    * A history of the other side makes a spot *oscillating* before anything else of
      fewer than 90 %: a final hot spot with earlier cold spots and no earlier hot spot
      is oscillating, not new; new and consecutive spots have no significant bin of
      either side before their final run. So among final hot spots with fewer than 90 %
      hot years and no cold year, a final run of one is *new*, a final run of two or more
      with nothing before it *consecutive*, anything else *sporadic*.

    With these choices the categories are exclusive and every region gets exactly one.
    """
    bins = np.asarray(bins, dtype=int)
    if bins.ndim != 2 or bins.shape[1] < 2:
        raise InvalidParameterError(f"bins must be regions x years, not of shape {bins.shape}")
    with np.errstate(invalid="ignore"):
        trend = np.asarray(trend_p) <= trend_alpha  # NaN compares False
    trend_z = np.nan_to_num(np.asarray(trend_z, dtype=float))
    hot = _side(bins, trend_z, trend)
    cold = _side(-bins, -trend_z, trend)
    out = np.where(hot != "", np.char.add(hot, "_hot"), np.char.add(cold, "_cold"))
    return np.where((hot == "") & (cold == ""), NO_PATTERN, out).astype(object)


def gi_star_years(
    values: np.ndarray,
    weights: SpatialWeights,
    opts: Options,
    scheduler: Any = "threads",
) -> tuple[np.ndarray, np.ndarray]:
    """Gi* z-scores and significance bins of every year (row) of a years x regions array.

    All years run as one dask graph (:func:`geo.engine.run_panel`); the correction of
    ``opts`` applies to each year on its own. Returns two (years, regions) arrays: the
    z-scores (NaN where a value is missing or the region has no neighbours) and the bins
    (+1 hot, -1 cold at ``opts.alpha``, 0 otherwise).
    """
    from geo.engine import run_panel

    results = run_panel(values, weights, "gi_star", opts, scheduler=scheduler)
    z = np.vstack([r.stats["z"] for r in results]).astype(float)
    sig = np.vstack([r.significant for r in results]).astype(bool)
    with np.errstate(invalid="ignore"):
        bins = np.where(sig & (z > 0), HOT, np.where(sig & (z < 0), COLD, NOT_SIGNIFICANT))
    return z, bins


def _check_panel(panel: pd.DataFrame, weights: SpatialWeights) -> pd.DataFrame:
    """The panel with its years sorted and its rows in the order of the weights."""
    if not isinstance(panel, pd.DataFrame):
        raise InvalidParameterError(
            f"the panel must be a DataFrame (regions x years), not {type(panel).__name__}"
        )
    if panel.shape[1] < MIN_YEARS:
        raise InvalidParameterError(
            f"emerging hot spots need at least {MIN_YEARS} years; the panel has "
            f"{panel.shape[1]}: {list(panel.columns)}"
        )
    if panel.columns.has_duplicates or panel.index.has_duplicates:
        raise InvalidParameterError("the panel has duplicated years or regions")
    unknown = panel.index.difference(pd.Index(weights.ids))
    if len(unknown):
        raise InvalidParameterError(
            f"regions {list(unknown[:5])} of the panel are not in the weights"
        )
    return panel.sort_index(axis=1).reindex(weights.ids).astype(float)


def emerging_hot_spots(
    panel: pd.DataFrame,
    weights: SpatialWeights,
    *,
    permutations: int = 999,
    seed: int | None = None,
    alpha: float = 0.05,
    correction: str = "fdr",
    inference: str = "permutation",
    trend_alpha: float | None = None,
    scheduler: Any = "threads",
) -> pd.DataFrame:
    """Emerging hot-spot analysis of one indicator over regions x years (ArcGIS Pro's
    "Emerging Hot Spot Analysis").

    Parameters
    ----------
    panel : DataFrame
        Values indexed by region id, one column per year (at least :data:`MIN_YEARS`;
        sorted by year). Regions of ``weights`` missing from it have no values.
    weights : SpatialWeights
        The neighbours (:mod:`geo.weights`), the same every year.
    permutations, seed, alpha, correction, inference
        The Gi* inference of every year, as in :func:`geo.hotspots.gi_star`; the
        correction (default Benjamini-Hochberg FDR, as ArcGIS) applies per year.
    trend_alpha : float, optional
        Significance level of the Mann-Kendall trend; by default ``alpha``.
    scheduler
        Anything ``dask.compute`` accepts.

    Returns
    -------
    DataFrame
        Indexed by region (the order of ``weights.ids``): ``category`` (a code of
        :data:`CATEGORIES`), ``label`` (its plain-English name), ``trend_z``, ``trend_p``,
        ``trend_tau`` (Mann-Kendall of the Gi* z-scores), ``n_years`` (years with a
        z-score), ``n_hot``, ``n_cold`` (significant years), then ``z_<year>`` and
        ``bin_<year>`` (+1 hot, -1 cold, 0 neither) of every year.

    Notes
    -----
    A year in which a region has no value (or no neighbour) has no z-score and is not a
    significant bin; its trend skips that year. So a region without a value in the final
    year can only be a historical spot or have no pattern. Rules: see :func:`classify`.
    """
    frame = _check_panel(panel, weights)
    ta = alpha if trend_alpha is None else trend_alpha
    if not 0 < ta < 1:
        raise InvalidParameterError(f"trend_alpha must lie strictly between 0 and 1, not {ta}")
    opts = Options(permutations, resolve_seed(seed), alpha, correction, inference)
    z, bins = gi_star_years(frame.to_numpy().T, weights, opts, scheduler)
    trend = mann_kendall(z.T)
    category = classify(bins.T, trend.z, trend.p, ta)
    years = list(frame.columns)
    out = pd.DataFrame(
        {
            "category": category,
            "label": [LABELS[c] for c in category],
            "trend_z": trend.z,
            "trend_p": trend.p,
            "trend_tau": trend.tau,
            "n_years": trend.n,
            "n_hot": (bins == HOT).sum(axis=0),
            "n_cold": (bins == COLD).sum(axis=0),
        },
        index=pd.Index(weights.ids, name="region"),
    )
    per_year = {f"z_{y}": z[i] for i, y in enumerate(years)}
    per_year |= {f"bin_{y}": bins[i] for i, y in enumerate(years)}
    return pd.concat([out, pd.DataFrame(per_year, index=out.index)], axis=1)


def category_counts(result: pd.DataFrame | pd.Series) -> pd.Series:
    """How many regions fall into each of the 17 categories (zeros included), in the order
    of :data:`CATEGORIES`; takes the result of :func:`emerging_hot_spots` or its
    ``category`` column."""
    categories = result["category"] if isinstance(result, pd.DataFrame) else result
    unknown = set(categories) - set(CATEGORIES)
    if unknown:
        raise InvalidParameterError(f"unknown categories {sorted(unknown)}; use {CATEGORIES}")
    counts = categories.value_counts().reindex(list(CATEGORIES), fill_value=0)
    return counts.rename("regions").rename_axis("category").astype(int)
