"""OGC API – Features at /ogc, read by the clients GIS analysts use.

The real service runs in a uvicorn subprocess on a loopback port over a store of its own (the
demo datasets and one analysis with catchments). GDAL's OAPIF driver (through pyogrio) reads
every collection page by page, with a bbox and in EPSG:3035; the JSON is checked against the
library's own layers (``geo.collections``), pandas filtering of them and pyproj transforms.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
import shapely

from geo.analysis import AnalysisParams
from geo.boundaries import regions
from geo.collections import Collection, collection_ids, load_collection
from geo.crs import CRS84, SUPPORTED, bbox_area, canonical, crs_info, transform_frame
from geo.errors import InvalidParameterError
from geo.exports import FORMATS as EXPORTS
from geo.indicators import load_demo
from geo.jobs import AnalysisRunner
from geo.ogc import CONFORMANCE, Catalogue
from geo.ogc_query import LIMIT_MAX, parse_datetime
from geo.settings import REPO_ROOT, Settings
from geo.store import Store
from services import ogc_schemas as schemas

EPSG4326, EPSG3035, EPSG3857 = SUPPORTED[1:]
GDP = "nama_10r_3gdp"
NUTS3 = "nuts-2021-level-3"
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}
DECIMALS = re.compile(rb"\d\.(\d+)")


# -- the service ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ogc_settings(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> Settings:
    db = tmp_path_factory.mktemp("ogc") / "ogc.db"
    return settings.model_copy(update={"database_url": f"sqlite:///{db}"})


@pytest.fixture(scope="module")
def ogc_store(ogc_settings: Settings) -> Store:
    """The demo datasets and a Gi* analysis of GDP per head 2019-2020 with catchments."""
    store = Store(ogc_settings.database_url)
    load_demo(ogc_settings, store)
    runner = AnalysisRunner(ogc_settings, store, scheduler="threads")
    params = AnalysisParams(dataset=GDP, years=[2019, 2020], permutations=99, correction="none")
    try:
        record = runner.submit(params, wait=True)
    finally:
        runner.close()
    assert record.status == "done"
    return store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base(
    ogc_settings: Settings, ogc_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The service's root URL: uvicorn in a child process (GDAL's HTTP calls never wait on
    this interpreter's lock), configured only by ALPCLUSTERS_* variables."""
    port = _free_port()
    env = {
        **os.environ,
        "ALPCLUSTERS_DATABASE_URL": ogc_settings.database_url,
        "ALPCLUSTERS_DATA_MIRROR": str(ogc_settings.data_mirror),
        "ALPCLUSTERS_ALLOW_DOWNLOAD": "false",
        "ALPCLUSTERS_NUTS_DIR": str(ogc_settings.nuts_dir),
    }
    log = tmp_path_factory.mktemp("ogc-server") / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "services.app:create_app"]
    cmd += ["--app-dir", str(REPO_ROOT), "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--no-access-log"], env=env, cwd=log.parent, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the service exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    pytest.fail(f"the service did not start within 120 s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def ids(ogc_settings: Settings, ogc_store: Store) -> list[str]:
    return list(collection_ids(ogc_settings, ogc_store))


@pytest.fixture(scope="module")
def reference(ogc_settings: Settings, ogc_store: Store) -> Any:
    """The library's own collection, to compare the service with."""
    memo: dict[str, Collection] = {}

    def get(cid: str) -> Collection:
        if cid not in memo:
            memo[cid] = load_collection(ogc_settings, ogc_store, cid)
        return memo[cid]

    return get


@pytest.fixture(autouse=True, scope="module")
def _loopback_without_proxy() -> Iterator[None]:
    """GDAL's libcurl must reach 127.0.0.1 directly even where a proxy is configured."""
    saved = {k: os.environ.get(k) for k in ("NO_PROXY", "no_proxy")}
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


# -- helpers ----------------------------------------------------------------------------------


def get_json(http: httpx.Client, url: str, **params: Any) -> dict[str, Any]:
    resp = http.get(url, params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] in (
        "application/json",
        "application/geo+json",
    )
    return resp.json()  # type: ignore[no-any-return]


def items(http: httpx.Client, cid: str, **params: Any) -> httpx.Response:
    resp = http.get(f"/ogc/collections/{cid}/items", params=params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/geo+json"
    schemas.FeatureCollection.model_validate(resp.json())
    return resp


def rel(links: list[dict[str, Any]], name: str, type_: str | None = None) -> list[dict[str, Any]]:
    return [lk for lk in links if lk["rel"] == name and (type_ is None or lk["type"] == type_)]


def walk(http: httpx.Client, cid: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a query, following ``next`` links to the end."""
    pages = [items(http, cid, **params).json()]
    while nxt := rel(pages[-1]["links"], "next"):
        assert len(nxt) == 1 and nxt[0]["type"] == "application/geo+json"
        resp = http.get(nxt[0]["href"])
        assert resp.status_code == 200, resp.text
        pages.append(resp.json())
    return pages


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    body = resp.json()
    assert set(body) >= PROBLEM_MEMBERS and body["status"] == status
    return body  # type: ignore[no-any-return]


def assert_rfc7946(body: dict[str, Any], raw: bytes, decimals: int = 5) -> None:
    """Lon/lat in range, counter-clockwise exterior rings, valid, no crs, rounded."""
    assert "crs" not in body
    for feature in body["features"]:
        assert "crs" not in feature and isinstance(feature["id"], str)
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid, feature["id"]
        x0, y0, x1, y1 = geom.bounds
        assert -180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90
        for poly in getattr(geom, "geoms", [geom]):
            assert poly.exterior.is_ccw, feature["id"]
            assert not any(ring.is_ccw for ring in poly.interiors), feature["id"]
    assert max_decimals(raw, "geometry") <= decimals


def max_decimals(raw: bytes, member: str) -> int:
    """The most decimal places of any number inside the ``member`` objects of a body."""
    most = 0
    for chunk in raw.split(f'"{member}":'.encode())[1:]:
        coords = chunk.split(b'"properties"')[0]
        most = max([most, *(len(m) for m in DECIMALS.findall(coords))])
    return most


def gdal_read(base: str, cid: str, **options: Any) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(f"OAPIF:{base}/ogc", layer=cid, **options)


# -- landing page, conformance, collections ---------------------------------------------------


def test_landing_page_links(http: httpx.Client) -> None:
    """self, alternate, service-desc (an OpenAPI document), service-doc, conformance, data."""
    body = get_json(http, "/ogc")
    page = schemas.LandingPage.model_validate(body)
    links = body["links"]
    assert {lk.rel for lk in page.links} >= {
        "self",
        "alternate",
        "service-desc",
        "service-doc",
        "conformance",
        "data",
    }
    desc = rel(links, "service-desc")[0]
    assert desc["type"] == "application/vnd.oai.openapi+json;version=3.0"
    api = http.get(desc["href"]).json()
    assert "/ogc/collections/{collectionId}/items" in api["paths"]
    assert rel(links, "service-doc", "text/html")[0]["href"].endswith("/docs")
    assert rel(links, "data")[0]["href"].endswith("/ogc/collections")
    assert rel(links, "alternate", "text/html")[0]["href"].endswith("/ogc?f=html")


def test_conformance_classes(http: httpx.Client) -> None:
    """Part 1 core, GeoJSON, OpenAPI 3.0 and HTML; Part 2 CRS."""
    body = schemas.Conformance.model_validate(get_json(http, "/ogc/conformance"))
    assert set(body.conformsTo) == set(CONFORMANCE)
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in body.conformsTo
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in body.conformsTo


def test_collections_describe_every_layer(
    http: httpx.Client, ids: list[str], reference: Any
) -> None:
    """Every collection id of the library, with its extents, count, CRSs and links."""
    body = schemas.Collections.model_validate(get_json(http, "/ogc/collections"))
    assert [c.id for c in body.collections] == ids
    kinds = {cid.split("-")[0] for cid in ids}
    assert kinds == {"nuts", "dataset", "analysis"}
    for doc in body.collections:
        ref = reference(doc.id)
        assert doc.itemCount == len(ref.features)
        assert doc.extent.spatial.crs == CRS84
        np.testing.assert_allclose(doc.extent.spatial.bbox[0], ref.bbox)
        if ref.interval is None:
            assert doc.extent.temporal is None
        else:
            assert doc.extent.temporal is not None
            assert doc.extent.temporal.interval[0] == ref.interval
        assert doc.crs[0] == CRS84 and set(doc.crs) == set(SUPPORTED)
        assert doc.storageCrs == CRS84
        assert doc.attribution == ref.attribution
        assert_collection_links(doc)


def assert_collection_links(doc: schemas.Collection) -> None:
    links = [lk.model_dump() for lk in doc.links]
    items_json = rel(links, "items", "application/geo+json")
    assert len(items_json) == 1 and f"/ogc/collections/{doc.id}/items" in items_json[0]["href"]
    assert rel(links, "items", "text/html")
    assert rel(links, "self", "application/json") and rel(links, "alternate", "text/html")
    enclosures = {lk["type"]: lk["href"] for lk in rel(links, "enclosure")}
    assert enclosures == {
        fmt.media_type: f"{doc.links[0].href.split('?')[0]}/export?f={key}"
        for key, fmt in EXPORTS.items()
    }
    (tilesets,) = rel(links, "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
    assert tilesets["href"].endswith(f"/ogc/collections/{doc.id}/tiles")
    tiles = [lk for lk in links if lk.get("templated")]
    assert len(tiles) == 1
    assert tiles[0]["href"].endswith(
        f"/ogc/collections/{doc.id}/tiles/WebMercatorQuad/{{tileMatrix}}/{{tileRow}}/{{tileCol}}"
    )
    (licence,) = rel(links, "license")
    assert licence["title"] == doc.attribution


def test_one_collection_and_its_licence(http: httpx.Client, reference: Any) -> None:
    doc = schemas.Collection.model_validate(get_json(http, f"/ogc/collections/{NUTS3}"))
    assert doc.itemCount == 1514 and doc.title == reference(NUTS3).title
    licence = http.get(rel([lk.model_dump() for lk in doc.links], "license")[0]["href"])
    assert licence.status_code == 200 and "EuroGeographics" in licence.text


def test_queryables_schema(http: httpx.Client) -> None:
    resp = http.get(f"/ogc/collections/{NUTS3}/queryables")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/schema+json"
    props = resp.json()["properties"]
    assert props["CNTR_CODE"]["type"] == "string" and props["LEVL_CODE"]["type"] == "integer"
    assert props["geometry"]["x-ogc-role"] == "primary-geometry"


def test_unknown_collection_and_feature_are_404(http: httpx.Client) -> None:
    for path in (
        "/ogc/collections/nuts-2016-level-3",
        "/ogc/collections/nope/items",
        f"/ogc/collections/dataset-{GDP}-v9-level-3/items",
        f"/ogc/collections/dataset-{GDP}-v1-level-2",
        "/ogc/collections/analysis-0123456789abcdef-regions",
    ):
        assert assert_problem(http.get(path), 404)["code"] == "unknown-collection"
    body = assert_problem(http.get(f"/ogc/collections/{NUTS3}/items/XX999"), 404)
    assert "XX999" in body["detail"]


# -- GDAL's OAPIF driver ----------------------------------------------------------------------


def test_gdal_lists_every_collection(base: str, ids: list[str], reference: Any) -> None:
    """ogrinfo's view: every collection a layer, its feature count the library's."""
    layers = pyogrio.list_layers(f"OAPIF:{base}/ogc")
    assert [str(name) for name in layers[:, 0]] == ids
    for cid in ids:
        info = pyogrio.read_info(f"OAPIF:{base}/ogc", layer=cid)
        assert info["features"] == len(reference(cid).features), cid


def test_gdal_reads_every_page(
    base: str, http: httpx.Client, ids: list[str], reference: Any
) -> None:
    """Every feature of every collection through several pages, none twice.

    The GDP dataset (26,710 region-years of full NUTS-3 polygons) is read whole; the two
    population datasets (35,694 each) for one year through GDAL's DATETIME option, so the
    test stays short (their whole walk is checked in JSON below).
    """
    for cid in ids:
        ref = reference(cid)
        options: dict[str, Any] = {}
        expected = ref.features.index
        if cid.startswith("dataset-") and GDP not in cid:
            options["DATETIME"] = "2019-01-01T00:00:00Z/2019-12-31T23:59:59Z"
            expected = expected[ref.time.to_numpy() == 2019]
        when = {"datetime": options["DATETIME"]} if options else {}
        matched = items(http, cid, limit=1, **when).json()
        assert matched["numberMatched"] == len(expected), cid
        page = max(7, len(expected) // 5)  # at least five pages
        df = gdal_read(base, cid, PAGE_SIZE=page, **options)
        assert len(df) == len(expected), cid
        assert sorted(df["id"]) == sorted(expected), cid
        if len(df):
            assert df.crs is not None and df.crs.equals(pyproj.CRS("OGC:CRS84")), cid
            geoms = ref.features.geometry.loc[df["id"]].to_numpy()
            np.testing.assert_array_less(
                shapely.hausdorff_distance(df.geometry.values, geoms), 1e-4
            )


def test_gdal_bbox_matches_shapely(base: str, ogc_settings: Settings) -> None:
    """A lon/lat bbox selects exactly the regions that intersect it."""
    box = (10.0, 46.0, 12.5, 47.8)
    df = gdal_read(base, NUTS3, bbox=box, PAGE_SIZE=25)
    layer = regions(ogc_settings, 3)
    expected = layer.index[layer.intersects(shapely.box(*box))]
    assert 20 < len(expected) < 200
    assert sorted(df["id"]) == sorted(expected)


def test_gdal_reads_epsg_3035(base: str, ogc_settings: Settings) -> None:
    """With CRS=EPSG:3035 GDAL asks for that CRS, gets northing/easting and a Content-Crs,
    and its geometries equal pyproj's transform of the boundaries (to 0.1 m rounding)."""
    df = gdal_read(base, "nuts-2021-level-2", CRS="EPSG:3035", PAGE_SIZE=100)
    assert df.crs.to_epsg() == 3035
    ref = regions(ogc_settings, 2).to_crs(3035).geometry.loc[df["id"]]
    dist = shapely.hausdorff_distance(df.geometry.values, ref.values)
    assert len(df) == 334 and float(dist.max()) < 1.0
    # GDAL sends the bbox in EPSG:3035's axis order (northing first) with bbox-crs
    box = (4.2e6, 2.5e6, 4.8e6, 2.9e6)  # easting/northing, around the eastern Alps
    sub = gdal_read(base, NUTS3, CRS="EPSG:3035", bbox=box)
    layer = regions(ogc_settings, 3).to_crs(3035)
    expected = layer.index[layer.intersects(shapely.box(*box))]
    assert len(expected) > 50 and sorted(sub["id"]) == sorted(expected)


# -- paging -----------------------------------------------------------------------------------


def test_pages_cover_every_feature_once(http: httpx.Client) -> None:
    """next links walk all 1,514 regions; counts add up; the last page has no next."""
    pages = walk(http, NUTS3, limit=100)
    assert len(pages) == 16
    seen = [f["id"] for p in pages for f in p["features"]]
    assert len(seen) == len(set(seen)) == 1514
    for i, p in enumerate(pages):
        assert p["numberMatched"] == 1514 and p["numberReturned"] == len(p["features"])
        assert bool(rel(p["links"], "prev")) == (i > 0)
        assert rel(p["links"], "self", "application/geo+json")
        assert rel(p["links"], "alternate", "text/html")
        assert rel(p["links"], "collection")
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", p["timeStamp"])
    assert not rel(pages[-1]["links"], "next") and pages[-1]["numberReturned"] == 14


def test_next_links_keep_every_parameter(http: httpx.Client, ogc_settings: Settings) -> None:
    pages = walk(http, NUTS3, limit=20, CNTR_CODE="DE", crs=EPSG3035, properties="NUTS_ID")
    layer = regions(ogc_settings, 3)
    seen = [f["id"] for p in pages for f in p["features"]]
    assert seen == list(layer.index[layer["CNTR_CODE"] == "DE"])
    for p in pages[:-1]:
        query = parse_qs(urlparse(rel(p["links"], "next")[0]["href"]).query)
        assert query["CNTR_CODE"] == ["DE"] and query["crs"] == [EPSG3035]
        assert query["properties"] == ["NUTS_ID"] and query["limit"] == ["20"]
    assert all(set(f["properties"]) == {"NUTS_ID"} for p in pages for f in p["features"])


def test_no_properties(http: httpx.Client) -> None:
    """``properties=`` (empty) keeps ids and geometries, and no property."""
    body = items(http, NUTS3, limit=5, properties="").json()
    assert len(body["features"]) == 5
    assert all(f["properties"] == {} and f["geometry"] for f in body["features"])
    one = http.get(f"/ogc/collections/{NUTS3}/items/AT130", params={"properties": ""}).json()
    assert one["properties"] == {}


def test_dataset_collection_walk(http: httpx.Client, reference: Any) -> None:
    """Every region-year of the population dataset, 10,000 a page: a larger limit is served
    as the maximum, and the pages add up to the whole layer in its order."""
    cid = "dataset-demo_r_pjanaggr3-v1-level-3"
    expected = list(reference(cid).features.index)
    assert len(expected) > 2 * LIMIT_MAX
    pages = walk(http, cid, limit=LIMIT_MAX * 3, properties="year")
    sizes = [LIMIT_MAX] * (len(expected) // LIMIT_MAX) + [len(expected) % LIMIT_MAX]
    assert [p["numberReturned"] for p in pages] == [n for n in sizes if n]
    assert [f["id"] for p in pages for f in p["features"]] == expected
    assert "limit=10000" in rel(pages[0]["links"], "next")[0]["href"]


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "years"),
    [
        ("2019", (2019, 2019)),
        ("2019-01-01", (2019, 2019)),
        ("2020-06-15T12:00:00Z", (2020, 2020)),
        ("2019-01-01T00:30:00+01:00", (2018, 2018)),
        ("2015/2017", (2015, 2017)),
        ("2015-06-01T00:00:00Z/2015-12-31T23:59:59Z", (2015, 2015)),
        ("2015-06-01T00:00:00Z/2016-01-01T00:00:00Z", (2015, 2016)),  # closed: touches 2016
        ("../2001", (None, 2001)),
        ("2020/..", (2020, None)),
        ("/2001-12-31", (None, 2001)),
    ],
    ids=[
        "year",
        "date",
        "instant",
        "offset",
        "years",
        "within",
        "touching",
        "open-start",
        "open-end",
        "empty",
    ],
)
def test_datetime_on_a_dataset(
    http: httpx.Client,
    ogc_store: Store,
    reference: Any,
    when: str,
    years: tuple[int | None, int | None],
) -> None:
    """datetime selects the region-years of those years; each carries the stored value."""
    cid = f"dataset-{GDP}-v1-level-3"
    frame = reference(cid).features
    lo, hi = years
    expected = frame[(frame["year"] >= (lo or 0)) & (frame["year"] <= (hi or 9999))]
    body = items(http, cid, datetime=when, limit=LIMIT_MAX, properties="EUR_HAB").json()
    assert body["numberMatched"] == len(expected) > 0
    assert [f["id"] for f in body["features"]] == list(expected.index[:LIMIT_MAX])
    obs = ogc_store.observations(GDP).set_index(["geo", "time"])["value"]
    for feature in body["features"][:: max(1, len(body["features"]) // 50)]:
        geo, year = feature["id"].rsplit("-", 1)
        stored = obs.get((geo, int(year)))
        value = feature["properties"]["EUR_HAB"]
        assert (value is None and (stored is None or np.isnan(stored))) or value == stored


def test_datetime_matches_everything_without_time(http: httpx.Client) -> None:
    assert items(http, NUTS3, datetime="2019", limit=1).json()["numberMatched"] == 1514


@pytest.mark.parametrize(
    "filters",
    [
        {"CNTR_CODE": "AT"},
        {"CNTR_CODE": "IT", "MOUNT_TYPE": "1"},
        {"LEVL_CODE": "3", "URBN_TYPE": "1", "COAST_TYPE": "3"},
        {"CNTR_CODE": ["AT", "CH", "LI"]},
    ],
    ids=["country", "mountains", "urban-inland", "several"],
)
def test_property_filters_match_pandas(
    http: httpx.Client, ogc_settings: Settings, filters: dict[str, Any]
) -> None:
    layer = regions(ogc_settings, 3)
    mask = pd.Series(True, index=layer.index)
    for name, value in filters.items():
        values = value if isinstance(value, list) else [value]
        numeric = pd.api.types.is_integer_dtype(layer[name].dtype)
        typed = [int(v) if numeric else v for v in values]
        mask &= layer[name].isin(typed).fillna(False)
    body = items(http, NUTS3, limit=2000, **filters).json()
    assert [f["id"] for f in body["features"]] == list(layer.index[mask])
    assert body["numberMatched"] == int(mask.sum()) > 0


def test_property_filter_on_a_dataset(http: httpx.Client, ogc_store: Store) -> None:
    obs = ogc_store.observations(GDP, geos=["AT111"])
    body = items(http, f"dataset-{GDP}-v1-level-3", NUTS_ID="AT111", year="2019").json()
    (feature,) = body["features"]
    value = obs.loc[obs["time"] == 2019, "value"].item()
    assert feature["id"] == "AT111-2019" and feature["properties"]["EUR_HAB"] == value


def test_analysis_collections(http: httpx.Client, reference: Any, ids: list[str]) -> None:
    """Per-region statistics filter on status and year; catchments carry their members."""
    cid = next(c for c in ids if c.endswith("-regions"))
    ref = reference(cid).features
    body = items(http, cid, status="ok", year="2020", limit=1000).json()
    expected = ref[(ref["status"] == "ok") & (ref["year"] == 2020)]
    assert [f["id"] for f in body["features"]] == list(expected.index)
    catch = items(http, cid.replace("-regions", "-catchments"), limit=100).json()
    assert catch["numberMatched"] > 0
    assert all(f["properties"]["members"] for f in catch["features"])


# -- CRS and axis order -----------------------------------------------------------------------


def test_content_crs_header(http: httpx.Client) -> None:
    resp = items(http, NUTS3, limit=1)
    assert resp.headers["content-crs"] == f"<{CRS84}>"
    for value, uri in (
        (EPSG3035, EPSG3035),
        ("[EPSG:3857]", EPSG3857),
        ("EPSG:4326", EPSG4326),
        ("https://www.opengis.net/def/crs/EPSG/0/3035", EPSG3035),
    ):
        assert items(http, NUTS3, limit=1, crs=value).headers["content-crs"] == f"<{uri}>"


def test_epsg_4326_is_latitude_first(http: httpx.Client, ogc_settings: Settings) -> None:
    """Vienna (AT130) in EPSG:4326: latitude ~48.2 first; in CRS84 longitude ~16.4 first."""
    ref = regions(ogc_settings, 3).loc["AT130"].geometry.centroid
    path = f"/ogc/collections/{NUTS3}/items/AT130"
    latlon = shapely.geometry.shape(get_json(http, path, crs=EPSG4326)["geometry"]).centroid
    lonlat = shapely.geometry.shape(get_json(http, path)["geometry"]).centroid
    assert 48.1 < latlon.x < 48.4 and 16.2 < latlon.y < 16.6
    assert latlon.x == pytest.approx(ref.y, abs=1e-4) and latlon.y == pytest.approx(ref.x, abs=1e-4)
    assert lonlat.x == pytest.approx(ref.x, abs=1e-4)


def test_epsg_3035_is_northing_first(http: httpx.Client, ogc_settings: Settings) -> None:
    """EPSG:3035 answers northing, easting (pyproj: always_xy gives easting first)."""
    ref = regions(ogc_settings, 3).loc[["AT130"]].to_crs(3035).geometry.iloc[0]
    resp = http.get(f"/ogc/collections/{NUTS3}/items/AT130", params={"crs": EPSG3035})
    assert resp.headers["content-crs"] == f"<{EPSG3035}>"
    geom = shapely.geometry.shape(resp.json()["geometry"])
    swapped = shapely.transform(geom, lambda xy: xy[:, ::-1])
    assert shapely.hausdorff_distance(swapped, ref) < 1.0
    x, y = shapely.get_coordinates(geom)[0]
    assert 2.7e6 < x < 2.9e6 and 4.7e6 < y < 4.9e6  # northing, then easting
    assert max_decimals(resp.content, "geometry") <= 1


def test_bbox_in_other_crss(http: httpx.Client, ogc_settings: Settings) -> None:
    """The same area as CRS84, EPSG:4326 (lat first) and EPSG:3857 selects the same regions."""
    layer = regions(ogc_settings, 3)
    expected = list(layer.index[layer.intersects(shapely.box(10.0, 46.0, 12.5, 47.8))])
    for bbox, crs in (
        ("10,46,12.5,47.8", None),
        ("46,10,47.8,12.5", EPSG4326),
        ("10,46,0,12.5,47.8,100", None),
    ):
        params = {"bbox": bbox, "limit": 2000, **({"bbox-crs": crs} if crs else {})}
        assert [f["id"] for f in items(http, NUTS3, **params).json()["features"]] == expected
    merc = pyproj.Transformer.from_crs(4326, 3857, always_xy=True)
    (x0, x1), (y0, y1) = merc.transform([10.0, 12.5], [46.0, 47.8])
    body = items(http, NUTS3, bbox=f"{x0},{y0},{x1},{y1}", **{"bbox-crs": EPSG3857}, limit=2000)
    assert [f["id"] for f in body.json()["features"]] == expected


def test_geojson_is_rfc7946(http: httpx.Client) -> None:
    for cid in (NUTS3, "nuts-2021-level-0"):
        resp = items(http, cid, limit=2000)
        assert_rfc7946(resp.json(), resp.content)


def test_feature_ids_are_nuts_codes(http: httpx.Client, ogc_settings: Settings) -> None:
    body = items(http, "nuts-2021-level-1", limit=500).json()
    assert [f["id"] for f in body["features"]] == list(regions(ogc_settings, 1).index)


def test_one_feature(http: httpx.Client) -> None:
    path = f"/ogc/collections/{NUTS3}/items/AT130"
    resp = http.get(path, params={"crs": EPSG3857})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/geo+json"
    feature = schemas.Feature.model_validate(resp.json())
    assert feature.id == "AT130" and feature.properties["NAME_LATN"] == "Wien"
    links = [lk.model_dump() for lk in feature.links or []]
    assert rel(links, "self", "application/geo+json")[0]["href"].startswith("http")
    assert rel(links, "collection")[0]["href"].endswith(f"/ogc/collections/{NUTS3}")
    assert resp.headers["content-crs"] == f"<{EPSG3857}>"
    page = items(http, NUTS3, crs=EPSG3857, CNTR_CODE="AT", limit=100).json()
    same = next(f for f in page["features"] if f["id"] == "AT130")
    assert same["geometry"] == resp.json()["geometry"]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-5"},
        {"limit": "many"},
        {"offset": "-1"},
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "0,80,10,95"},
        {"bbox": "10,50,0,40", "bbox-crs": EPSG3035},
        {"bbox-crs": EPSG3035},
        {"bbox": "0,40,10,50", "bbox-crs": "EPSG:31287"},
        {"crs": "EPSG:31287"},
        {"crs": "not a crs"},
        {"datetime": "2019-13-01"},
        {"datetime": "yesterday"},
        {"datetime": "2020/2019"},
        {"datetime": "../.."},
        {"f": "xml"},
        {"properties": "NUTS_ID,nope"},
        {"LEVL_CODE": "three"},
        {"foo": "bar"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_invalid_parameters_are_400(http: httpx.Client, params: dict[str, str]) -> None:
    body = assert_problem(http.get(f"/ogc/collections/{NUTS3}/items", params=params), 400)
    assert body["code"] == "invalid-parameter"


def test_unknown_parameter_names_the_valid_ones(http: httpx.Client) -> None:
    body = assert_problem(http.get(f"/ogc/collections/{NUTS3}/items", params={"q": "x"}), 400)
    for name in ("limit", "bbox", "bbox-crs", "datetime", "crs", "CNTR_CODE"):
        assert repr(name) in body["detail"]
    assert_problem(http.get("/ogc/collections", params={"limit": "10"}), 400)


# -- HTML ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/ogc",
        "/ogc/conformance",
        "/ogc/collections",
        f"/ogc/collections/{NUTS3}",
        f"/ogc/collections/{NUTS3}/items",
        f"/ogc/collections/{NUTS3}/items/AT130",
    ],
)
def test_html_pages(http: httpx.Client, path: str) -> None:
    """f=html and a browser's Accept header both give the page; GDAL's Accept gives JSON."""
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    for resp in (http.get(path, params={"f": "html"}), http.get(path, headers={"Accept": browser})):
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("text/html")
        assert resp.text.startswith("<!doctype html>") and "</html>" in resp.text
        assert 'rel="alternate"' in resp.text
    resp = http.get(path, headers={"Accept": "application/geo+json, application/json"})
    assert resp.headers["content-type"] in ("application/json", "application/geo+json")


def test_html_items_table_pages(http: httpx.Client) -> None:
    resp = http.get(f"/ogc/collections/{NUTS3}/items", params={"f": "html", "CNTR_CODE": "AT"})
    assert resp.text.count("<tr>") == 36  # header and 35 Austrian regions
    assert "Wien" in resp.text and "Features 1–35 of 35" in resp.text
    first = http.get(f"/ogc/collections/{NUTS3}/items", params={"f": "html", "limit": "10"})
    assert 'rel="next"' in first.text and "offset=10" in first.text


# -- the library --------------------------------------------------------------------------------


def test_crs_names() -> None:
    for value in ("EPSG:3035", "[EPSG:3035]", "urn:ogc:def:crs:EPSG::3035", EPSG3035):
        assert canonical(value) == EPSG3035
    assert canonical("OGC:CRS84") == canonical("[OGC:CRS84]") == CRS84
    with pytest.raises(InvalidParameterError, match="supported"):
        canonical("EPSG:2056")
    assert crs_info(EPSG4326).northing_first and crs_info(EPSG3035).northing_first
    assert not crs_info(CRS84).northing_first and not crs_info(EPSG3857).northing_first


def test_bbox_across_the_antimeridian() -> None:
    area = bbox_area((170.0, -20.0, -170.0, -10.0), crs_info(CRS84))
    assert area.geom_type == "MultiPolygon" and area.area == pytest.approx(200.0)


def test_transform_frame_follows_axis_order(ogc_settings: Settings) -> None:
    frame = regions(ogc_settings, 0).loc[["AT"]]
    out = transform_frame(frame, EPSG4326)
    x, y = shapely.get_coordinates(out.geometry.iloc[0])[0]
    lon, lat = shapely.get_coordinates(frame.geometry.iloc[0])[0]
    assert (x, y) == (lat, lon)


def test_datetime_grammar() -> None:
    assert parse_datetime("2019").years() == (2019, 2019)
    assert parse_datetime("2019-12-31T23:59:59Z/2020-01-01T00:00:00Z").years() == (2019, 2020)
    assert parse_datetime("../2020").years() == (None, 2020)
    assert parse_datetime("2019-03").years() == (2019, 2019)


def test_layers_are_built_once(ogc_settings: Settings, ogc_store: Store) -> None:
    catalogue = Catalogue(ogc_settings, ogc_store)
    layer = catalogue.layer(NUTS3)
    assert catalogue.layer(NUTS3) is layer and catalogue.info(NUTS3).count == 1514
    texts = layer.geometry_texts(crs_info(CRS84))
    assert layer.geometry_texts(crs_info(CRS84)) is texts
    dataset = catalogue.layer(f"dataset-{GDP}-v1-level-3")
    assert len(dataset.geometries) < len(dataset) / 10  # one geometry per region, not per year
