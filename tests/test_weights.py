"""Spatial weights against independent computations on the Alpine Space NUTS-3 regions.

References: GEOS predicates through a shapely STRtree for contiguity, scipy's cKDTree on
EPSG:3035 centroids (projected here with pyproj) for knn and distance bands.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from scipy.spatial import cKDTree

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.errors import InvalidParameterError
from geo.weights import SpatialWeights, WeightsSpec, build_weights


@pytest.fixture(scope="module")
def alpine(settings) -> gpd.GeoDataFrame:
    """Alpine Space NUTS-3 regions (NUTS 2021, 1:3M), indexed by NUTS id."""
    layer = load_boundaries(settings)
    return layer.loc[resolve(settings, layer, "alpine-space", 3)]


@pytest.fixture(scope="module")
def geos_pairs(alpine) -> dict[str, set[tuple[str, str]]]:
    """Ordered neighbour pairs from GEOS.

    queen: the polygons share at least one point; rook: their boundaries share a piece of
    positive length.
    """
    geoms = alpine.geometry.values
    ids = alpine.index.to_numpy()
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    keep = left != right
    left, right = left[keep], right[keep]
    shared = shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    length = shapely.length(shared)
    return {
        "queen": {(ids[i], ids[j]) for i, j in zip(left, right, strict=True)},
        "rook": {(ids[i], ids[j]) for i, j, n in zip(left, right, length, strict=True) if n > 0},
    }


@pytest.fixture(scope="module")
def centroids(alpine) -> np.ndarray:
    """Centroids in EPSG:3035 metres: polygons projected with pyproj, then GEOS centroids."""
    to_laea = Transformer.from_crs("EPSG:4326", "EPSG:3035", always_xy=True)
    projected = shapely.transform(
        alpine.geometry.values, lambda xy: np.column_stack(to_laea.transform(xy[:, 0], xy[:, 1]))
    )
    points = shapely.centroid(projected)
    return np.column_stack([shapely.get_x(points), shapely.get_y(points)])


def pairs(weights: SpatialWeights) -> set[tuple[str, str]]:
    coo = weights.adjacency.tocoo()
    return {(weights.ids[i], weights.ids[j]) for i, j in zip(coo.row, coo.col, strict=True)}


def test_alpine_space_regions(alpine):
    """The area has the 272 NUTS-3 regions of its NUTS-2 codes, all in the 7 Alpine countries."""
    assert len(alpine) == 272
    assert set(alpine["CNTR_CODE"]) == {"AT", "CH", "DE", "FR", "IT", "LI", "SI"}
    assert (alpine["LEVL_CODE"] == 3).all()


@pytest.mark.parametrize("kind", ["queen", "rook"], ids=["queen", "rook"])
def test_contiguity_equals_geos(alpine, geos_pairs, kind):
    """Queen and rook adjacency equal the GEOS shares-a-point / shares-a-segment relations."""
    weights = build_weights(alpine[["geometry"]], kind)
    assert list(weights.ids) == list(alpine.index)
    assert pairs(weights) == geos_pairs[kind]
    assert (weights.adjacency != weights.adjacency.T).nnz == 0
    assert weights.adjacency.diagonal().sum() == 0
    assert set(np.unique(weights.adjacency.data)) == {1.0}
    assert weights.spec == WeightsSpec(kind)


def test_queen_is_rook_plus_corner_neighbours(alpine, geos_pairs):
    """Rook pairs are queen pairs; the difference is the GEOS pairs that meet only at points."""
    queen = pairs(build_weights(alpine[["geometry"]], "queen"))
    rook = pairs(build_weights(alpine[["geometry"]], "rook"))
    assert rook <= queen
    assert queen - rook == geos_pairs["queen"] - geos_pairs["rook"]


BORDERS = [
    ("AT", "DE"),
    ("CH", "IT"),
    ("FR", "IT"),
    ("AT", "IT"),
    ("CH", "DE"),
    ("CH", "FR"),
    ("DE", "FR"),
    ("AT", "CH"),
    ("IT", "SI"),
    ("AT", "SI"),
    ("AT", "LI"),
    ("CH", "LI"),
]


@pytest.mark.parametrize("kind", ["queen", "rook"], ids=["queen", "rook"])
@pytest.mark.parametrize("border", BORDERS, ids=[f"{a}-{b}" for a, b in BORDERS])
def test_contiguity_crosses_national_borders(alpine, geos_pairs, kind, border):
    """Regions on both sides of a national land border are neighbours (as GEOS also says)."""
    weights = build_weights(alpine[["geometry"]], kind)
    country = alpine["CNTR_CODE"].to_dict()
    ours = {(country[i], country[j]) for i, j in pairs(weights)}
    ref = {(country[i], country[j]) for i, j in geos_pairs[kind]}
    assert border in ours and border[::-1] in ours
    assert border in ref


KS = [1, 4, 6, 10]


@pytest.mark.parametrize("k", KS, ids=[f"knn{k}" for k in KS])
def test_knn_equals_kdtree(alpine, centroids, k):
    """knn:K: exactly K neighbours each, the K nearest EPSG:3035 centroids (cKDTree)."""
    weights = build_weights(alpine[["geometry"]], f"knn:{k}")
    assert (weights.cardinalities == k).all()
    assert weights.adjacency.diagonal().sum() == 0
    dist, idx = cKDTree(centroids).query(centroids, k=k + 2)
    assert (idx[:, 0] == np.arange(len(alpine))).all()
    assert (dist[:, k] < dist[:, k + 1]).all()  # no ties at the K-th neighbour
    for i in range(len(alpine)):
        assert set(weights.adjacency[[i]].indices) == set(idx[i, 1 : k + 1])
    assert str(weights.spec) == f"knn:{k}"


KMS = [30, 50, 80.5, 150]


@pytest.mark.parametrize("km", KMS, ids=[f"{km:g}km" for km in KMS])
def test_distance_band_equals_kdtree(alpine, centroids, km):
    """distance:KM links exactly the centroid pairs at most KM apart (cKDTree.query_pairs)."""
    weights = build_weights(alpine[["geometry"]], f"distance:{km:g}")
    ref = cKDTree(centroids).query_pairs(km * 1000.0, output_type="ndarray")
    coo = weights.adjacency.tocoo()
    ours = {(min(i, j), max(i, j)) for i, j in zip(coo.row, coo.col, strict=True)}
    assert ours == set(map(tuple, ref.tolist()))
    assert (weights.adjacency != weights.adjacency.T).nnz == 0
    # Isolates are the regions farther than KM from every other centroid.
    nearest, _ = cKDTree(centroids).query(centroids, k=2)
    far = alpine.index[nearest[:, 1] > km * 1000.0]
    assert set(weights.isolates) == set(far)


def test_distance_band_isolates_exist_for_small_bands(alpine, centroids):
    """A 30 km band leaves regions without neighbours (checked against the cKDTree)."""
    nearest, _ = cKDTree(centroids).query(centroids, k=2)
    weights = build_weights(alpine[["geometry"]], "distance:30")
    assert len(weights.isolates) == int((nearest[:, 1] > 30_000).sum()) > 0


def test_subset_is_the_induced_subgraph(alpine, geos_pairs):
    """subset(mask) keeps exactly the GEOS queen pairs among the kept regions."""
    weights = build_weights(alpine[["geometry"]], "queen")
    keep = np.array([not rid.startswith(("CH", "LI")) for rid in alpine.index])
    sub = weights.subset(keep)
    kept = set(alpine.index[keep])
    assert list(sub.ids) == list(alpine.index[keep])
    assert pairs(sub) == {(a, b) for a, b in geos_pairs["queen"] if a in kept and b in kept}


VALID_SPECS = [
    ("queen", "queen"),
    (" Queen ", "queen"),
    ("ROOK", "rook"),
    ("knn:6", "knn:6"),
    ("distance:50", "distance:50"),
    ("distance:12.5", "distance:12.5"),
]


@pytest.mark.parametrize(("spec", "canonical"), VALID_SPECS, ids=[s for s, _ in VALID_SPECS])
def test_valid_specs_parse(spec, canonical):
    """Valid specs parse (case and blanks ignored) and print in canonical form."""
    assert str(WeightsSpec.parse(spec)) == canonical


BAD_SPECS = ["hex", "knn:0", "distance:-5", "distance:0", "knn:", "knn:-1", "", "queen:2"]
OPTIONS = ("queen", "rook", "knn:K", "distance:KM")


@pytest.mark.parametrize("spec", BAD_SPECS, ids=[repr(s) for s in BAD_SPECS])
def test_bad_specs_raise_with_the_valid_options(alpine, spec):
    """Bad specs raise InvalidParameterError whose message names every valid option."""
    with pytest.raises(InvalidParameterError) as err:
        WeightsSpec.parse(spec)
    for option in OPTIONS:
        assert option in str(err.value), (spec, str(err.value))
    with pytest.raises(InvalidParameterError):
        build_weights(alpine[["geometry"]].iloc[:5], spec)


def test_knn_needs_fewer_neighbours_than_regions(alpine):
    """knn:K on K or fewer regions is rejected with InvalidParameterError."""
    five = alpine[["geometry"]].iloc[:5]
    assert (build_weights(five, "knn:4").cardinalities == 4).all()
    with pytest.raises(InvalidParameterError, match="knn:5"):
        build_weights(five, "knn:5")
