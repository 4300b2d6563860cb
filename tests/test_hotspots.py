"""Gi*, Local Moran and global Moran against PySAL esda, on real data and libpysal's columbus.

References: esda (``G_Local``, ``Moran_Local``, ``Moran``) on weights built independently
with libpysal's legacy ``Queen.from_dataframe``; scipy for the multiple-testing corrections
and the normal p-values. Data come from the project's loaders and the demo store only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import esda
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from libpysal import examples
from libpysal.weights import Queen, W
from scipy import stats

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.catchments import catchment_labels
from geo.hotspots import (
    CONFIDENCE_LEVELS,
    GLOBAL_PERMUTATIONS,
    LISA_CODES,
    HotSpotResult,
    gi_star,
    local_moran,
    significant,
)
from geo.weights import SpatialWeights, build_weights

P_FULL = 9999  # permutations for the p-value parity tests
P_FAST = 999
SEED = 20240607
RTOL, ATOL = 1e-10, 1e-12
# esda's quadrant codes (1 HH, 2 LH, 3 LL, 4 HL) -> GeoDa's (1 HH, 2 LL, 3 LH, 4 HL)
ESDA_Q_TO_GEODA = {1: 1, 2: 3, 3: 2, 4: 4}


# esda warns that its default alternative hypothesis will change; its folded p_sim is
# what the references below expect.
pytestmark = [
    pytest.mark.filterwarnings("ignore:The alternative hypothesis:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected:UserWarning"),
]

# --------------------------------------------------------------------------- helpers


def queen_w(gdf: gpd.GeoDataFrame) -> W:
    """esda's weights, built by libpysal's legacy contiguity code (not libpysal.graph)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands and "not fully connected" warnings
        w = Queen.from_dataframe(gdf, use_index=True)
    return w


def gdp_series(demo_store, ids: list[str], year: int) -> pd.Series:
    """GDP per inhabitant of one year from the demo store, NaN where the region has none."""
    obs = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], [year], geos=ids)
    return obs.set_index("geo")["value"].reindex(ids)


def assert_pvalues_agree(ours: np.ndarray, esda_p_sim: np.ndarray, permutations: int) -> None:
    """Two independent permutation estimates of one two-sided p-value agree statistically.

    esda's ``p_sim`` is folded one-sided, so the two-sided reference is ``min(1, 2 p_sim)``.
    Each two-sided estimate is twice a binomial proportion of ``P`` draws with success
    probability ``p1 = q / 2`` (q: mean of the two), so their difference has standard
    deviation ``2 sqrt(2 p1 (1 - p1) / P)``; we allow 6 of them plus the discreteness.
    """
    ref = np.minimum(1.0, 2.0 * esda_p_sim)
    assert np.all(ours <= 1.0) and np.all(ours > 0.0)
    q = (ours + ref) / 2.0
    p1 = q / 2.0
    tol = 6.0 * 2.0 * np.sqrt(2.0 * p1 * (1.0 - p1) / permutations) + 4.0 / (permutations + 1)
    diff = np.abs(ours - ref)
    worst = int(np.argmax(diff - tol))
    assert np.all(diff <= tol), (worst, ours[worst], ref[worst], tol[worst])
    if len(ours) > 2:
        assert np.corrcoef(ours, ref)[0, 1] > 0.99


def geos_isolates(gdf: gpd.GeoDataFrame) -> set[str]:
    """Regions whose polygon touches no other polygon, found with a GEOS STRtree."""
    geoms = gdf.geometry.values
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    linked = set(left[left != right])
    return {rid for i, rid in enumerate(gdf.index) if i not in linked}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def alpine(settings) -> gpd.GeoDataFrame:
    """Alpine Space NUTS-3 regions (NUTS 2021, 1:3M), indexed by NUTS id."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    return layer.loc[ids]


@pytest.fixture(scope="module")
def alpine_queen(alpine) -> SpatialWeights:
    return build_weights(alpine[["geometry"]], "queen")


@pytest.fixture(scope="module")
def columbus() -> gpd.GeoDataFrame:
    """libpysal's bundled columbus example (no download), indexed by POLYID."""
    path = examples.get_path("columbus.shp")
    gdf = gpd.read_file(path)
    gdf.index = gdf["POLYID"].astype(str)
    return gdf


@dataclass
class Case:
    """One series with our results and esda's on the same valid regions."""

    values: pd.Series
    weights: SpatialWeights
    gdf: gpd.GeoDataFrame
    valid: np.ndarray
    esda_w: W
    gi: HotSpotResult
    lisa: HotSpotResult
    esda_g: esda.G_Local
    esda_lisa: esda.Moran_Local
    esda_moran: esda.Moran


CASES = ["alpine-gdp-2016", "alpine-gdp-2018", "columbus-CRIME", "columbus-HOVAL"]


@pytest.fixture(scope="module", params=CASES, ids=CASES)
def case(request, alpine, alpine_queen, columbus, demo_store) -> Case:
    """Our Gi* and Local Moran with 9,999 permutations, and esda's, on one series."""
    source, name = request.param.split("-", 1)
    if source == "alpine":
        gdf, weights = alpine, alpine_queen
        values = gdp_series(demo_store, list(alpine.index), int(name.split("-")[1]))
    else:
        gdf = columbus
        weights = build_weights(columbus[["geometry"]], "queen")
        values = columbus[name].astype(float)
    valid = values.notna().to_numpy()
    y = values.to_numpy()[valid]
    w = queen_w(gdf[valid])
    kw = {"permutations": P_FULL, "seed": SEED, "correction": "none"}
    np.random.seed(3)  # esda.Moran draws from numpy's global generator
    return Case(
        values=values,
        weights=weights,
        gdf=gdf,
        valid=valid,
        esda_w=w,
        gi=gi_star(values, weights, **kw),
        lisa=local_moran(values, weights, **kw),
        esda_g=esda.G_Local(y, w, transform="B", star=True, permutations=P_FULL, seed=1, n_jobs=1),
        esda_lisa=esda.Moran_Local(y, w, transformation="r", permutations=P_FULL, seed=2, n_jobs=1),
        esda_moran=esda.Moran(y, w, transformation="r", permutations=P_FULL),
    )


# --------------------------------------------------------------------------- esda parity


def test_real_data_has_a_missing_region(alpine, demo_store):
    """The Alpine GDP series has LI000 without a value (precondition of the missing tests)."""
    for year in (2016, 2018):
        values = gdp_series(demo_store, list(alpine.index), year)
        assert "LI000" in values.index
        assert np.isnan(values["LI000"])


def test_esda_weights_match_ours(case):
    """libpysal's legacy Queen on the valid regions equals our valid sub-graph."""
    ours = case.weights.subset(case.valid)
    assert list(case.esda_w.id_order) == list(ours.ids)
    np.testing.assert_array_equal(case.esda_w.sparse.toarray() != 0, ours.adjacency.toarray() != 0)


def test_status_ok_is_every_valid_region(case):
    """Queen contiguity on these areas has no isolates: every region with a value is ok."""
    assert not case.esda_w.islands
    np.testing.assert_array_equal(case.gi.status == "ok", case.valid)
    np.testing.assert_array_equal(case.lisa.status == "ok", case.valid)


def test_gi_star_z_equals_esda(case):
    """Gi* z equals esda G_Local(transform='B', star=True).Zs."""
    ok = case.gi.status == "ok"
    np.testing.assert_allclose(case.gi.stats["z"][ok], case.esda_g.Zs, rtol=RTOL, atol=ATOL)


def test_gi_star_p_norm_is_twice_esda(case):
    """Gi* normal p-value is two-sided: twice esda's one-sided p_norm."""
    ok = case.gi.status == "ok"
    np.testing.assert_allclose(case.gi.stats["p_norm"][ok], 2 * case.esda_g.p_norm, atol=1e-10)
    np.testing.assert_allclose(
        case.gi.stats["p_norm"][ok], 2 * stats.norm.sf(np.abs(case.esda_g.Zs)), atol=1e-10
    )


@pytest.mark.slow
def test_gi_star_p_sim_agrees_with_esda(case):
    """Gi* pseudo p-values (9,999 permutations) agree with 2 x esda's folded p_sim."""
    ok = case.gi.status == "ok"
    assert_pvalues_agree(case.gi.p_sim[ok], case.esda_g.p_sim, P_FULL)


def test_local_moran_i_equals_esda(case):
    """Local Moran I equals esda Moran_Local(transformation='r').Is."""
    ok = case.lisa.status == "ok"
    np.testing.assert_allclose(case.lisa.stats["I"][ok], case.esda_lisa.Is, rtol=RTOL, atol=ATOL)


@pytest.mark.slow
def test_local_moran_p_sim_agrees_with_esda(case):
    """LISA pseudo p-values (9,999 permutations) agree with 2 x esda's folded p_sim."""
    ok = case.lisa.status == "ok"
    assert_pvalues_agree(case.lisa.p_sim[ok], case.esda_lisa.p_sim, P_FULL)


def test_local_moran_quadrants_equal_esda(case):
    """Significant LISA clusters carry esda's quadrant (q), recoded to GeoDa's codes."""
    ok = case.lisa.status == "ok"
    sig = case.lisa.significant[ok]
    expected = np.where(sig, [ESDA_Q_TO_GEODA[int(q)] for q in case.esda_lisa.q], 0)
    np.testing.assert_array_equal(case.lisa.stats["cluster"][ok], expected)


def test_global_moran_equals_esda(case):
    """Global Moran's I, E[I], z and p under randomisation equal esda Moran; p_sim agrees.

    The global test uses at most GLOBAL_PERMUTATIONS shuffles (a single test needs no more).
    """
    for result in (case.gi, case.lisa):
        gm = result.global_moran
        np.testing.assert_allclose(gm.I, case.esda_moran.I, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(gm.EI, case.esda_moran.EI, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(gm.z_norm, case.esda_moran.z_rand, rtol=1e-9)
        np.testing.assert_allclose(gm.p_norm, case.esda_moran.p_rand, rtol=1e-9)
        assert gm.permutations == min(P_FULL, GLOBAL_PERMUTATIONS)
        assert_pvalues_agree(
            np.array([gm.p_sim]), np.array([case.esda_moran.p_sim]), gm.permutations
        )


def test_gi_bins_follow_arcgis_thresholds(case):
    """Gi_Bin is sign(z) x the number of confidence levels (90/95/99 %) that are met."""
    p = case.gi.p_sim
    expected = np.sign(np.nan_to_num(case.gi.stats["z"])).astype(int) * sum(
        (np.nan_to_num(p, nan=2.0) <= level).astype(int) for level in (0.10, 0.05, 0.01)
    )
    np.testing.assert_array_equal(case.gi.stats["bin"], expected)


# --------------------------------------------------------------------------- isolates

ISOLATE_AREAS = ["AT,MT", "DE,DK"]


@pytest.fixture(scope="module", params=ISOLATE_AREAS, ids=["AT-MT", "DE-DK"])
def island_area(request, settings, demo_store):
    """A real area containing island regions, with its GDP per head 2018."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, request.param, 3)
    gdf = layer.loc[ids]
    weights = build_weights(gdf[["geometry"]], "queen")
    values = gdp_series(demo_store, ids, 2018)
    return gdf, weights, values


def test_area_has_isolates_confirmed_by_geos(island_area):
    """build_weights finds isolates, exactly those whose polygon touches no other (GEOS)."""
    gdf, weights, values = island_area
    assert len(weights.isolates) >= 1
    assert set(weights.isolates) == geos_isolates(gdf)
    assert values[weights.isolates].notna().all()  # they have data: not 'missing'


def test_isolates_are_flagged_and_never_hot(island_area):
    """Isolates: status 'isolate', NaN z and p, bin 0, LISA 6, not significant, no catchment."""
    gdf, weights, values = island_area
    iso = np.isin(weights.ids, weights.isolates)
    kw = {"permutations": P_FAST, "seed": SEED, "alpha": 0.5, "correction": "none"}
    for inference in ("permutation", "normal"):
        gi = gi_star(values, weights, inference=inference, **kw)
        np.testing.assert_array_equal(gi.status == "isolate", iso)
        assert sorted(gi.isolates) == sorted(weights.isolates)
        assert np.isnan(gi.stats["z"][iso]).all()
        assert np.isnan(gi.stats["p_norm"][iso]).all() and np.isnan(gi.p_sim[iso]).all()
        assert (gi.stats["bin"][iso] == 0).all()
        assert not gi.significant[iso].any() and not gi.hot[iso].any()
        assert gi.hot[~iso].any()  # the test is not vacuous at alpha 0.5
        assert (catchment_labels(gi, weights)[iso] == "").all()
    lisa = local_moran(values, weights, **kw)
    np.testing.assert_array_equal(lisa.status == "isolate", iso)
    assert np.isnan(lisa.p_sim[iso]).all()
    assert (lisa.stats["cluster"][iso] == LISA_CODES["neighbourless"]).all()
    assert not lisa.significant[iso].any() and not lisa.hot[iso].any()
    assert (catchment_labels(lisa, weights)[iso] == "").all()


def test_isolates_count_in_mean_and_variance_like_esda(island_area):
    """Non-isolate Gi* z, LISA I and Moran's I equal esda run on all regions, islands included.

    esda keeps islands in y (mean, variance, sum) and gives them an empty row of weights;
    dropping the islands instead changes the statistics, which the last check confirms.
    """
    gdf, weights, values = island_area
    ok_mask = ~np.isin(weights.ids, weights.isolates)
    y = values.to_numpy()
    w = queen_w(gdf)
    assert sorted(w.islands) == sorted(weights.isolates)
    gi = gi_star(values, weights, permutations=0, seed=SEED, inference="normal")
    lisa = local_moran(values, weights, permutations=P_FAST, seed=SEED)
    ref_g = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    ref_l = esda.Moran_Local(y, w, transformation="r", permutations=0)
    ref_m = esda.Moran(y, w, transformation="r", permutations=0)
    np.testing.assert_allclose(gi.stats["z"][ok_mask], ref_g.Zs[ok_mask], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(lisa.stats["I"], ref_l.Is, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(lisa.global_moran.I, ref_m.I, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gi.global_moran.I, ref_m.I, rtol=RTOL, atol=ATOL)
    # Sensitivity: without the islands esda's z-scores differ from ours.
    ref_without = esda.G_Local(
        y[ok_mask], queen_w(gdf[ok_mask]), transform="B", star=True, permutations=0
    )
    assert np.max(np.abs(ref_without.Zs - gi.stats["z"][ok_mask])) > 1e-6


# --------------------------------------------------------------------------- missing values


@pytest.fixture(scope="module")
def gappy(alpine, alpine_queen, demo_store) -> pd.Series:
    """GDP 2018 with its real gap (LI000) plus 20 more regions blanked at random."""
    values = gdp_series(demo_store, list(alpine.index), 2018)
    rng = np.random.default_rng(7)
    blank = rng.choice(np.flatnonzero(values.notna().to_numpy()), size=20, replace=False)
    values.iloc[blank] = np.nan
    return values


def test_missing_regions_are_excluded(gappy, alpine_queen):
    """NaN regions: status 'missing', listed in excluded, NaN stats, LISA 5, never hot."""
    missing = gappy.isna().to_numpy()
    assert missing.sum() == 21
    gi = gi_star(gappy, alpine_queen, permutations=P_FAST, seed=SEED, correction="none")
    lisa = local_moran(gappy, alpine_queen, permutations=P_FAST, seed=SEED, correction="none")
    for result in (gi, lisa):
        np.testing.assert_array_equal(result.status == "missing", missing)
        assert result.excluded == list(gappy.index[missing])
        assert "LI000" in result.excluded
        assert np.isnan(result.p_sim[missing]).all()
        assert not result.significant[missing].any() and not result.hot[missing].any()
        assert (result.n_neighbors[missing] == -1).all()
    assert np.isnan(gi.stats["z"][missing]).all() and (gi.stats["bin"][missing] == 0).all()
    assert (lisa.stats["cluster"][missing] == LISA_CODES["undefined"]).all()


def test_missing_regions_statistics_equal_esda_on_subset(gappy, alpine, alpine_queen):
    """The other regions' Gi* z, LISA I and Moran's I equal esda on the subset without NaN."""
    weights = alpine_queen
    valid = gappy.notna().to_numpy()
    sub = alpine[valid]
    w = queen_w(sub)
    y = gappy.to_numpy()[valid]
    gi = gi_star(gappy, weights, permutations=0, inference="normal", seed=SEED)
    lisa = local_moran(gappy, weights, permutations=P_FAST, seed=SEED)
    ref_g = esda.G_Local(y, w, transform="B", star=True, permutations=0)
    ref_l = esda.Moran_Local(y, w, transformation="r", permutations=0)
    ref_m = esda.Moran(y, w, transformation="r", permutations=0)
    isolated = np.isin(sub.index, w.islands)  # blanking can leave a region without neighbours
    np.testing.assert_array_equal(gi.status[valid] == "isolate", isolated)
    np.testing.assert_allclose(
        gi.stats["z"][valid][~isolated], ref_g.Zs[~isolated], rtol=RTOL, atol=ATOL
    )
    np.testing.assert_allclose(lisa.stats["I"][valid], ref_l.Is, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(lisa.global_moran.I, ref_m.I, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- multiple testing


def bh_reference(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini-Hochberg with scipy on the non-NaN p-values."""
    out = np.zeros(p.shape, dtype=bool)
    tested = ~np.isnan(p)
    if tested.any():
        out[tested] = stats.false_discovery_control(p[tested]) <= alpha
    return out


def bonferroni_reference(p: np.ndarray, alpha: float) -> np.ndarray:
    tested = ~np.isnan(p)
    out = np.zeros(p.shape, dtype=bool)
    out[tested] = p[tested] * tested.sum() <= alpha
    return out


@pytest.fixture(scope="module")
def real_p(alpine, alpine_queen, demo_store) -> dict[str, np.ndarray]:
    """Real pseudo and normal p-values: Gi* and LISA on GDP 2016 and 2018 (NaN for LI000)."""
    out = {}
    for year in (2016, 2018):
        values = gdp_series(demo_store, list(alpine.index), year)
        gi = gi_star(values, alpine_queen, permutations=P_FAST, seed=SEED)
        lisa = local_moran(values, alpine_queen, permutations=P_FAST, seed=SEED)
        out[f"gi-sim-{year}"] = gi.p_sim
        out[f"gi-norm-{year}"] = gi.stats["p_norm"]
        out[f"lisa-sim-{year}"] = lisa.p_sim
    return out


ALPHAS = [0.01, 0.05, 0.10, 0.25]


@pytest.mark.parametrize("alpha", ALPHAS, ids=[f"alpha{a:g}" for a in ALPHAS])
def test_fdr_and_bonferroni_on_real_p_values(real_p, alpha):
    """fdr equals scipy's Benjamini-Hochberg; bonferroni equals p * m <= alpha."""
    for name, p in real_p.items():
        assert np.isnan(p).sum() == 1, name
        np.testing.assert_array_equal(significant(p, alpha, "fdr"), bh_reference(p, alpha), name)
        np.testing.assert_array_equal(
            significant(p, alpha, "bonferroni"), bonferroni_reference(p, alpha), name
        )
        np.testing.assert_array_equal(
            significant(p, alpha, "none"), np.nan_to_num(p, nan=2.0) <= alpha, name
        )


RANDOM_KINDS = ["uniform", "grid-ties", "small-p", "all-nan", "single"]


@pytest.mark.parametrize("kind", RANDOM_KINDS, ids=RANDOM_KINDS)
@pytest.mark.parametrize("alpha", ALPHAS, ids=[f"alpha{a:g}" for a in ALPHAS])
def test_fdr_and_bonferroni_on_random_arrays(kind, alpha):
    """Random arrays with ties and NaN: fdr equals scipy BH, bonferroni equals p * m <= alpha."""
    rng = np.random.default_rng([RANDOM_KINDS.index(kind), ALPHAS.index(alpha)])
    for _ in range(200):
        m = int(rng.integers(1, 400))
        if kind == "uniform":
            p = rng.random(m)
        elif kind == "grid-ties":  # permutation-like values with many ties
            p = rng.integers(1, 1001, m) / 1000.0
        elif kind == "small-p":
            p = rng.random(m) ** 6
        elif kind == "all-nan":
            p = np.full(m, np.nan)
        else:
            p = rng.random(1) / 10
        p[rng.random(p.shape[0]) < 0.15] = np.nan
        np.testing.assert_array_equal(significant(p, alpha, "fdr"), bh_reference(p, alpha))
        np.testing.assert_array_equal(
            significant(p, alpha, "bonferroni"), bonferroni_reference(p, alpha)
        )
        np.testing.assert_array_equal(
            significant(p, alpha, "none"), np.nan_to_num(p, nan=2.0) <= alpha
        )


@pytest.mark.parametrize("method", ["gi_star", "local_moran"], ids=["gi", "lisa"])
def test_corrections_are_nested(alpine, alpine_queen, demo_store, method):
    """Same seed: bonferroni hot spots are fdr hot spots, which are uncorrected hot spots."""
    values = gdp_series(demo_store, list(alpine.index), 2018)
    func = gi_star if method == "gi_star" else local_moran
    res = {
        c: func(values, alpine_queen, permutations=P_FAST, seed=SEED, alpha=0.1, correction=c)
        for c in ("none", "fdr", "bonferroni")
    }
    np.testing.assert_array_equal(res["none"].p_sim, res["fdr"].p_sim)
    for strict, loose in (("bonferroni", "fdr"), ("fdr", "none")):
        assert not (res[strict].hot & ~res[loose].hot).any()
        assert not (res[strict].significant & ~res[loose].significant).any()
    assert res["none"].hot.any()
    if method == "gi_star":
        for strict, loose in (("bonferroni", "fdr"), ("fdr", "none")):
            assert (np.abs(res[strict].stats["bin"]) <= np.abs(res[loose].stats["bin"])).all()


def adjusted(p: np.ndarray, correction: str) -> np.ndarray:
    """Adjusted p-values with scipy (NaN stays NaN)."""
    out = np.full(p.shape, np.nan)
    tested = ~np.isnan(p)
    if correction == "fdr":
        out[tested] = stats.false_discovery_control(p[tested])
    elif correction == "bonferroni":
        out[tested] = np.minimum(1.0, p[tested] * tested.sum())
    else:
        out[tested] = p[tested]
    return out


BIN_CASES = [
    (inf, corr, year)
    for inf in ("permutation", "normal")
    for corr in ("none", "fdr", "bonferroni")
    for year in (2016, 2018)
]


@pytest.mark.parametrize(
    ("inference", "correction", "year"),
    BIN_CASES,
    ids=[f"{i}-{c}-{y}" for i, c, y in BIN_CASES],
)
def test_gi_bin_matches_arcgis_levels(
    alpine, alpine_queen, demo_store, inference, correction, year
):
    """Gi_Bin: +-3/2/1 where the corrected p (scipy) is <= 0.01/0.05/0.10, sign of z (scipy)."""
    values = gdp_series(demo_store, list(alpine.index), year)
    res = gi_star(
        values,
        alpine_queen,
        permutations=P_FAST,
        seed=SEED,
        correction=correction,
        inference=inference,
    )
    ok = res.status == "ok"
    z = res.stats["z"]
    # The normal p-value recomputed with scipy from z, and the pseudo p-value as stored.
    p_norm = np.where(ok, 2 * stats.norm.sf(np.abs(z)), np.nan)
    np.testing.assert_allclose(res.stats["p_norm"][ok], p_norm[ok], rtol=1e-12, atol=1e-15)
    p = res.p_sim if inference == "permutation" else p_norm
    padj = np.nan_to_num(adjusted(p, correction), nan=2.0)
    levels = sum((padj <= a).astype(int) for a in sorted(CONFIDENCE_LEVELS, reverse=True))
    expected = np.where(ok, np.sign(np.nan_to_num(z)).astype(int) * levels, 0)
    np.testing.assert_array_equal(res.stats["bin"], expected)
    hot = np.where(ok, (padj <= res.alpha) & (np.nan_to_num(z) > 0), False)
    np.testing.assert_array_equal(res.hot, hot)


@pytest.mark.filterwarnings("ignore:invalid value encountered in divide:RuntimeWarning")
def test_two_sided_p_never_exceeds_one_even_when_z_is_zero(alpine, alpine_queen, demo_store):
    """A region at exactly the mean (z_i = 0) has I_i = 0 in every permutation, so p = 1.

    Values are the ordinal ranks of GDP 2018 (271 regions: the mean 136 is a rank). The
    reference p-value applies our two-sided formula to esda's simulated local Is.
    """
    gdp = gdp_series(demo_store, list(alpine.index), 2018)
    valid = gdp.notna().to_numpy()
    ranks = pd.Series(np.nan, index=gdp.index)
    ranks[valid] = stats.rankdata(gdp[valid], method="ordinal")
    assert valid.sum() % 2 == 1
    centre = np.flatnonzero(ranks.to_numpy() == np.nanmean(ranks.to_numpy()))
    assert len(centre) == 1
    for seed in (SEED, SEED + 1):
        lisa = local_moran(ranks, alpine_queen, permutations=P_FAST, seed=seed)
        assert np.nanmax(lisa.p_sim) <= 1.0
        assert lisa.stats["I"][centre[0]] == 0.0
        ref = esda.Moran_Local(
            ranks[valid].to_numpy(),
            queen_w(alpine[valid]),
            transformation="r",
            permutations=P_FAST,
            seed=seed,
            n_jobs=1,
        )
        sims = ref.rlisas
        obs = ref.Is[:, None]
        extreme = np.minimum((sims >= obs).sum(1), (sims <= obs).sum(1))
        p_ref = np.minimum(1.0, 2.0 * (extreme + 1.0) / (P_FAST + 1.0))
        k = int(np.flatnonzero(ranks[valid].to_numpy() == np.nanmean(ranks.to_numpy()))[0])
        assert p_ref[k] == 1.0
        assert lisa.p_sim[centre[0]] == p_ref[k]
        assert lisa.stats["cluster"][centre[0]] == 0
        gi = gi_star(ranks, alpine_queen, permutations=P_FAST, seed=seed, correction="none")
        assert np.nanmax(gi.p_sim) <= 1.0 and np.nanmax(gi.stats["p_norm"]) <= 1.0


# --------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("method", ["gi_star", "local_moran"], ids=["gi", "lisa"])
def test_same_seed_same_numbers_other_seed_other_numbers(alpine, alpine_queen, demo_store, method):
    """Same seed: identical arrays; another seed: different pseudo p-values."""
    values = gdp_series(demo_store, list(alpine.index), 2018)
    func = gi_star if method == "gi_star" else local_moran
    a = func(values, alpine_queen, permutations=P_FAST, seed=11)
    b = func(values, alpine_queen, permutations=P_FAST, seed=11)
    c = func(values, alpine_queen, permutations=P_FAST, seed=12)
    assert a.seed == b.seed == 11 and c.seed == 12
    assert np.array_equal(a.p_sim, b.p_sim, equal_nan=True)
    assert np.array_equal(a.significant, b.significant)
    assert a.global_moran.p_sim == b.global_moran.p_sim
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert not np.array_equal(a.p_sim, c.p_sim, equal_nan=True)


def test_unseeded_runs_record_their_seed(alpine, alpine_queen, demo_store):
    """Without a seed a fresh one is drawn and recorded; rerunning with it reproduces."""
    values = gdp_series(demo_store, list(alpine.index), 2018)
    a = gi_star(values, alpine_queen, permutations=P_FAST)
    b = gi_star(values, alpine_queen, permutations=P_FAST, seed=a.seed)
    assert np.array_equal(a.p_sim, b.p_sim, equal_nan=True)
