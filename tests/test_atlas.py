"""What the atlas shows, against independent references: the Moran scatterplot against
PySAL esda and libpysal, neighbour lists against libpysal, indicator slices against a pandas
pivot of the store, choropleth classes against mapclassify, palettes against ColorBrewer
(branca), and the result view against the stored analysis."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import esda
import geopandas as gpd
import libpysal
import mapclassify
import numpy as np
import pandas as pd
import pytest
from branca.utilities import color_brewer

from geo.analysis import AnalysisParams
from geo.areas import resolve
from geo.atlas import indicator_slice, moran_scatter, neighbour_lists, result_view
from geo.boundaries import load_boundaries
from geo.errors import InvalidParameterError
from geo.jobs import AnalysisRunner
from geo.settings import Settings
from geo.store import Store
from geo.weights import build_weights
from maps.classify import SCHEMES, classes, palette
from maps.i18n import Text
from maps.scatter import scatter_svg

YEAR = 2018


@pytest.fixture(scope="module")
def alpine(settings: Settings) -> gpd.GeoDataFrame:
    layer = load_boundaries(settings)
    return layer.loc[resolve(settings, layer, "alpine-space", 3)]


@pytest.fixture(scope="module")
def gdp(demo_store: Store, alpine: gpd.GeoDataFrame) -> pd.Series:
    """GDP per inhabitant of one year over the Alpine regions (NaN where missing)."""
    obs = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], [YEAR])
    return obs.set_index("geo")["value"].reindex(alpine.index)


def libpysal_weights(layer: gpd.GeoDataFrame, spec: str) -> libpysal.weights.W:
    if spec == "queen":
        return libpysal.weights.Queen.from_dataframe(layer, use_index=True, silence_warnings=True)
    if spec == "rook":
        return libpysal.weights.Rook.from_dataframe(layer, use_index=True, silence_warnings=True)
    points = layer.to_crs(3035).geometry.centroid  # as geo.weights documents
    return libpysal.weights.KNN.from_dataframe(
        gpd.GeoDataFrame(geometry=points), k=int(spec.split(":")[1]), ids=list(layer.index)
    )


SPECS = ["queen", "rook", "knn:6"]


@pytest.mark.parametrize("spec", SPECS, ids=SPECS)
def test_moran_scatter_slope_is_esdas_moran_i(
    alpine: gpd.GeoDataFrame, gdp: pd.Series, spec: str
) -> None:
    """On the regions with a value: slope = esda's I (row-standardised), lag = libpysal's
    spatial lag of the standardised values, quadrants = the signs of value and lag."""
    valid = alpine.loc[gdp.notna()]
    scatter = moran_scatter(gdp, build_weights(alpine, spec))
    # the graph of every region, restricted to those with a value (as the engine does)
    w = libpysal.weights.w_subset(libpysal_weights(alpine, spec), list(valid.index))
    w.transform = "r"
    y = gdp.loc[valid.index].to_numpy()
    keep = np.array([w.cardinalities[i] > 0 for i in valid.index])
    assert list(scatter.ids) == list(valid.index[keep])
    if keep.all():
        moran = esda.Moran(y, w, transformation="r", permutations=0)
        np.testing.assert_allclose(scatter.slope, moran.I, rtol=1e-10)
    z = (y - y.mean()) / y.std()
    lag = libpysal.weights.lag_spatial(w, z)
    np.testing.assert_allclose(scatter.z, z[keep], rtol=1e-12)
    np.testing.assert_allclose(scatter.lag, lag[keep], rtol=1e-10, atol=1e-12)
    local = esda.Moran_Local(y, w, transformation="r", permutations=0)
    names = {1: "High-High", 2: "Low-High", 3: "Low-Low", 4: "High-Low"}
    assert list(scatter.quadrant) == [names[q] for q in np.asarray(local.q)[keep]]


def test_moran_scatter_leaves_out_missing_values(alpine: gpd.GeoDataFrame, gdp: pd.Series) -> None:
    gaps = gdp.copy()
    dropped = gaps.dropna().index[::10]
    gaps.loc[dropped] = np.nan
    scatter = moran_scatter(gaps, build_weights(alpine, "queen"))
    assert not set(scatter.ids) & set(gaps.index[gaps.isna()])
    assert len(scatter.ids) <= gaps.notna().sum()


@pytest.mark.parametrize("spec", SPECS, ids=SPECS)
def test_neighbour_lists_are_libpysals(alpine: gpd.GeoDataFrame, spec: str) -> None:
    ours = neighbour_lists(build_weights(alpine, spec))
    ref = libpysal_weights(alpine, spec)
    assert set(ours) == set(alpine.index)
    for code in alpine.index:
        assert set(ours[code]) == set(ref.neighbors[code]), code


def test_indicator_slice_equals_a_pivot_of_the_store(
    settings: Settings, demo_store: Store, alpine: gpd.GeoDataFrame
) -> None:
    data = indicator_slice(settings, demo_store, "nama_10r_3gdp", level=3, area="alpine-space")
    obs = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"])
    obs = obs[obs["geo"].isin(alpine.index)]
    ref = obs.pivot(index="geo", columns="time", values="value").reindex(alpine.index)
    assert data.years == sorted(ref.columns)
    pd.testing.assert_frame_equal(
        data.values, ref[data.years], check_names=False, check_column_type=False
    )
    assert list(data.regions.index) == list(alpine.index)
    frame = data.year_frame(YEAR)
    assert frame["value"].isna().sum() == ref[YEAR].isna().sum()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"indicator": "NOPE"}, "valid indicators"),
        ({"level": 2}, "no value at NUTS level 2"),
    ],
    ids=["unknown-indicator", "level-without-values"],
)
def test_indicator_slice_refuses_clearly(
    settings: Settings, demo_store: Store, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        indicator_slice(settings, demo_store, "nama_10r_3gdp", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("scheme", sorted(SCHEMES), ids=sorted(SCHEMES))
@pytest.mark.parametrize("k", [4, 5, 7], ids=["k4", "k5", "k7"])
def test_classes_are_mapclassifys(gdp: pd.Series, scheme: str, k: int) -> None:
    values = gdp.to_numpy()
    ours = classes(values, scheme, k)
    finite = values[np.isfinite(values)]
    ref = getattr(mapclassify, SCHEMES[scheme])(finite, k=k)
    np.testing.assert_allclose(ours.bins, np.unique(ref.bins))
    got = ours.classify(values)
    np.testing.assert_array_equal(got[np.isfinite(values)], ref.yb)
    assert (got[~np.isfinite(values)] == -1).all()
    assert ours.colours == color_brewer("YlGnBu", len(ours.bins))


def test_classes_with_few_distinct_values_are_fewer(gdp: pd.Series) -> None:
    few = np.round(gdp.dropna().to_numpy() / gdp.max())  # 0 or 1 only
    ours = classes(few, "quantiles", 5)
    assert len(ours.bins) <= len(np.unique(few))


@pytest.mark.parametrize("n", range(3, 10))
def test_palette_is_colorbrewer_ylgnbu(n: int) -> None:
    assert palette(n) == color_brewer("YlGnBu", n)
    assert len(set(palette(n))) == n


def test_scatter_svg_draws_every_region(alpine: gpd.GeoDataFrame, gdp: pd.Series) -> None:
    scatter = moran_scatter(gdp, build_weights(alpine, "queen"))
    svg = scatter_svg(scatter, Text("en"))
    root = ET.fromstring(svg)
    circles = root.findall("{http://www.w3.org/2000/svg}circle") or root.findall("circle")
    assert len(circles) == len(scatter.ids)
    assert f"{scatter.slope:.3f}" in root.attrib["aria-label"]
    titles = {c.find("title").text.split(":")[0] for c in circles}  # type: ignore[union-attr]
    assert titles == set(scatter.ids)


def test_result_view_matches_the_stored_analysis(settings: Settings, demo_store: Store) -> None:
    params = AnalysisParams(dataset="nama_10r_3gdp", years=[YEAR - 1, YEAR], correction="none")
    record = AnalysisRunner(settings, demo_store).submit(params, wait=True)
    stored = demo_store.analysis(record.id)
    view = result_view(settings, demo_store, stored, "EUR_HAB", YEAR)
    assert view.years == [YEAR - 1, YEAR]
    assert stored.summary is not None and stored.regions is not None
    for series in stored.summary["series"]:
        np.testing.assert_allclose(
            view.scatters[series["year"]].slope, series["global_moran"]["I"], rtol=1e-9
        )
    rows = stored.regions[stored.regions["year"] == YEAR].set_index("region")
    pd.testing.assert_frame_equal(
        view.year_table(YEAR).drop(columns=["indicator", "year"]),
        rows.drop(columns=["indicator", "year"]).loc[view.regions.index],
        check_names=False,
    )
    assert re.fullmatch(r"[0-9a-f]{16}", stored.id)
