"""Emerging hot-spot analysis (geo.emerging): the 17 ArcGIS categories, Mann-Kendall, GDP.

References: pymannkendall's ``original_test`` and scipy's ``kendalltau`` for the trend test;
a plain-Python, one-region-at-a-time reading of ArcGIS Pro's category definitions for the
vectorised classifier; ``geo.hotspots.gi_star`` run year by year and esda's ``G_Local`` for
the per-year z-scores of the real GDP table. Every bin series is generated in code.
"""

from __future__ import annotations

import warnings

import esda
import numpy as np
import pandas as pd
import pymannkendall
import pytest
from libpysal.weights import Queen
from scipy.stats import kendalltau

from geo.areas import resolve
from geo.boundaries import layer_key, load_boundaries
from geo.emerging import (
    CATEGORIES,
    LABELS,
    MIN_YEARS,
    category_counts,
    classify,
    emerging_hot_spots,
    mann_kendall,
)
from geo.errors import InvalidParameterError
from geo.hotspots import gi_star
from geo.indicators import load_eurostat
from geo.weights import SpatialWeights, WeightsSpec, cached_weights

ALPHA = 0.05
SIG, FLAT = 0.001, 0.5  # a significant and a non-significant trend p-value
CODE = {"H": 1, "C": -1, ".": 0}


def bins(pattern: str) -> np.ndarray:
    """A bin series from a pattern of H (hot), C (cold) and . (neither), earliest first."""
    return np.array([CODE[c] for c in pattern])


def category(pattern: str, trend_z: float = 0.0, trend_p: float = FLAT) -> str:
    out = classify(bins(pattern)[None, :], np.array([trend_z]), np.array([trend_p]), ALPHA)
    return str(out[0])


def mirror(pattern: str) -> str:
    return pattern.translate(str.maketrans("HC", "CH"))


# (pattern, trend z, trend p, expected hot category), built from repeated symbols; the cold
# case is the mirror image (H <-> C, trend z negated).
N = 12
HOT_CASES = [
    pytest.param("." * (N - 1) + "H", 0.0, FLAT, "new", id="new"),
    pytest.param("." * (N - 2) + "HH", 0.0, FLAT, "consecutive", id="consecutive-run-of-2"),
    pytest.param("." * 2 + "H" * (N - 2), 0.0, FLAT, "consecutive", id="consecutive-just-below-90"),
    pytest.param("H" * N, 3.0, SIG, "intensifying", id="intensifying"),
    pytest.param("." + "H" * (N - 1), 3.0, SIG, "intensifying", id="intensifying-exactly-90"),
    pytest.param("H" * N, 3.0, ALPHA, "intensifying", id="intensifying-p-equal-alpha"),
    pytest.param(
        "H" * N, 3.0, np.nextafter(ALPHA, 1), "persistent", id="persistent-p-just-above-alpha"
    ),
    pytest.param("H" * N, 0.0, FLAT, "persistent", id="persistent"),
    pytest.param("." + "H" * (N - 1), 0.5, FLAT, "persistent", id="persistent-exactly-90"),
    pytest.param("H" * N, np.nan, np.nan, "persistent", id="persistent-nan-trend"),
    pytest.param("H" * N, -3.0, SIG, "diminishing", id="diminishing"),
    pytest.param("H." + "H" * (N - 2), -3.0, SIG, "diminishing", id="diminishing-exactly-90"),
    pytest.param("H" + "." * (N - 3) + "HH", 0.0, FLAT, "sporadic", id="sporadic"),
    pytest.param("H.H.H.H.H..H", 2.0, SIG, "sporadic", id="sporadic-with-trend"),
    pytest.param("H" * (N - 3) + "..H", 3.0, SIG, "sporadic", id="sporadic-just-below-90"),
    pytest.param("C" + "." * (N - 2) + "H", 0.0, FLAT, "oscillating", id="oscillating"),
    pytest.param("C" + "." * (N - 3) + "HH", 0.0, FLAT, "oscillating", id="oscillating-run"),
    pytest.param("HC" + "." * (N - 3) + "H", 0.0, FLAT, "oscillating", id="oscillating-sporadic"),
    pytest.param("H" * (N - 1) + ".", 0.0, FLAT, "historical", id="historical"),
    pytest.param("H" * (N - 1) + ".", -3.0, SIG, "historical", id="historical-with-trend"),
    pytest.param("." * N, 0.0, FLAT, "no_pattern", id="nothing"),
    pytest.param("H" * (N - 2) + "..", 0.0, FLAT, "no_pattern", id="historical-just-below-90"),
    pytest.param("H.H.H.H.H.H.", 0.0, FLAT, "no_pattern", id="final-not-significant"),
]


@pytest.mark.parametrize(("pattern", "trend_z", "trend_p", "expected"), HOT_CASES)
def test_category_rules_hot_and_mirrored_cold(pattern, trend_z, trend_p, expected):
    """Each rule, and its boundaries, for hot spots and (mirrored) for cold spots."""
    hot = category(pattern, trend_z, trend_p)
    assert hot == (expected if expected == "no_pattern" else f"{expected}_hot")
    cold = category(mirror(pattern), -trend_z, trend_p)
    assert cold == (expected if expected == "no_pattern" else f"{expected}_cold")


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        pytest.param("H" * (N - 1) + "C", "oscillating_cold", id="final-cold-after-hot-years"),
        pytest.param("." * 9 + "H", "new_hot", id="n10-new"),
        pytest.param("." + "H" * 9, "persistent_hot", id="n10-exactly-90"),
        pytest.param(".." + "H" * 8, "consecutive_hot", id="n10-80-percent"),
        pytest.param("H" * 9 + ".", "historical_hot", id="n10-historical"),
        pytest.param("H" * MIN_YEARS, "persistent_hot", id="n6-all"),
        pytest.param("." + "H" * (MIN_YEARS - 1), "consecutive_hot", id="n6-five-of-six"),
        pytest.param("H" * (MIN_YEARS - 1) + ".", "no_pattern", id="n6-no-historical"),
        pytest.param(".." + "H" * 18, "persistent_hot", id="n20-exactly-90"),
        pytest.param("..." + "H" * 17, "consecutive_hot", id="n20-85-percent"),
        pytest.param("H" * 18 + "..", "historical_hot", id="n20-historical-two-off"),
        pytest.param(".C" + "H" * 18, "persistent_hot", id="n20-90-percent-with-a-cold"),
    ],
)
def test_ninety_percent_without_rounding_and_final_side(pattern, expected):
    """'At least 90 %' is 10 k >= 9 n for any length; the final year decides the side."""
    assert category(pattern) == expected


def test_every_category_is_reached_and_labelled():
    cases = [(p.values[0], p.values[1], p.values[2]) for p in HOT_CASES]
    cases += [(mirror(p), -z, q) for p, z, q in cases]
    got = {category(p, z, q) for p, z, q in cases}
    assert got == set(CATEGORIES)
    assert len(CATEGORIES) == 17 and set(LABELS) == set(CATEGORIES)
    assert LABELS["new_hot"] == "New hot spot" and LABELS["no_pattern"] == "No pattern detected"


def reference_category(b: list[int], tz: float, tp: float, ta: float) -> str:
    """The documented rules read literally, for one region, in plain Python."""
    n, final = len(b), b[-1]
    if final == 0:
        for side, name in ((1, "hot"), (-1, "cold")):
            if b.count(side) / n >= 0.9 - 1e-12:
                return f"historical_{name}"
        return "no_pattern"
    name = "hot" if final == 1 else "cold"
    mine, others = b.count(final), b.count(-final)
    trend = tp <= ta  # False for NaN
    if mine / n >= 0.9 - 1e-12:
        if trend and tz * final > 0:
            return f"intensifying_{name}"
        if trend and tz * final < 0:
            return f"diminishing_{name}"
        return f"persistent_{name}"
    if others:
        return f"oscillating_{name}"
    run = 0
    while run < n and b[n - 1 - run] == final:
        run += 1
    if mine > run:
        return f"sporadic_{name}"
    return f"new_{name}" if run == 1 else f"consecutive_{name}"


@pytest.mark.parametrize("n", [6, 10, 12, 20])
def test_vectorised_classifier_equals_the_literal_rules(n):
    """Random bin series (mostly-hot, mostly-cold and mixed) against the one-by-one rules."""
    rng = np.random.default_rng(n)
    rows = 3000
    p_hot = rng.choice([0.05, 0.3, 0.9, 0.97], size=rows)
    p_cold = np.where(p_hot > 0.5, 0.01, rng.choice([0.05, 0.3, 0.9], size=rows))
    u = rng.random((rows, n))
    b = np.where(
        u < p_hot[:, None], 1, np.where(u > 1 - p_cold[:, None] * (1 - p_hot[:, None]), -1, 0)
    )
    quiet = rng.random(rows) < 0.2  # only the last one to three years may be significant
    b[quiet] *= np.arange(n) >= n - rng.integers(1, 4, quiet.sum())[:, None]
    tz = rng.normal(0, 2.5, rows)
    tp = np.where(rng.random(rows) < 0.05, np.nan, rng.choice([0.001, ALPHA, 0.2], size=rows))
    b, tz, tp = np.vstack([b, -b]), np.r_[tz, -tz], np.r_[tp, tp]  # cold as often as hot
    rows *= 2
    ours = classify(b, tz, tp, ALPHA)
    ref = [reference_category(list(b[i]), tz[i], tp[i], ALPHA) for i in range(rows)]
    assert list(ours) == ref
    assert set(ours) <= set(CATEGORIES)
    if n >= 10:
        assert len(set(ours)) == 17


def test_classify_refuses_a_bad_shape():
    with pytest.raises(InvalidParameterError, match="regions x years"):
        classify(np.zeros(5), np.zeros(1), np.zeros(1))


# --- Mann-Kendall --------------------------------------------------------------------


def random_series(seed: int, rows: int = 300, n: int = 12) -> np.ndarray:
    """Series with ties (rounded values), constant rows and missing values."""
    rng = np.random.default_rng(seed)
    trend = rng.normal(0, 0.3, rows)[:, None] * np.arange(n)
    x = trend + rng.normal(0, 1, (rows, n))
    x = np.where(rng.random(rows)[:, None] < 0.5, np.round(x), np.round(x, 1))
    x[:5] = 1.0  # all tied
    x[5:40][rng.random((35, n)) < 0.2] = np.nan
    return x


def test_mann_kendall_equals_pymannkendall():
    x = random_series(1)
    ours = mann_kendall(x)
    for i in range(len(x)):
        ref = pymannkendall.original_test(x[i])
        got = (ours.s[i], ours.var_s[i], ours.z[i], ours.p[i], ours.tau[i])
        np.testing.assert_allclose(
            got, (ref.s, ref.var_s, ref.z, ref.p, ref.Tau), rtol=1e-12, atol=1e-15
        )
        assert ours.n[i] == np.isfinite(x[i]).sum()


def test_mann_kendall_against_kendalltau_on_time():
    """S from scipy's tau-b of (time, x); Var S from its asymptotic p (no continuity)."""
    x = random_series(2)[40:]  # complete series
    ours = mann_kendall(x)
    t = np.arange(x.shape[1])
    n0 = t.size * (t.size - 1) / 2
    for i in range(len(x)):
        tau_b, p = kendalltau(t, x[i], method="asymptotic")
        _, counts = np.unique(x[i], return_counts=True)
        n2 = (counts * (counts - 1) / 2).sum()
        if n2 == n0:  # a constant series: tau-b undefined
            assert ours.s[i] == 0 and ours.p[i] == 1
            continue
        np.testing.assert_allclose(ours.s[i], tau_b * np.sqrt(n0 * (n0 - n2)), atol=1e-9)
        z_plain = ours.s[i] / np.sqrt(ours.var_s[i])
        np.testing.assert_allclose(2 * (1 - _phi(abs(z_plain))), p, rtol=1e-9, atol=1e-15)


def _phi(z: float) -> float:
    from scipy.stats import norm

    return float(norm.cdf(z))


def test_mann_kendall_edges():
    """Monotone series give the extreme S; fewer than two values give NaN."""
    n = 12
    up = np.arange(n, dtype=float)
    res = mann_kendall(np.vstack([up, -up, np.full(n, np.nan), [np.nan] * (n - 1) + [1.0]]))
    assert res.s[0] == n * (n - 1) / 2 and res.s[1] == -res.s[0]
    assert res.p[0] < 1e-4 and res.z[0] > 0 > res.z[1]
    assert np.isnan(res.z[2:]).all() and np.isnan(res.p[2:]).all()
    assert list(res.n) == [n, n, 0, 1]


# --- the analysis --------------------------------------------------------------------


def small_weights(n: int) -> SpatialWeights:
    """A path graph of n regions (generated)."""
    import scipy.sparse as sp

    adj = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1], format="csr")
    return SpatialWeights(
        np.array([f"R{i}" for i in range(n)]), sp.csr_array(adj), WeightsSpec("queen")
    )


def test_refuses_too_few_years_and_unknown_regions():
    w = small_weights(8)
    rng = np.random.default_rng(0)
    short = pd.DataFrame(rng.random((8, MIN_YEARS - 1)), index=w.ids, columns=range(2000, 2005))
    with pytest.raises(InvalidParameterError, match=f"at least {MIN_YEARS} years"):
        emerging_hot_spots(short, w, permutations=9)
    wrong = pd.DataFrame(rng.random((1, 8)), index=["XX999"], columns=range(2000, 2008))
    with pytest.raises(InvalidParameterError, match="XX999"):
        emerging_hot_spots(wrong, w, permutations=9)
    ok = pd.DataFrame(rng.random((8, 8)), index=w.ids, columns=range(2000, 2008))
    with pytest.raises(InvalidParameterError, match="trend_alpha"):
        emerging_hot_spots(ok, w, permutations=9, trend_alpha=1.5)
    with pytest.raises(InvalidParameterError, match="correction"):
        emerging_hot_spots(ok, w, permutations=9, correction="holm")


def test_category_counts_lists_all_17():
    counts = category_counts(pd.Series(["new_hot", "new_hot", "no_pattern"]))
    assert list(counts.index) == list(CATEGORIES)
    assert counts["new_hot"] == 2 and counts["no_pattern"] == 1 and counts.sum() == 3
    with pytest.raises(InvalidParameterError, match="unknown categories"):
        category_counts(pd.Series(["lukewarm"]))


FIRST, LAST = 2010, 2021
SEED = 20240801


@pytest.fixture(scope="module")
def gdp(settings):
    """GDP per head 2010-2021 of the Alpine Space NUTS-3 regions, queen weights."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    rows = table[(table["unit"] == "EUR_HAB") & table["geo"].isin(ids)]
    rows = rows[rows["time"].astype(int).between(FIRST, LAST)]
    panel = rows.pivot(index="geo", columns="time", values="value").astype(float)
    panel.columns = panel.columns.astype(int)
    weights = cached_weights(
        layer.loc[ids][["geometry"]], "queen", settings.cache_dir, layer_key(settings)
    )
    result = emerging_hot_spots(panel, weights, permutations=999, seed=SEED)
    return panel.reindex(ids), weights, result, layer


def test_gdp_every_region_has_one_of_17_categories(gdp):
    panel, weights, result, _ = gdp
    assert list(result.index) == list(weights.ids) and len(result) == len(panel)
    assert result["category"].isin(CATEGORIES).all()
    assert (result["label"] == result["category"].map(LABELS)).all()
    counts = category_counts(result)
    assert counts.sum() == len(weights.ids)
    print(f"\nGDP per head {FIRST}-{LAST}, Alpine Space NUTS-3, queen, 999 permutations, FDR 5 %:")
    print(counts.to_string())
    years = range(FIRST, LAST + 1)
    n_hot = sum((result[f"bin_{y}"] == 1).astype(int) for y in years)
    assert (result["n_hot"] == n_hot).all()


def test_gdp_yearly_z_equal_gi_star_year_by_year(gdp):
    """The one-graph run equals geo.hotspots.gi_star on each year alone (z and bins)."""
    panel, weights, result, _ = gdp
    for year in range(FIRST, LAST + 1):
        alone = gi_star(panel[year], weights, permutations=999, seed=SEED, alpha=ALPHA)
        z = alone.stats["z"]
        np.testing.assert_allclose(result[f"z_{year}"], z, rtol=1e-12, equal_nan=True)
        expected = np.where(alone.significant, np.sign(np.nan_to_num(z)), 0)
        np.testing.assert_array_equal(result[f"bin_{year}"], expected)


@pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected:UserWarning")
def test_gdp_z_of_a_year_equals_esda(gdp):
    panel, _, result, layer = gdp
    year = 2016
    values = panel[year].dropna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = Queen.from_dataframe(layer.loc[values.index], use_index=True)
    ref = esda.G_Local(values.to_numpy(), w, transform="B", star=True, permutations=0).Zs
    np.testing.assert_allclose(result.loc[values.index, f"z_{year}"], ref, rtol=1e-10)


def test_gdp_trend_equals_pymannkendall_on_a_sample(gdp):
    _, _, result, _ = gdp
    z = result[[f"z_{y}" for y in range(FIRST, LAST + 1)]]
    sample = np.random.default_rng(SEED).choice(len(z), size=25, replace=False)
    checked = 0
    for i in sample:
        series = z.iloc[i].to_numpy()
        if np.isfinite(series).sum() < 2:
            assert np.isnan(result["trend_p"].iloc[i])
            continue
        ref = pymannkendall.original_test(series)
        np.testing.assert_allclose(
            result[["trend_z", "trend_p", "trend_tau"]].iloc[i], (ref.z, ref.p, ref.Tau), rtol=1e-12
        )
        assert result["n_years"].iloc[i] == np.isfinite(series).sum()
        checked += 1
    assert checked >= 20


def grid_weights(k: int) -> SpatialWeights:
    """Queen neighbours of a k x k grid of regions R00 ... (generated)."""
    import scipy.sparse as sp

    cell = np.arange(k * k).reshape(k, k)
    pairs = [
        (cell[i, j], cell[i + di, j + dj])
        for i in range(k)
        for j in range(k)
        for di in (-1, 0, 1)
        for dj in (-1, 0, 1)
        if (di or dj) and 0 <= i + di < k and 0 <= j + dj < k
    ]
    rows, cols = np.array(pairs).T
    adj = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(k * k, k * k))
    adj.sort_indices()
    return SpatialWeights(np.array([f"R{i:02d}" for i in range(k * k)]), adj, WeightsSpec("queen"))


def test_generated_grid_end_to_end():
    """A growing hot corner, a cold corner and a corner hot in the last two years only."""
    k, years = 10, list(range(2010, 2022))
    w = grid_weights(k)
    row, col = (a.ravel() for a in np.meshgrid(range(k), range(k), indexing="ij"))
    rng = np.random.default_rng(5)
    values = {}
    for t, year in enumerate(years):
        v = rng.normal(0, 1, k * k)
        v[(row < 3) & (col < 3)] += 2.5 + 0.6 * t
        v[(row >= 7) & (col >= 7)] -= 4
        v[(row < 3) & (col >= 7)] += 6 * (t >= len(years) - 2)
        values[year] = v
    result = emerging_hot_spots(pd.DataFrame(values, index=w.ids), w, permutations=999, seed=1)
    assert result.loc["R11", "category"] == "intensifying_hot"
    assert result.loc["R18", "category"] == "consecutive_hot"
    assert result.loc["R88", "category"].endswith("_cold")
    # the table agrees with itself: trend from its z columns, category from its bins
    z = result[[f"z_{y}" for y in years]].to_numpy()
    b = result[[f"bin_{y}" for y in years]].to_numpy()
    trend = mann_kendall(z)
    np.testing.assert_allclose(result["trend_z"], trend.z, rtol=1e-12)
    ref = [reference_category(list(b[i]), trend.z[i], trend.p[i], ALPHA) for i in range(len(b))]
    assert list(result["category"]) == ref
    assert (result["n_cold"] == (b == -1).sum(axis=1)).all()
