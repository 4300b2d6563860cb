"""Vector tiles: decoded by GDAL's MVT driver, checked against the real NUTS regions.

References independent of ``geo.tiles``: tile bounds from the slippy-map formulas
(longitude/latitude of the tile corners, projected with pyproj), the regions projected by
geopandas, and GDAL's MVT driver (through pyogrio) to decode the tiles. The map drawn from
the tiles is tested in a real browser in ``test_tiles_map.py``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from fastapi.testclient import TestClient
from pyproj import Transformer

from geo.boundaries import regions
from geo.collections import nuts_collection
from geo.errors import InvalidParameterError
from geo.mvt import Feature, encode_tile
from geo.settings import Settings
from geo.store import Store
from geo.tiles import MAX_ZOOM, TileCache, check_tile, tile_bounds

MVT = "application/vnd.mapbox-vector-tile"
LONLAT_TO_MERCATOR = Transformer.from_crs(4326, 3857, always_xy=True)
BUFFER_SHARE = 64 / 4096  # the documented buffer: 64 of 4096 grid units on every side


def slippy_tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    """Column and row (row 0 in the north) of the tile holding a point: OSM's formulas."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def slippy_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """EPSG:3857 bounds of a tile from its corners' longitude and latitude (pyproj)."""
    n = 2**z

    def lon(i: int) -> float:
        return i / n * 360 - 180

    def lat(j: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * j / n))))

    (x0, x1), (y0, y1) = LONLAT_TO_MERCATOR.transform([lon(x), lon(x + 1)], [lat(y + 1), lat(y)])
    return x0, y0, x1, y1


def decode(tmp_path: Path, data: bytes, z: int, x: int, y: int, **layer: Any) -> gpd.GeoDataFrame:
    """Read a tile with GDAL's MVT driver, unclipped, georeferenced by its z/x/y."""
    path = tmp_path / "tiles" / str(z) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no metadata.json beside the tile
        return pyogrio.read_dataframe(path, X=x, Y=y, Z=z, CLIP="NO", **layer)


@pytest.fixture(scope="module")
def nuts3(settings: Settings) -> gpd.GeoDataFrame:
    """The real NUTS-3 regions in EPSG:3857, projected by geopandas."""
    return regions(settings, 3).to_crs(3857)


@pytest.fixture(scope="module")
def austria(settings: Settings) -> shapely.Point:
    """A point inside Austria, from the real level-0 boundary."""
    return regions(settings, 0).loc["AT"].geometry.representative_point()


def tile_url(collection: str, z: int, x: int, y: int) -> str:
    """OGC order: tileMatrix / tileRow / tileCol = z / y / x."""
    return f"/ogc/collections/{collection}/tiles/WebMercatorQuad/{z}/{y}/{x}"


def expected_ids(nuts3: gpd.GeoDataFrame, z: int, x: int, y: int) -> set[str]:
    """Regions intersecting the tile, less those smaller than one square pixel."""
    bounds = slippy_bounds(z, x, y)
    hit = nuts3[nuts3.intersects(shapely.box(*bounds))]
    pixel = (bounds[2] - bounds[0]) / 256
    return set(hit.index[hit.area >= pixel * pixel])


# --- tile addressing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("z", "x", "y"),
    [(0, 0, 0), (1, 1, 0), (5, 17, 11), (9, 277, 178), (14, 8800, 5700), (24, 0, 2**24 - 1)],
    ids=["world", "z1-north-east", "z5", "z9", "z14", "z24-south-west"],
)
def test_tile_bounds_match_the_slippy_map_formulas(z: int, x: int, y: int) -> None:
    np.testing.assert_allclose(tile_bounds(z, x, y), slippy_bounds(z, x, y), rtol=0, atol=1e-6)


def test_row_zero_is_the_north_and_the_url_is_z_row_col(
    client: TestClient, austria: shapely.Point, tmp_path: Path
) -> None:
    """The tile holding Austria is found at .../{z}/{row}/{col}, not at .../{z}/{col}/{row}."""
    z = 6
    x, y = slippy_tile(austria.x, austria.y, z)
    assert tile_bounds(z, x, y)[3] > tile_bounds(z, x, y + 1)[3]  # rows grow southwards
    right = client.get(tile_url("nuts-2021-level-0", z, x, y))
    swapped = client.get(f"/ogc/collections/nuts-2021-level-0/tiles/WebMercatorQuad/{z}/{x}/{y}")
    assert "AT" in set(decode(tmp_path, right.content, z, x, y)["id"])
    assert swapped.status_code == 204 or "AT" not in set(
        decode(tmp_path / "swapped", swapped.content, z, y, x)["id"]
    )


@pytest.mark.parametrize(
    ("z", "x", "y", "bad"),
    [
        (-1, 0, 0, -1),
        (MAX_ZOOM + 1, 0, 0, MAX_ZOOM + 1),
        (3, 8, 0, 8),
        (3, 0, 8, 8),
        (3, -1, 0, -1),
        (3, 0, -1, -1),
    ],
    ids=["zoom-negative", "zoom-too-deep", "col-past-east", "row-past-south", "col-neg", "row-neg"],
)
def test_tiles_outside_the_matrix_are_refused(
    client: TestClient, z: int, x: int, y: int, bad: int
) -> None:
    with pytest.raises(InvalidParameterError):
        check_tile(z, x, y)
    resp = client.get(tile_url("nuts-2021-level-3", z, x, y))
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "invalid-parameter"
    assert resp.json()["detail"].endswith(f"not {bad}")


def test_unknown_collection_is_404(client: TestClient) -> None:
    for url in (
        tile_url("nuts-1999-level-3", 5, 17, 11),
        "/ogc/collections/no-such-thing/tiles/WebMercatorQuad",
        "/ogc/collections/no-such-thing/tiles",
    ):
        resp = client.get(url)
        assert resp.status_code == 404, url
        assert resp.json()["code"] == "unknown-collection"


# --- content, decoded by GDAL ------------------------------------------------------------


@pytest.mark.parametrize("z", [3, 5, 7, 9, 11])
def test_tile_holds_exactly_the_regions_it_intersects(
    client: TestClient,
    nuts3: gpd.GeoDataFrame,
    austria: shapely.Point,
    tmp_path: Path,
    z: int,
) -> None:
    """Ids, properties and integer feature ids of every region whose real geometry meets
    the tile (regions under one square pixel are left out), within the tile's buffer."""
    x, y = slippy_tile(austria.x, austria.y, z)
    resp = client.get(tile_url("nuts-2021-level-3", z, x, y))
    assert resp.status_code == 200 and resp.headers["content-type"] == MVT
    got = decode(tmp_path, resp.content, z, x, y).set_index("id")
    assert set(got.index) == expected_ids(nuts3, z, x, y)
    assert got.index.is_unique
    for column in ("NUTS_ID", "CNTR_CODE", "NAME_LATN", "NUTS_NAME"):
        assert (got[column] == nuts3.loc[got.index, column]).all(), column
    for column in ("LEVL_CODE", "MOUNT_TYPE", "URBN_TYPE"):
        real = nuts3.loc[got.index, column].astype("Int64")
        assert (got[column].astype("Int64") == real).fillna(real.isna()).all(), column
    position = pd.Series(np.arange(1, len(nuts3) + 1), index=nuts3.index)
    assert (got["mvt_id"].to_numpy() == position[got.index].to_numpy()).all()
    minx, miny, maxx, maxy = slippy_bounds(z, x, y)
    pad = (maxx - minx) * (BUFFER_SHARE + 1 / 4096)  # the buffer plus one grid unit
    assert shapely.box(minx - pad, miny - pad, maxx + pad, maxy + pad).contains(
        shapely.box(*got.total_bounds)
    )


def test_decoded_geometries_approximate_the_real_ones(
    client: TestClient, nuts3: gpd.GeoDataFrame, austria: shapely.Point, tmp_path: Path
) -> None:
    """At zoom 7 (pixel about 1.2 km), every region inside the tile overlaps its real shape
    by 95 % or more (intersection over union), holes included."""
    z = 7
    x, y = slippy_tile(austria.x, austria.y, z)
    got = decode(tmp_path, client.get(tile_url("nuts-2021-level-3", z, x, y)).content, z, x, y)
    got = got.set_index("id")
    box = shapely.box(*slippy_bounds(z, x, y))
    real = nuts3.geometry.loc[got.index].intersection(box)
    mine = got.geometry.intersection(box)
    inter = np.array([a.intersection(b).area for a, b in zip(real, mine, strict=True)])
    union = np.array([a.union(b).area for a, b in zip(real, mine, strict=True)])
    assert (inter / union).min() > 0.95
    assert inter.sum() / union.sum() > 0.99
    assert got.geometry.is_valid.all()
    with_holes = shapely.get_num_interior_rings(shapely.get_parts(real.values)) > 0
    if with_holes.any():  # exteriors and holes told apart by their winding
        assert (shapely.get_num_interior_rings(shapely.get_parts(mine.values)) > 0).any()


@pytest.mark.parametrize(("z", "most"), [(3, 0.25), (4, 0.3), (5, 0.5)])
def test_low_zooms_are_generalised_without_gaps_or_overlaps(
    client: TestClient,
    nuts3: gpd.GeoDataFrame,
    austria: shapely.Point,
    tmp_path: Path,
    z: int,
    most: float,
) -> None:
    """Far fewer vertices than the real regions cut to the same tile, and neighbours still
    share their borders: the decoded polygons do not overlap."""
    x, y = slippy_tile(austria.x, austria.y, z)
    got = decode(tmp_path, client.get(tile_url("nuts-2021-level-3", z, x, y)).content, z, x, y)
    minx, miny, maxx, maxy = slippy_bounds(z, x, y)
    pad = (maxx - minx) * BUFFER_SHARE
    cut = nuts3.loc[got["id"]].geometry.clip_by_rect(minx - pad, miny - pad, maxx + pad, maxy + pad)
    vertices = shapely.get_num_coordinates(got.geometry.values).sum()
    assert vertices < most * shapely.get_num_coordinates(cut.values).sum()
    union = shapely.union_all(got.geometry.values).area
    assert (got.area.sum() - union) / union < 1e-4


def test_dataset_tiles_filter_on_queryables(
    client: TestClient, demo_store: Store, nuts3: gpd.GeoDataFrame, tmp_path: Path
) -> None:
    """One feature per region and year with an observation; ``?year=`` keeps that year's:
    the regions the store holds an observation of in that year."""
    info = demo_store.dataset("nama_10r_3gdp")
    collection = f"dataset-nama_10r_3gdp-v{info.version}-level-3"
    obs = demo_store.observations("nama_10r_3gdp", version=info.version)
    year = int(obs["time"].max()) - 2
    z, x, y = 6, *slippy_tile(10.5, 47.5, 6)
    resp = client.get(tile_url(collection, z, x, y), params={"year": year})
    got = decode(tmp_path, resp.content, z, x, y)
    codes = set(obs.loc[(obs["geo"].str.len() == 5) & (obs["time"] == year), "geo"])
    assert set(got["id"]) == {f"{c}-{year}" for c in expected_ids(nuts3, z, x, y) & codes}
    assert set(got["year"]) == {year}
    everything = decode(
        tmp_path / "all", client.get(tile_url(collection, z, x, y)).content, z, x, y
    )
    assert len(everything) > len(got) and everything["year"].nunique() > 1
    bad = client.get(tile_url(collection, z, x, y), params={"colour": "red"})
    assert bad.status_code == 400 and "queryable" in bad.json()["detail"]
    assert client.get(tile_url(collection, z, x, y), params={"year": "soon"}).status_code == 400


def test_tile_without_regions_is_204(client: TestClient, nuts3: gpd.GeoDataFrame) -> None:
    z, x, y = 4, *slippy_tile(-150.0, -40.0, 4)  # the South Pacific
    assert not nuts3.intersects(shapely.box(*slippy_bounds(z, x, y))).any()
    resp = client.get(tile_url("nuts-2021-level-3", z, x, y))
    assert resp.status_code == 204 and resp.content == b""
    assert "max-age" in resp.headers["cache-control"]


def test_encoder_points_and_lines_read_back_by_gdal(
    nuts3: gpd.GeoDataFrame, austria: shapely.Point, tmp_path: Path
) -> None:
    """Region outlines as lines and their representative points, on the tile grid."""
    z = 8
    x, y = slippy_tile(austria.x, austria.y, z)
    minx, miny, maxx, maxy = slippy_bounds(z, x, y)
    near = nuts3[nuts3.intersects(shapely.box(minx, miny, maxx, maxy))]
    scale = 4096 / (maxx - minx)

    def to_grid(g: Any) -> Any:
        return shapely.transform(
            g, lambda c: np.rint(np.column_stack([(c[:, 0] - minx), (maxy - c[:, 1])]) * scale)
        )

    lines = [
        to_grid(g.boundary.intersection(shapely.box(minx, miny, maxx, maxy))) for g in near.geometry
    ]
    points = [to_grid(g.representative_point()) for g in near.geometry]
    data = encode_tile(
        {
            "lines": [
                Feature(i + 1, g, {"code": c})
                for i, (g, c) in enumerate(zip(lines, near.index, strict=True))
            ],
            "points": [Feature(i + 1, g, {"n": i}) for i, g in enumerate(points)],
        }
    )
    got_lines = decode(tmp_path, data, z, x, y, layer="lines")
    got_points = decode(tmp_path, data, z, x, y, layer="points")
    unit = 1 / scale
    for row, original in zip(got_lines.itertuples(), near.geometry, strict=True):
        real = original.boundary.intersection(shapely.box(minx, miny, maxx, maxy))
        assert row.geometry.hausdorff_distance(real) < 2 * unit, row.code
    real_points = np.array([(p.x, p.y) for p in near.geometry.representative_point()])
    decoded = np.array([(p.x, p.y) for p in got_points.geometry])
    np.testing.assert_allclose(decoded, real_points, atol=unit)
    assert list(got_points["n"]) == list(range(len(near)))


# --- HTTP caching ---------------------------------------------------------------------------


def test_etag_and_cache_headers(client: TestClient, austria: shapely.Point) -> None:
    z = 7
    x, y = slippy_tile(austria.x, austria.y, z)
    url = tile_url("nuts-2021-level-2", z, x, y)
    first, again = client.get(url), client.get(url)
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and again.headers["etag"] == etag
    assert again.content == first.content
    cache_control = first.headers["cache-control"]
    assert "public" in cache_control
    assert int(cache_control.split("max-age=")[1].split(",")[0]) >= 86400
    for header in (etag, f"W/{etag}", f'"x", {etag}', "*"):
        resp = client.get(url, headers={"If-None-Match": header})
        assert resp.status_code == 304 and resp.content == b"", header
        assert resp.headers["etag"] == etag and resp.headers["cache-control"] == cache_control
    assert client.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    neighbour = client.get(tile_url("nuts-2021-level-2", z, x + 1, y))
    assert neighbour.headers["etag"] != etag


def test_tile_cache_is_lru_and_loads_each_collection_once(settings: Settings) -> None:
    loads: list[int] = []

    def load() -> Any:
        loads.append(1)
        return nuts_collection(settings, 1)

    key = "nuts-2021-level-1"
    sizes = [len(TileCache().tile(key, 4, x, 5, load).data) for x in (7, 8, 9)]
    loads.clear()
    cache = TileCache(max_bytes=sizes[0] + sizes[1])
    a, b = cache.tile(key, 4, 7, 5, load), cache.tile(key, 4, 8, 5, load)
    assert cache.tile(key, 4, 7, 5, load) is a  # a hit, and now the most recently used
    cache.tile(key, 4, 9, 5, load)  # evicts b, the least recently used
    assert cache.tile(key, 4, 7, 5, load) is a
    assert cache.tile(key, 4, 8, 5, load) is not b and loads == [1]
    assert cache.info()["hits"] == 2 and cache.info()["bytes"] <= cache.max_bytes


def test_tileset_metadata_is_tilejson_with_a_working_template(
    client: TestClient, settings: Settings
) -> None:
    doc = client.get("/ogc/collections/nuts-2021-level-3/tiles/WebMercatorQuad").json()
    assert doc["tilejson"] == "3.0.0" and doc["tileMatrixSetURI"].endswith("WebMercatorQuad")
    assert doc["minzoom"] == 0 and 8 <= doc["maxzoom"] <= MAX_ZOOM
    np.testing.assert_allclose(doc["bounds"], regions(settings, 3).total_bounds, atol=1e-9)
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "nuts-2021-level-3" and layer["fields"]["NAME_LATN"] == "String"
    assert layer["fields"]["MOUNT_TYPE"] == "Number"
    template = doc["tiles"][0]
    assert template.endswith("/WebMercatorQuad/{z}/{y}/{x}")
    x, y = slippy_tile(11.0, 47.0, 5)
    resp = client.get(template.format(z=5, x=x, y=y))
    assert resp.status_code == 200 and resp.headers["content-type"] == MVT
    item = next(link for link in doc["links"] if link["rel"] == "item")
    assert item["href"].endswith("{tileMatrix}/{tileRow}/{tileCol}") and item["type"] == MVT
    listing = client.get("/ogc/collections/nuts-2021-level-3/tiles").json()
    assert listing["tilesets"][0]["dataType"] == "vector"
