"""The atlas's computations (geo.atlas, maps.classify, maps.scatter) against independent references.

References: esda ``Moran`` and ``Moran_Local`` and libpysal's ``lag_spatial`` on weights built
independently with libpysal's legacy ``Queen``, ``Rook`` and ``KNN`` (subset with ``w_subset``
to the regions with a value); mapclassify's ``Quantiles``, ``FisherJenks`` and
``EqualInterval``; branca's ``color_brewer``; pandas pivots of the demo store's observations;
``xml.etree`` for the scatterplot's SVG. Data: the Alpine Space NUTS-3 regions of the mirror
(``load_boundaries``) and the demo store's GDP per inhabitant (``nama_10r_3gdp``, EUR_HAB).
"""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import esda
import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import pytest
from branca.utilities import color_brewer
from libpysal.weights import KNN, Queen, Rook, W, lag_spatial, w_subset

from geo.analysis import AnalysisParams
from geo.areas import resolve
from geo.atlas import (
    MoranScatter,
    indicator_slice,
    moran_scatter,
    neighbour_lists,
    result_view,
)
from geo.boundaries import load_boundaries
from geo.errors import InvalidParameterError
from geo.jobs import AnalysisRunner
from geo.weights import SpatialWeights, build_weights
from maps.classify import classes, palette
from maps.i18n import Text
from maps.scatter import scatter_svg

DATASET, INDICATOR, AREA = "nama_10r_3gdp", "EUR_HAB", "alpine-space"
SPECS = ["queen", "rook", "knn:6"]
RTOL, ATOL = 1e-10, 1e-12
# esda's Moran_Local.q: 1 HH, 2 LH, 3 LL, 4 HL
ESDA_QUADRANTS = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
MAPCLASSIFY = {
    "quantiles": mapclassify.Quantiles,
    "fisher_jenks": mapclassify.FisherJenks,
    "equal_interval": mapclassify.EqualInterval,
}

pytestmark = [
    pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected:UserWarning"),
    pytest.mark.filterwarnings("ignore:The alternative hypothesis:DeprecationWarning"),
]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def layer(settings) -> gpd.GeoDataFrame:
    return load_boundaries(settings)


@pytest.fixture(scope="module")
def alpine_ids(settings, layer) -> list[str]:
    return resolve(settings, layer, AREA, 3)


@pytest.fixture(scope="module")
def alpine(layer, alpine_ids) -> gpd.GeoDataFrame:
    """The Alpine Space NUTS-3 regions (EPSG:4326), indexed by NUTS id."""
    return layer.loc[alpine_ids]


def gdp(store, ids: list[str], year: int) -> pd.Series:
    """GDP per inhabitant of one year from the demo store, NaN where a region has none."""
    obs = store.observations(DATASET, [INDICATOR], [year])
    return obs.set_index("geo")["value"].reindex(ids)


def reference_w(gdf: gpd.GeoDataFrame, spec: str) -> W:
    """libpysal's legacy weights (not libpysal.graph, which geo.weights uses)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # islands, disconnected components
        if spec == "queen":
            return Queen.from_dataframe(gdf, use_index=True)
        if spec == "rook":
            return Rook.from_dataframe(gdf, use_index=True)
        k = int(spec.split(":")[1])
        return KNN.from_dataframe(gdf.to_crs("EPSG:3035"), k=k, use_index=True)


@pytest.fixture(scope="module", params=SPECS, ids=SPECS)
def weights(request, alpine) -> tuple[SpatialWeights, W]:
    """Our weights of the Alpine Space regions and libpysal's, built independently."""
    return build_weights(alpine, request.param), reference_w(alpine, request.param)


@dataclass(frozen=True)
class Reference:
    """esda's and libpysal's view of one series, keyed by region id."""

    ids: list[str]  # regions with a value and at least one neighbour
    missing: list[str]  # regions without a value
    islands: list[str]  # regions with a value but no neighbour with one
    z: pd.Series
    lag: pd.Series
    moran_i: float
    quadrant: pd.Series  # esda's q as names
    z_positive: pd.Series  # the signs that decide the quadrant, from esda's own z and lag
    lag_positive: pd.Series


def reference(values: pd.Series, w_full: W) -> Reference:
    """Moran's I, standardised values, lags and quadrants from esda on the subset W."""
    finite = values.reindex(w_full.id_order)
    keep = [i for i in w_full.id_order if np.isfinite(finite[i])]
    missing = [i for i in w_full.id_order if not np.isfinite(finite[i])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = w_subset(w_full, keep, silence_warnings=True)
        w.transform = "r"
        order = list(w.id_order)
        y = values.loc[order].to_numpy(dtype=float)
        moran = esda.Moran(y, w, transformation="r", permutations=0)
        local = esda.Moran_Local(y, w, transformation="r", permutations=0)
    z = (y - y.mean()) / y.std(ddof=0)
    lag = lag_spatial(w, z)
    local_lag = lag_spatial(local.w, local.z)
    islands = [i for i in order if w.cardinalities[i] == 0]
    has = [i for i in order if w.cardinalities[i] > 0]
    return Reference(
        ids=has,
        missing=missing,
        islands=islands,
        z=pd.Series(z, index=order).loc[has],
        lag=pd.Series(lag, index=order).loc[has],
        moran_i=float(moran.I),
        quadrant=pd.Series([ESDA_QUADRANTS[int(q)] for q in local.q], index=order).loc[has],
        z_positive=pd.Series(local.z > 0, index=order).loc[has],
        lag_positive=pd.Series(local_lag > 0, index=order).loc[has],
    )


def keyed(scatter: MoranScatter, name: str) -> pd.Series:
    return pd.Series(getattr(scatter, name), index=[str(i) for i in scatter.ids])


# --------------------------------------------------------------------------- moran_scatter


def knocked_out_hub(store, ids: list[str], w_full: W) -> pd.Series:
    """2018's values with the one of the best connected region set to NaN."""
    values = gdp(store, ids, 2018)
    hub = max(
        (i for i in w_full.id_order if np.isfinite(values[i])),
        key=lambda i: w_full.cardinalities[i],
    )
    return values.mask(values.index == hub)


SERIES = {
    "2018": lambda store, ids, w: gdp(store, ids, 2018),
    "2019": lambda store, ids, w: gdp(store, ids, 2019),  # 27 regions without a value
    "2018-hub-nan": knocked_out_hub,
}


@pytest.fixture(scope="module", params=list(SERIES), ids=list(SERIES))
def series_case(request, demo_store, alpine_ids, weights):
    """(our scatter, esda's reference, values) of one series on one kind of weights."""
    ours_w, ref_w = weights
    values = SERIES[request.param](demo_store, alpine_ids, ref_w)
    return moran_scatter(values, ours_w), reference(values, ref_w), values


def test_moran_scatter_slope_is_esda_moran_i(series_case):
    scatter, ref, _ = series_case
    assert ref.islands == []  # these series have no isolates (see the knn:6 2021 cases)
    np.testing.assert_allclose(scatter.slope, ref.moran_i, rtol=RTOL, atol=ATOL)


def test_moran_scatter_z_and_lag_are_libpysal_lag_of_standardised_values(series_case):
    scatter, ref, _ = series_case
    assert sorted(map(str, scatter.ids)) == sorted(ref.ids)
    ids = [str(i) for i in scatter.ids]
    np.testing.assert_allclose(keyed(scatter, "z"), ref.z.loc[ids], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(keyed(scatter, "lag"), ref.lag.loc[ids], rtol=RTOL, atol=ATOL)


def test_moran_scatter_quadrants_follow_esda(series_case):
    """Quadrants are esda's q where the signs of z and lag are decided (neither is zero)."""
    scatter, ref, _ = series_case
    ours = keyed(scatter, "quadrant")
    ids = list(ours.index)
    expected_from_signs = np.where(
        ref.z_positive.loc[ids],
        np.where(ref.lag_positive.loc[ids], "High-High", "High-Low"),
        np.where(ref.lag_positive.loc[ids], "Low-High", "Low-Low"),
    )
    decided = (ref.z.loc[ids] != 0) & (ref.lag.loc[ids] != 0)
    assert decided.sum() > len(ids) // 2
    assert list(ours[decided.to_numpy()]) == list(ref.quadrant.loc[ids][decided.to_numpy()])
    assert list(ours[decided.to_numpy()]) == list(expected_from_signs[decided.to_numpy()])
    assert set(ours) <= set(ESDA_QUADRANTS.values())


def test_moran_scatter_leaves_out_regions_without_a_value(series_case):
    scatter, ref, values = series_case
    missing = set(values.index[values.isna()])
    assert missing and missing == set(ref.missing)
    assert not missing & set(map(str, scatter.ids))
    assert len(scatter.ids) == len(values) - len(missing)


@pytest.fixture(scope="module")
def sparse_year_knn(demo_store, alpine, alpine_ids):
    """knn:6 with 2021's values: few regions have one, so some keep no neighbour."""
    values = gdp(demo_store, alpine_ids, 2021)
    ref = reference(values, reference_w(alpine, "knn:6"))
    return moran_scatter(values, build_weights(alpine, "knn:6")), ref


def test_moran_scatter_leaves_out_isolates(sparse_year_knn):
    scatter, ref = sparse_year_knn
    assert ref.islands, "2021 on knn:6 should leave some region without a neighbour"
    assert sorted(map(str, scatter.ids)) == sorted(ref.ids)
    assert not set(ref.islands) & set(map(str, scatter.ids))
    ids = [str(i) for i in scatter.ids]
    np.testing.assert_allclose(keyed(scatter, "lag"), ref.lag.loc[ids], rtol=RTOL, atol=ATOL)


def test_moran_scatter_slope_is_esda_moran_i_with_isolates(sparse_year_knn):
    scatter, ref = sparse_year_knn
    np.testing.assert_allclose(scatter.slope, ref.moran_i, rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------- neighbour_lists


def test_neighbour_lists_equal_libpysal(weights, alpine_ids):
    ours_w, ref_w = weights
    lists = neighbour_lists(ours_w)
    assert sorted(lists) == sorted(alpine_ids)
    assert {r: set(n) for r, n in lists.items()} == {
        r: set(map(str, n)) for r, n in ref_w.neighbors.items()
    }
    assert all(len(n) == len(set(n)) and r not in n for r, n in lists.items())


# --------------------------------------------------------------------------- indicator_slice


@pytest.fixture(scope="module")
def area_obs(demo_store, alpine_ids) -> pd.DataFrame:
    """Every EUR_HAB observation of the Alpine Space regions, filtered with pandas."""
    obs = demo_store.observations(DATASET, [INDICATOR])
    return obs[obs["geo"].isin(alpine_ids)]


@pytest.fixture(scope="module", params=[None, INDICATOR], ids=["default-indicator", "named"])
def gdp_slice(request, settings, demo_store):
    return indicator_slice(
        settings, demo_store, DATASET, indicator=request.param, level=3, area=AREA
    )


def test_indicator_slice_values_equal_pandas_pivot(gdp_slice, area_obs, alpine_ids):
    expected = (
        area_obs.set_index(["geo", "time"])["value"].unstack("time").reindex(alpine_ids)
    ).sort_index(axis=1)
    assert gdp_slice.years == [int(y) for y in expected.columns]
    assert list(gdp_slice.values.index) == alpine_ids
    assert list(gdp_slice.values.columns) == gdp_slice.years
    for year in gdp_slice.years:
        np.testing.assert_array_equal(
            gdp_slice.values[year].to_numpy(dtype=float), expected[year].to_numpy(dtype=float)
        )


def test_indicator_slice_flags_equal_pandas_pivot(gdp_slice, area_obs, alpine_ids):
    expected = (
        area_obs.assign(flag=area_obs["flag"].fillna(""))
        .set_index(["geo", "time"])["flag"]
        .unstack("time")
        .reindex(alpine_ids)
        .fillna("")
    )
    for year in gdp_slice.years:
        assert list(gdp_slice.flags[year]) == list(expected[year])


def test_indicator_slice_missing_regions_are_nan(gdp_slice, area_obs, alpine_ids):
    with_value = area_obs[area_obs["value"].notna()].groupby("time")["geo"].agg(set)
    gaps = 0
    for year in gdp_slice.years:
        expected = set(alpine_ids) - with_value[year]
        assert set(gdp_slice.values.index[gdp_slice.values[year].isna()]) == expected
        gaps += len(expected)
    assert gaps > 0  # the table does have gaps (LI000, 2019-2021)


def test_indicator_slice_year_frame_and_regions(gdp_slice, demo_store, alpine, alpine_ids):
    frame = gdp_slice.year_frame(2018)
    assert list(frame.index) == alpine_ids
    assert frame.geometry.geom_equals(alpine.geometry).all()
    np.testing.assert_array_equal(
        frame["value"].to_numpy(dtype=float), gdp(demo_store, alpine_ids, 2018).to_numpy()
    )


@pytest.mark.parametrize("dataset", ["nama_10r_3gdp", "demo_r_pjanaggr3", "population_density"])
def test_indicator_slice_unknown_indicator_names_the_valid_ones(settings, demo_store, dataset):
    codes = [i.code for i in demo_store.dataset(dataset).indicators]
    unknown = "NOT_" + "_".join(codes)
    with pytest.raises(InvalidParameterError) as err:
        indicator_slice(settings, demo_store, dataset, indicator=unknown)
    assert unknown in str(err.value)
    assert all(code in str(err.value) for code in codes)


@pytest.mark.parametrize(
    ("area", "level"),
    [(AREA, 2), ("austria", 2), ("liechtenstein", 3)],
    ids=["alpine-space-nuts2", "austria-nuts2", "liechtenstein-nuts3-without-values"],
)
def test_indicator_slice_without_values_raises(settings, demo_store, layer, area, level):
    ids = resolve(settings, layer, area, level)
    obs = demo_store.observations(DATASET, [INDICATOR])
    assert ids and obs[obs["geo"].isin(ids)]["value"].notna().sum() == 0
    with pytest.raises(InvalidParameterError, match=f"level {level}"):
        indicator_slice(settings, demo_store, DATASET, level=level, area=area)


# --------------------------------------------------------------------------- classify


@pytest.fixture(scope="module", params=[2018, 2019], ids=["2018", "2019"])
def gdp_values(request, demo_store, alpine_ids) -> np.ndarray:
    """A year's GDP per inhabitant of every Alpine Space region, NaN where there is none."""
    values = gdp(demo_store, alpine_ids, request.param).to_numpy(dtype=float)
    assert np.isnan(values).any()
    return values


@pytest.mark.parametrize("k", [3, 5, 9], ids=["k3", "k5", "k9"])
@pytest.mark.parametrize("scheme", list(MAPCLASSIFY))
def test_classes_equal_mapclassify(gdp_values, scheme, k):
    finite = gdp_values[np.isfinite(gdp_values)]
    ref = MAPCLASSIFY[scheme](finite, k=k)
    ours = classes(gdp_values, scheme, k)
    np.testing.assert_allclose(ours.bins, ref.bins, rtol=1e-12)
    got = ours.classify(gdp_values)
    np.testing.assert_array_equal(got[np.isfinite(gdp_values)], ref.yb)
    np.testing.assert_array_equal(got[np.isnan(gdp_values)], -1)
    assert ours.colours == color_brewer("YlGnBu", len(ref.bins))
    assert ours.minimum == np.nanmin(gdp_values)


@pytest.mark.parametrize("n", range(3, 10), ids=[f"n{n}" for n in range(3, 10)])
def test_palette_is_color_brewer_ylgnbu(n):
    colours = palette(n)
    assert colours == color_brewer("YlGnBu", n)
    assert len(set(colours)) == n


@pytest.fixture(scope="module")
def few_distinct(demo_store, alpine_ids) -> np.ndarray:
    """Three of 2018's real values, repeated: six values, three distinct."""
    values = gdp(demo_store, alpine_ids, 2018).dropna().to_numpy()
    picked = np.unique(values)[[0, len(np.unique(values)) // 2, -1]]
    return np.repeat(picked, [3, 1, 2])


@pytest.mark.parametrize("k", [5, 9], ids=["k5", "k9"])
@pytest.mark.parametrize("scheme", list(MAPCLASSIFY))
def test_classes_reduce_k_to_the_distinct_values(few_distinct, scheme, k):
    distinct = len(np.unique(few_distinct))
    assert k > distinct
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mapclassify's own "Setting k to ..." warning
        ours = classes(few_distinct, scheme, k)
        ref = MAPCLASSIFY[scheme](few_distinct, k=distinct)
    assert len(ours.bins) <= distinct
    np.testing.assert_allclose(ours.bins, ref.bins, rtol=1e-12)
    np.testing.assert_array_equal(ours.classify(few_distinct), ref.yb)


CONSTANT_CASES = [
    pytest.param("quantiles", id="quantiles"),
    pytest.param("fisher_jenks", id="fisher_jenks"),
    pytest.param("equal_interval", id="equal_interval"),
]


@pytest.mark.parametrize("scheme", CONSTANT_CASES)
def test_classes_of_one_distinct_value_are_one_class(settings, demo_store, scheme):
    """A one-region area (AT111) in one year: k=5 is reduced to one class, no error."""
    one = indicator_slice(settings, demo_store, DATASET, area="AT111").values[2018]
    values = np.repeat(one.to_numpy(dtype=float), 3)
    assert len(np.unique(values)) == 1
    ours = classes(values, scheme, 5)
    np.testing.assert_array_equal(ours.bins, [values.max()])
    np.testing.assert_array_equal(ours.classify(values), 0)
    if scheme != "equal_interval":
        np.testing.assert_array_equal(ours.bins, MAPCLASSIFY[scheme](values, k=1).bins)


# --------------------------------------------------------------------------- scatter SVG


def test_scatter_svg_has_a_circle_per_region_and_the_slope(weights, demo_store, alpine_ids):
    ours_w, ref_w = weights
    values = gdp(demo_store, alpine_ids, 2018)
    scatter = moran_scatter(values, ours_w)
    ref = reference(values, ref_w)
    svg = ET.fromstring(scatter_svg(scatter, Text("en")))
    circles = svg.findall(".//circle")
    assert len(circles) == len(scatter.ids) == len(ref.ids)
    titles = {c.findtext("title").split(":")[0] for c in circles}
    assert titles == set(ref.ids)
    assert f"{ref.moran_i:.3f}" in svg.get("aria-label")


# --------------------------------------------------------------------------- result_view


@pytest.fixture(scope="module")
def analysis(settings, demo_store):
    runner = AnalysisRunner(settings, demo_store)
    try:
        record = runner.submit(
            AnalysisParams(dataset=DATASET, years=[2017, 2018], correction="none"), wait=True
        )
    finally:
        runner.close()
    return demo_store.analysis(record.id)


@pytest.fixture(scope="module")
def view(settings, demo_store, analysis):
    return result_view(settings, demo_store, analysis, INDICATOR, 2018)


def test_result_view_years(view):
    assert view.years == [2017, 2018]
    assert sorted(view.scatters) == [2017, 2018]


@pytest.mark.parametrize("year", [2017, 2018], ids=["2017", "2018"])
def test_result_view_slopes_are_the_stored_global_moran(view, analysis, year):
    stored = next(
        s for s in analysis.summary["series"] if s["indicator"] == INDICATOR and s["year"] == year
    )
    np.testing.assert_allclose(
        view.scatters[year].slope, stored["global_moran"]["I"], rtol=RTOL, atol=ATOL
    )


def test_result_view_slopes_are_esda_moran_i(view, analysis, demo_store, alpine, alpine_ids):
    assert analysis.params["weights"] == "queen"
    ref_w = reference_w(alpine, "queen")
    for year in view.years:
        ref = reference(gdp(demo_store, alpine_ids, year), ref_w)
        np.testing.assert_allclose(view.scatters[year].slope, ref.moran_i, rtol=RTOL, atol=ATOL)


def test_result_view_year_table_is_the_records_rows(view, analysis):
    rows = analysis.regions
    expected = rows[(rows["indicator"] == INDICATOR) & (rows["year"] == 2018)]
    expected = expected.set_index("region").sort_index()
    got = view.year_table(2018)
    assert list(got.index) == list(expected.index)
    pd.testing.assert_frame_equal(got, expected, check_names=False)


def test_result_view_neighbours_are_libpysal_queen(view, layer):
    ref_w = reference_w(layer.loc[list(view.regions.index)], "queen")
    assert {r: set(n) for r, n in view.neighbours.items()} == {
        r: set(map(str, n)) for r, n in ref_w.neighbors.items()
    }
