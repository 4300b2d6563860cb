"""Catchments: connected groups of hot regions, checked against independent computations.

References: a breadth-first search written here over the weights graph, the NUTS
attributes of the boundary layer, pandas sums of the stored values and geodesic areas on
the GRS80 ellipsoid (pyproj.Geod).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.catchments import COLUMNS, catchment_labels, catchments
from geo.hotspots import HotSpotResult, gi_star, local_moran
from geo.weights import SpatialWeights, build_weights

GEOD = Geod(ellps="GRS80")

# (dataset, indicator, year, method, weights, alpha, correction, inference)
SETTINGS = [
    ("nama_10r_3gdp", "EUR_HAB", 2018, "gi_star", "queen", 0.05, "none", "permutation"),
    ("nama_10r_3gdp", "EUR_HAB", 2018, "gi_star", "queen", 0.10, "none", "permutation"),
    ("nama_10r_3gdp", "EUR_HAB", 2018, "gi_star", "queen", 0.05, "fdr", "normal"),
    ("nama_10r_3gdp", "EUR_HAB", 2018, "gi_star", "knn:4", 0.10, "none", "permutation"),
    ("nama_10r_3gdp", "EUR_HAB", 2016, "local_moran", "distance:80", 0.10, "none", "permutation"),
    ("population_density", "PER_KM2", 2018, "gi_star", "queen", 0.10, "none", "permutation"),
    ("population_density", "PER_KM2", 2018, "local_moran", "knn:4", 0.10, "none", "permutation"),
]
IDS = [f"{d[:7]}-{y}-{m}-{w}-a{a:g}-{c}-{i[:4]}" for d, _, y, m, w, a, c, i in SETTINGS]


@dataclass
class Run:
    values: pd.Series
    layer: gpd.GeoDataFrame
    weights: SpatialWeights
    result: HotSpotResult
    table: gpd.GeoDataFrame


@pytest.fixture(scope="module")
def alpine(settings) -> gpd.GeoDataFrame:
    layer = load_boundaries(settings)
    return layer.loc[resolve(settings, layer, "alpine-space", 3)]


@pytest.fixture(scope="module", params=SETTINGS, ids=IDS)
def run(request, alpine, demo_store) -> Run:
    """Hot spots and catchments of one real series in the Alpine Space."""
    dataset, indicator, year, method, spec, alpha, correction, inference = request.param
    ids = list(alpine.index)
    obs = demo_store.observations(dataset, [indicator], [year], geos=ids)
    values = obs.set_index("geo")["value"].reindex(ids)
    weights = build_weights(alpine[["geometry"]], spec)
    kw = {"permutations": 999, "seed": 4242, "alpha": alpha, "correction": correction}
    if method == "gi_star":
        result = gi_star(values, weights, inference=inference, **kw)
    else:
        result = local_moran(values, weights, **kw)
    table = catchments(result, weights, alpine[["CNTR_CODE", "geometry"]])
    return Run(values, alpine, weights, result, table)


def neighbours(weights: SpatialWeights) -> dict[str, set[str]]:
    """Undirected neighbour sets (knn links are taken in both directions)."""
    coo = weights.adjacency.tocoo()
    out: dict[str, set[str]] = {rid: set() for rid in weights.ids}
    for i, j in zip(coo.row, coo.col, strict=True):
        out[weights.ids[i]].add(weights.ids[j])
        out[weights.ids[j]].add(weights.ids[i])
    return out


def bfs_component(start: str, allowed: set[str], nbrs: dict[str, set[str]]) -> set[str]:
    """The regions reachable from ``start`` through ``allowed`` regions."""
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in nbrs[queue.popleft()] & allowed:
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def members(table: gpd.GeoDataFrame) -> list[list[str]]:
    return [m.split(",") for m in table["members"]]


def test_setting_yields_catchments(run):
    """Each chosen setting has hot regions and at least one catchment."""
    assert run.result.hot.any()
    assert len(run.table) >= 1
    assert list(run.table.columns) == [*COLUMNS, "geometry"]


def test_some_setting_has_several_catchments(alpine, demo_store):
    """At least one chosen setting yields two catchments (so non-adjacency is exercised)."""
    counts = []
    for dataset, indicator, year, method, spec, alpha, correction, inference in SETTINGS:
        ids = list(alpine.index)
        obs = demo_store.observations(dataset, [indicator], [year], geos=ids)
        values = obs.set_index("geo")["value"].reindex(ids)
        weights = build_weights(alpine[["geometry"]], spec)
        kw = {"permutations": 999, "seed": 4242, "alpha": alpha, "correction": correction}
        if method == "gi_star":
            result = gi_star(values, weights, inference=inference, **kw)
        else:
            result = local_moran(values, weights, **kw)
        counts.append(len(np.unique(catchment_labels(result, weights))) - 1)
    assert max(counts) >= 2


def test_members_are_hot_and_partition_the_hot_regions(run):
    """Every member is hot, every hot region is in exactly one catchment."""
    hot = set(run.result.ids[run.result.hot])
    groups = members(run.table)
    flat = [rid for group in groups for rid in group]
    assert len(flat) == len(set(flat))
    assert set(flat) == hot
    assert list(run.table["n_regions"]) == [len(g) for g in groups]


def test_members_are_connected_and_catchments_are_not_adjacent(run):
    """BFS from any member over hot regions reaches exactly the catchment's members."""
    nbrs = neighbours(run.weights)
    hot = set(run.result.ids[run.result.hot])
    groups = [set(g) for g in members(run.table)]
    for group in groups:
        assert bfs_component(next(iter(group)), hot, nbrs) == group
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            touching = {n for rid in groups[a] for n in nbrs[rid]}
            assert not touching & groups[b]


def test_labels_match_members(run):
    """catchment_labels marks exactly each catchment's members, '' elsewhere."""
    labels = pd.Series(catchment_labels(run.result, run.weights), index=run.result.ids)
    for cid, group in zip(run.table["catchment"], members(run.table), strict=True):
        assert sorted(labels.index[labels == cid]) == sorted(group)
    assert (labels[~run.result.hot] == "").all()


def test_numbering_by_size_then_first_code(run):
    """C1, C2, ... by decreasing size, ties broken by the smallest member code."""
    table = run.table
    assert list(table["catchment"]) == [f"C{i}" for i in range(1, len(table) + 1)]
    keys = [(-len(g), min(g)) for g in members(run.table)]
    assert keys == sorted(keys)


def test_countries_are_the_members_countries(run):
    """countries = the members' CNTR_CODE from the boundary layer; cross_border if several."""
    cntr = run.layer["CNTR_CODE"]
    for row, group in zip(run.table.itertuples(), members(run.table), strict=True):
        expected = sorted(set(cntr[group]))
        assert row.countries == ",".join(expected)
        assert row.cross_border == (len(expected) > 1)
        assert row.members == ",".join(sorted(group))


def geodesic_km2(geom) -> float:
    area, _ = GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e6


def test_area_is_the_geodesic_area(run):
    """area_km2 equals the GRS80 geodesic area of the members (within 0.5 %)."""
    for row, group in zip(run.table.itertuples(), members(run.table), strict=True):
        summed = sum(geodesic_km2(g) for g in run.layer.geometry[group])
        dissolved = geodesic_km2(shapely.union_all(run.layer.geometry[group].values))
        assert row.area_km2 == pytest.approx(summed, rel=5e-3)
        assert row.area_km2 == pytest.approx(dissolved, rel=5e-3)
        assert geodesic_km2(row.geometry) == pytest.approx(dissolved, rel=1e-6)


def test_values_are_pandas_aggregates_of_the_members(run):
    """value_total/mean/min/max are pandas aggregates of the stored values; mean_z of z."""
    for row, group in zip(run.table.itertuples(), members(run.table), strict=True):
        vals = run.values[group]
        assert vals.notna().all()
        assert row.value_total == pytest.approx(vals.sum(), rel=1e-12)
        assert row.value_mean == pytest.approx(vals.mean(), rel=1e-12)
        assert row.value_min == vals.min() and row.value_max == vals.max()
        if run.result.method == "gi_star":
            z = pd.Series(run.result.stats["z"], index=run.result.ids)[group]
            assert row.mean_z == pytest.approx(z.mean(), rel=1e-12)
            assert (z > 0).all()
        else:
            assert np.isnan(row.mean_z)


def test_no_hot_regions_no_catchments(alpine):
    """Without hot regions the table is empty but keeps its columns and CRS."""
    weights = build_weights(alpine[["geometry"]], "queen")
    ids = weights.ids
    cold = gi_star(
        pd.Series(np.arange(len(ids), dtype=float), index=ids),
        weights,
        permutations=9,
        seed=1,
        correction="bonferroni",
        alpha=1e-6,
    )
    assert not cold.hot.any()
    assert (catchment_labels(cold, weights) == "").all()
    table = catchments(cold, weights, alpine[["CNTR_CODE", "geometry"]])
    assert len(table) == 0
    assert list(table.columns) == [*COLUMNS, "geometry"]
    assert table.crs == "EPSG:4326"
