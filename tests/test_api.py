"""The HTTP API: every endpoint on the demo store, RFC 7946 GeoJSON, RFC 9457 problems."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from geo import __version__
from geo.analysis import COVERAGE_FOR_DEFAULT_YEAR, DEFAULT_SEED, AnalysisParams
from geo.areas import named_areas, resolve
from geo.boundaries import load_boundaries
from geo.formats import ReadOptions
from geo.indicators import load_eurostat, upload_frame
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadRequest
from maps.styles import CORRECTION_TEXT, legend_entries
from services.app import create_app
from services.schemas import Analysis, AnalysisList, Dataset, Health
from tests.auth import headers

GDP = "nama_10r_3gdp"
FEW = 99  # permutations where the test is not about the statistics
PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code"}
CDN_HOSTS = (
    "cdn.jsdelivr.net",
    "code.jquery.com",
    "cdnjs",
    "unpkg",
    "netdna",
    "googleapis",
    "bootstrapcdn",
    "rawcdn",
)


# -- helpers ----------------------------------------------------------------------------------


def assert_geojson(resp: Any) -> dict[str, Any]:
    """Check a response against RFC 7946 and return its body."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/geo+json"
    body = resp.json()
    assert body["type"] == "FeatureCollection"
    assert "crs" not in body
    for feature in body["features"]:
        assert feature["type"] == "Feature"
        assert "crs" not in feature
        assert isinstance(feature["id"], str)
        assert isinstance(feature["properties"], dict)
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.geom_type in ("Polygon", "MultiPolygon")
        assert geom.is_valid
        minx, miny, maxx, maxy = geom.bounds
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
        for poly in getattr(geom, "geoms", [geom]):
            assert poly.exterior.is_ccw, feature["id"]
            assert not any(ring.is_ccw for ring in poly.interiors), feature["id"]
    return body  # type: ignore[no-any-return]


def assert_problem(resp: Any, status: int) -> dict[str, Any]:
    """Check an RFC 9457 problem response with the given status."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    body = resp.json()
    assert set(body) >= PROBLEM_MEMBERS, body
    assert body["status"] == status
    assert body["type"].endswith(body["code"])
    assert body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


def post(client: TestClient, **params: Any) -> Any:
    return client.post("/analyses", json={"dataset": GDP, **params})


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alpine_l3(settings: Settings) -> list[str]:
    return resolve(settings, load_boundaries(settings), "alpine-space", 3)


@pytest.fixture(scope="module")
def default_analysis(client: TestClient) -> dict[str, Any]:
    """The default analysis: only the dataset is given."""
    resp = client.post("/analyses", json={"dataset": GDP})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def moran_analysis(client: TestClient) -> dict[str, Any]:
    resp = post(client, method="local_moran", permutations=FEW, years=[2018])
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def two_units(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Store]]:
    """A service of its own over a dataset with two indicators (two GDP units)."""
    db = tmp_path_factory.mktemp("api-two") / "two.db"
    own = settings.model_copy(update={"database_url": f"sqlite:///{db}"})
    store = Store(own.database_url)
    frame, _ = load_eurostat(own, GDP)
    frame = frame[frame["unit"].isin(["EUR_HAB", "PPS_EU27_2020_HAB"])]
    request = UploadRequest(
        dataset_id="gdp_two",
        title="GDP per inhabitant, euro and PPS",
        read=ReadOptions(indicator_from=["unit"]),
        levels=(3,),
    )
    upload_frame(own, store, frame, request)
    with TestClient(create_app(own), headers=headers(own)) as c:
        yield c, store


# -- service ----------------------------------------------------------------------------------


def test_health(client: TestClient, demo_store: Store) -> None:
    """GET /health answers ok with the version and the number of datasets."""
    resp = client.get("/health")
    assert resp.status_code == 200
    health = Health.model_validate(resp.json())
    assert health.status == "ok"
    assert health.version == __version__
    assert health.datasets == len(demo_store.dataset_ids()) >= 3


def test_openapi(client: TestClient) -> None:
    """The OpenAPI document lists every endpoint and declares the EUPL licence (OpenAPI 3.0
    names a licence by its name and URL)."""
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["info"]["license"] == {
        "name": "EUPL-1.2",
        "url": "https://spdx.org/licenses/EUPL-1.2.html",
    }
    paths = set(doc["paths"])
    assert {
        "/health",
        "/regions",
        "/datasets",
        "/datasets/{dataset_id}",
        "/analyses",
        "/analyses/{analysis_id}",
        "/analyses/{analysis_id}/regions.geojson",
        "/analyses/{analysis_id}/catchments.geojson",
        "/maps/analyses/{analysis_id}",
        "/",
    } <= paths
    schema = doc["components"]["schemas"]["AnalysisParams"]
    assert schema["required"] == ["dataset"]
    assert schema["properties"]["permutations"]["maximum"] == 99_999


def test_index_page(client: TestClient, demo_store: Store, default_analysis: dict) -> None:
    """GET / is an HTML page linking the stored analyses and naming the datasets."""
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert f"/maps/analyses/{default_analysis['id']}" in resp.text
    for info in demo_store.datasets():
        assert html.escape(info.title) in resp.text


# -- regions ----------------------------------------------------------------------------------


def test_regions_default_is_alpine_space_level_3(client: TestClient, alpine_l3: list[str]) -> None:
    """GET /regions is the 272 Alpine Space NUTS 3 regions, ids equal to the NUTS codes."""
    body = assert_geojson(client.get("/regions"))
    ids = [f["id"] for f in body["features"]]
    assert len(ids) == 272
    assert ids == alpine_l3
    props = body["features"][0]["properties"]
    assert {"LEVL_CODE", "CNTR_CODE", "NAME_LATN", "NUTS_NAME"} <= set(props)
    assert all(f["properties"]["LEVL_CODE"] == 3 for f in body["features"])
    assert all(f["properties"]["CNTR_CODE"] == f["id"][:2] for f in body["features"])


def test_regions_level_and_area(client: TestClient, settings: Settings) -> None:
    """Level and area select the regions: Alpine Space NUTS 2, countries, Austria's NUTS 2."""
    codes = named_areas(settings)["alpine-space"].codes
    nuts2 = assert_geojson(client.get("/regions", params={"level": 2}))
    assert [f["id"] for f in nuts2["features"]] == sorted(codes)
    countries = sorted({c[:2] for c in codes})
    level0 = client.get("/regions", params={"level": 0, "area": ",".join(countries)})
    assert [f["id"] for f in assert_geojson(level0)["features"]] == countries

    layer = load_boundaries(settings)
    at2 = assert_geojson(client.get("/regions", params={"level": 2, "area": "austria"}))
    expected_at = sorted(layer.index[(layer["LEVL_CODE"] == 2) & (layer["CNTR_CODE"] == "AT")])
    assert [f["id"] for f in at2["features"]] == expected_at


def test_regions_code_list(client: TestClient, settings: Settings) -> None:
    """A list of NUTS codes gives their descendants at the level."""
    body = assert_geojson(client.get("/regions", params={"level": 3, "area": "SI04,LI"}))
    layer = load_boundaries(settings)
    l3 = layer[layer["LEVL_CODE"] == 3].index
    assert [f["id"] for f in body["features"]] == sorted(
        c for c in l3 if c.startswith(("SI04", "LI"))
    )


# -- datasets ---------------------------------------------------------------------------------


def test_datasets(client: TestClient, demo_store: Store) -> None:
    """GET /datasets lists every stored dataset with indicators, years and a self link."""
    resp = client.get("/datasets")
    assert resp.status_code == 200
    items = TypeAdapter(list[Dataset]).validate_python(resp.json())
    assert [d.id for d in items] == demo_store.dataset_ids()
    for item in items:
        info = demo_store.dataset(item.id)
        assert [i.code for i in item.indicators] == [i.code for i in info.indicators]
        assert [i.years for i in item.indicators] == [i.years for i in info.indicators]
        assert item.links["self"].endswith(f"/datasets/{item.id}")
    assert all("content_hash" not in d for d in resp.json())


def test_dataset(client: TestClient, demo_store: Store) -> None:
    """GET /datasets/{id} describes one dataset; its years come from the stored values."""
    resp = client.get(f"/datasets/{GDP}")
    assert resp.status_code == 200
    item = Dataset.model_validate(resp.json())
    (ind,) = item.indicators
    obs = demo_store.observations(GDP, [ind.code], ind.years).dropna(subset=["value"])
    assert ind.years == sorted(obs["time"].unique().tolist())
    assert ind.n_regions == obs.groupby("time")["geo"].nunique().max()
    assert "Eurostat" in item.licence


# -- analyses ---------------------------------------------------------------------------------


def test_post_analysis_fills_the_defaults(
    client: TestClient, demo_store: Store, alpine_l3: list[str], default_analysis: dict
) -> None:
    """POST /analyses with only a dataset fills every documented default."""
    out = Analysis.model_validate(default_analysis)
    p = out.params
    first = demo_store.dataset(GDP).indicators[0]
    assert p.indicators == [first.code]
    obs = demo_store.observations(GDP, [first.code], first.years, geos=alpine_l3)
    share = obs.dropna(subset=["value"]).groupby("time")["geo"].nunique() / len(alpine_l3)
    assert p.years == [int(share[share >= COVERAGE_FOR_DEFAULT_YEAR].index.max())]
    assert (p.level, p.area, p.method, p.weights) == (3, "alpine-space", "gi_star", "queen")
    assert (p.permutations, p.seed, p.alpha, p.correction) == (999, DEFAULT_SEED, 0.05, "fdr")
    assert p.inference == "permutation"
    assert out.status == "done" and re.fullmatch(r"[0-9a-f]{16}", out.id)
    assert out.n_regions == len(alpine_l3)
    (series,) = out.series
    assert series["indicator"] == first.code and series["year"] == p.years[0]
    excluded = len(series["missing"]) + len(series["isolates"])
    assert sum(series["class_counts"].values()) + excluded == len(alpine_l3)
    assert set(out.links) == {"self", "regions", "catchments", "map"}


def test_same_request_same_id(client: TestClient, default_analysis: dict) -> None:
    """The same request, or the same request with the defaults spelt out, gives the same id."""
    again = client.post("/analyses", json={"dataset": GDP})
    assert again.status_code == 201
    assert again.json()["id"] == default_analysis["id"]
    spelt_out = client.post("/analyses", json=default_analysis["params"])
    assert spelt_out.json()["id"] == default_analysis["id"]
    other = post(client, seed=DEFAULT_SEED + 1, permutations=FEW)
    assert other.json()["id"] != default_analysis["id"]


def test_get_and_list_analyses(
    client: TestClient, default_analysis: dict, moran_analysis: dict
) -> None:
    """GET /analyses/{id} equals the POST answer; GET /analyses lists both analyses."""
    one = client.get(f"/analyses/{default_analysis['id']}")
    assert one.status_code == 200
    assert Analysis.model_validate(one.json()) == Analysis.model_validate(default_analysis)
    listing = client.get("/analyses")
    assert listing.status_code == 200
    ids = [a.id for a in AnalysisList.model_validate(listing.json()).analyses]
    assert {default_analysis["id"], moran_analysis["id"]} <= set(ids)


def test_local_moran(client: TestClient, moran_analysis: dict, alpine_l3: list[str]) -> None:
    """A Local Moran analysis reports LISA classes per region."""
    out = Analysis.model_validate(moran_analysis)
    assert out.params.method == "local_moran" and out.params.permutations == FEW
    (series,) = out.series
    assert set(series["class_counts"]) <= {
        "not significant",
        "HH",
        "LL",
        "LH",
        "HL",
        "undefined",
        "neighbourless",
    }
    assert sum(series["class_counts"].values()) == len(alpine_l3)
    body = assert_geojson(client.get(out.links["regions"].replace("http://testserver", "")))
    props = body["features"][0]["properties"]
    assert {"I", "quadrant", "cluster", "p_sim"} <= set(props)
    assert "z" not in props
    hh = {f["id"] for f in body["features"] if f["properties"]["cluster"] == 1}
    hot = {f["id"] for f in body["features"] if f["properties"]["hot"]}
    assert hh == hot


def test_analysis_regions_geojson(
    client: TestClient, default_analysis: dict, demo_store: Store, alpine_l3: list[str]
) -> None:
    """regions.geojson has every region with its value, statistics, class and catchment."""
    aid = default_analysis["id"]
    body = assert_geojson(client.get(f"/analyses/{aid}/regions.geojson"))
    features = body["features"]
    assert [f["id"] for f in features] == alpine_l3
    props = features[0]["properties"]
    assert {"value", "status", "z", "p_sim", "bin", "hot", "catchment", "NAME_LATN"} <= set(props)
    year = default_analysis["params"]["years"][0]
    assert all(f["properties"]["year"] == year for f in features)
    obs = demo_store.observations(GDP, ["EUR_HAB"], [year], geos=alpine_l3)
    values = obs.set_index("geo")["value"]
    for f in features:
        if f["properties"]["status"] == "missing":
            assert f["id"] not in values.index or pd.isna(values[f["id"]])
        else:
            assert f["properties"]["value"] == pytest.approx(values[f["id"]])
    for f in features:
        assert bool(f["properties"]["catchment"]) == bool(f["properties"]["hot"])


def test_analysis_catchments_geojson(client: TestClient, default_analysis: dict) -> None:
    """catchments.geojson has one feature per catchment, matching the regions' labels."""
    aid = default_analysis["id"]
    regions = assert_geojson(client.get(f"/analyses/{aid}/regions.geojson"))
    catch = assert_geojson(client.get(f"/analyses/{aid}/catchments.geojson"))
    labels: dict[str, set[str]] = {}
    for f in regions["features"]:
        if f["properties"]["catchment"]:
            labels.setdefault(f["properties"]["catchment"], set()).add(f["id"])
    got = {f["properties"]["catchment"]: f for f in catch["features"]}
    assert set(got) == set(labels)
    series = default_analysis["series"][0]
    assert len(catch["features"]) == len(series["catchments"])
    for cid, feature in got.items():
        p = feature["properties"]
        assert feature["id"] == f"{p['indicator']}-{p['year']}-{cid}"
        assert set(p["members"].split(",")) == labels[cid]
        assert p["n_regions"] == len(labels[cid])
        assert p["cross_border"] == (len(p["countries"].split(",")) > 1)
        assert p["area_km2"] > 0


def test_lists_of_indicators_and_years(two_units: tuple[TestClient, Store]) -> None:
    """Several indicators and years give one series each; ?indicator= and ?year= pick one."""
    client, store = two_units
    resp = client.post(
        "/analyses",
        json={
            "dataset": "gdp_two",
            "indicators": ["PPS_EU27_2020_HAB", "EUR_HAB"],
            "years": [2019, 2018],
            "permutations": FEW,
        },
    )
    assert resp.status_code == 201, resp.text
    out = Analysis.model_validate(resp.json())
    assert out.params.years == [2018, 2019]
    pairs = {(s["indicator"], s["year"]) for s in out.series}
    assert pairs == {(i, y) for i in ("PPS_EU27_2020_HAB", "EUR_HAB") for y in (2018, 2019)}
    base = f"/analyses/{out.id}/regions.geojson"
    first = assert_geojson(client.get(base))
    assert {f["properties"]["indicator"] for f in first["features"]} == {"PPS_EU27_2020_HAB"}
    assert {f["properties"]["year"] for f in first["features"]} == {2018}
    picked = assert_geojson(client.get(base, params={"indicator": "EUR_HAB", "year": 2019}))
    obs = store.observations("gdp_two", ["EUR_HAB"], [2019]).set_index("geo")["value"]
    for f in picked["features"]:
        assert f["properties"]["indicator"] == "EUR_HAB" and f["properties"]["year"] == 2019
        if f["properties"]["status"] != "missing":
            assert f["properties"]["value"] == pytest.approx(obs[f["id"]])
    catch = client.get(
        f"/analyses/{out.id}/catchments.geojson", params={"indicator": "EUR_HAB", "year": 2019}
    )
    for f in assert_geojson(catch)["features"]:
        assert f["id"].startswith("EUR_HAB-2019-C")


# -- map --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def map_page(client: TestClient, default_analysis: dict) -> str:
    resp = client.get(f"/maps/analyses/{default_analysis['id']}")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    return resp.text


def test_map_loads_leaflet_locally(client: TestClient, map_page: str) -> None:
    """The map loads Leaflet from /static/leaflet, which the service serves itself."""
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', map_page)
    assert "/static/leaflet/leaflet.js" in scripts
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', map_page)
    assert "/static/leaflet/leaflet.css" in styles
    js = client.get("/static/leaflet/leaflet.js")
    assert js.status_code == 200
    assert "javascript" in js.headers["content-type"]
    assert "Leaflet" in js.text[:2000] and len(js.text) > 10_000
    css = client.get("/static/leaflet/leaflet.css")
    assert css.status_code == 200 and ".leaflet-container" in css.text
    for ref in scripts + styles:
        assert ref.startswith("/static/"), ref
        assert client.get(ref).status_code == 200, ref


def test_map_has_no_cdn_reference(map_page: str) -> None:
    """No public CDN host appears anywhere on the map page."""
    lowered = map_page.lower()
    for host in CDN_HOSTS:
        assert host not in lowered, host
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', map_page)


def test_map_legend_and_correction_note(map_page: str, default_analysis: dict) -> None:
    """The legend lists every Gi* class and the note names the multiple-testing correction."""
    assert 'class="ac-panel ac-legend"' in map_page
    for _, label in legend_entries("gi_star"):
        assert html.escape(label) in map_page, label
    p = default_analysis["params"]
    assert html.escape(CORRECTION_TEXT[p["correction"]]) in map_page
    assert f"{p['permutations']:,} conditional permutations" in map_page


def test_map_popups_show_latin_and_national_names(
    map_page: str, settings: Settings, alpine_l3: list[str]
) -> None:
    """The popups' names: each region's Latin-script name beside its national name."""
    found = re.search(r"var atlas_data_[0-9a-f]+ = (\{.*?\});\n", map_page, re.S)
    assert found is not None
    payload = json.loads(found.group(1))
    layer = load_boundaries(settings).loc[alpine_l3]
    assert payload["ids"] == alpine_l3
    names = dict(zip(payload["ids"], payload["names"], strict=True))
    for code, row in layer.iterrows():
        assert names[code][:3] == [row["NAME_LATN"], row["NUTS_NAME"], row["CNTR_CODE"]]
    assert payload["text"]["name"] != payload["text"]["national"]


def test_map_of_one_series(two_units: tuple[TestClient, Store]) -> None:
    """The map page can show another indicator and year of the analysis."""
    client, _ = two_units
    listing = client.get("/analyses").json()["analyses"]
    aid = listing[0]["id"]
    resp = client.get(f"/maps/analyses/{aid}", params={"indicator": "EUR_HAB", "year": 2019})
    assert resp.status_code == 200
    found = re.search(r"var atlas_data_[0-9a-f]+ = (\{.*?\});\n", resp.text, re.S)
    assert found is not None and json.loads(found.group(1))["year"] == 2019


# -- problems ---------------------------------------------------------------------------------

BAD_GETS = {
    "unknown-area": ("/regions?area=atlantis", 400),
    "unknown-code-in-list": ("/regions?area=AT3,ATX32", 400),
    "finer-code-than-level": ("/regions?level=2&area=AT332", 400),
    "level-7": ("/regions?level=7", 422),
    "empty-area": ("/regions?area=", 422),
    "unknown-dataset": ("/datasets/no_such_dataset", 404),
    "unknown-analysis": ("/analyses/0123456789abcdef", 404),
    "unknown-analysis-regions": ("/analyses/0123456789abcdef/regions.geojson", 404),
    "unknown-analysis-catchments": ("/analyses/0123456789abcdef/catchments.geojson", 404),
    "unknown-analysis-map": ("/maps/analyses/0123456789abcdef", 404),
    "unknown-route": ("/no/such/route", 404),
}


@pytest.mark.parametrize(("url", "status"), list(BAD_GETS.values()), ids=list(BAD_GETS))
def test_bad_get_is_a_problem(client: TestClient, url: str, status: int) -> None:
    """Bad GET requests answer 4xx application/problem+json."""
    assert_problem(client.get(url), status)


def test_unknown_area_problem_lists_named_areas(client: TestClient, settings: Settings) -> None:
    """The unknown-area problem names the valid named areas."""
    body = assert_problem(client.get("/regions", params={"area": "atlantis"}), 400)
    assert body["code"] == "unknown-area"
    for name in named_areas(settings):
        assert name in body["detail"]


def test_unknown_dataset_problem_lists_datasets(client: TestClient, demo_store: Store) -> None:
    """The unknown-dataset problem names the valid datasets and the closest one."""
    body = assert_problem(client.get("/datasets/nama_10r_3gpd"), 404)
    assert body["code"] == "unknown-dataset"
    assert re.search(rf"did you mean \W*{GDP}\b", body["detail"]), body["detail"]
    for ds in demo_store.dataset_ids():
        assert ds in body["detail"]


BAD_POSTS: dict[str, tuple[dict[str, Any], int]] = {
    "unknown-dataset": ({"dataset": "no_such_dataset"}, 404),
    "unknown-area": ({"dataset": GDP, "area": "atlantis"}, 400),
    "unknown-indicator": ({"dataset": GDP, "indicators": ["NOPE"]}, 400),
    "year-without-data": ({"dataset": GDP, "years": [1950]}, 400),
    "bad-weights": ({"dataset": GDP, "weights": "hexagonal"}, 422),
    "knn-0": ({"dataset": GDP, "weights": "knn:0"}, 422),
    "knn-too-many": ({"dataset": GDP, "weights": "knn:400", "permutations": 9}, 400),
    "negative-distance": ({"dataset": GDP, "weights": "distance:-5"}, 422),
    "permutations-negative": ({"dataset": GDP, "permutations": -1}, 422),
    "permutations-100000": ({"dataset": GDP, "permutations": 100_000}, 422),
    "permutations-0-with-permutation-inference": ({"dataset": GDP, "permutations": 0}, 400),
    "alpha-0": ({"dataset": GDP, "alpha": 0}, 422),
    "alpha-1": ({"dataset": GDP, "alpha": 1}, 422),
    "alpha-1.5": ({"dataset": GDP, "alpha": 1.5}, 422),
    "bad-correction": ({"dataset": GDP, "correction": "holm"}, 422),
    "bad-method": ({"dataset": GDP, "method": "kriging"}, 422),
    "bad-inference": ({"dataset": GDP, "inference": "exact"}, 422),
    "level-7": ({"dataset": GDP, "level": 7}, 422),
    "level-too-coarse-for-area": ({"dataset": GDP, "level": 1}, 400),  # area is NUTS 2
    "extra-field": ({"dataset": GDP, "colour": "red"}, 422),
    "no-dataset": ({}, 422),
    "empty-years": ({"dataset": GDP, "years": []}, 422),
    "negative-seed": ({"dataset": GDP, "seed": -1}, 422),
    "area-without-values": ({"dataset": GDP, "area": "LI", "permutations": 9}, 400),
}


@pytest.mark.parametrize(("body", "status"), list(BAD_POSTS.values()), ids=list(BAD_POSTS))
def test_bad_analysis_request_is_a_problem(
    client: TestClient, body: dict[str, Any], status: int
) -> None:
    """Bad POST /analyses bodies answer 4xx application/problem+json, never 500."""
    assert_problem(client.post("/analyses", json=body), status)


@pytest.mark.parametrize(
    "content",
    [b'{"dataset": ', b"dataset=nama_10r_3gdp", b"[]", b""],
    ids=["truncated-json", "form-encoded", "json-array", "empty-body"],
)
def test_malformed_body_is_a_problem(client: TestClient, content: bytes) -> None:
    """A body that is not a JSON object answers 422 problem+json."""
    resp = client.post("/analyses", content=content, headers={"content-type": "application/json"})
    body = assert_problem(resp, 422)
    assert body["code"] == "invalid-request"


def test_validation_problem_names_the_field(client: TestClient) -> None:
    """A validation problem lists the offending field and its reason."""
    body = assert_problem(post(client, permutations=-1), 422)
    locations = [e["location"] for e in body["errors"]]
    assert "body.permutations" in locations
    assert "permutations" in body["detail"]


BAD_SERIES = {
    "year-not-in-analysis": ({"year": 1999}, 400),
    "indicator-not-in-analysis": ({"indicator": "NOPE"}, 400),
    "year-not-a-number": ({"year": "abc"}, 422),
    "year-out-of-range": ({"year": 1800}, 422),
}


@pytest.mark.parametrize(("query", "status"), list(BAD_SERIES.values()), ids=list(BAD_SERIES))
@pytest.mark.parametrize(
    "path",
    ["/analyses/{id}/regions.geojson", "/analyses/{id}/catchments.geojson", "/maps/analyses/{id}"],
    ids=["regions", "catchments", "map"],
)
def test_bad_series_is_a_problem(
    client: TestClient, default_analysis: dict, path: str, query: dict, status: int
) -> None:
    """Asking an analysis for a series it lacks answers 4xx problem+json."""
    url = path.format(id=default_analysis["id"])
    assert_problem(client.get(url, params=query), status)


def test_method_not_allowed_is_a_problem(client: TestClient) -> None:
    """A wrong method answers 405 problem+json."""
    assert_problem(client.delete("/datasets"), 405)


def test_unexpected_error_is_a_generic_500(settings: Settings) -> None:
    """An exception inside an endpoint answers 500 problem+json without its text."""
    app = create_app(settings)
    secret = "secret-detail-that-must-not-leak"

    @app.get("/test-only/boom")
    def boom() -> None:
        raise RuntimeError(secret)

    with TestClient(app, raise_server_exceptions=False) as c:
        resp = c.get("/test-only/boom")
    body = assert_problem_500(resp)
    assert secret not in resp.text
    assert "RuntimeError" not in resp.text
    assert body["code"] == "internal-error"


def assert_problem_500(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 500
    assert resp.headers["content-type"].split(";")[0] == "application/problem+json"
    body = resp.json()
    assert set(body) >= PROBLEM_MEMBERS
    assert body["status"] == 500
    return body  # type: ignore[no-any-return]


def test_results_survive_a_new_app(settings: Settings, default_analysis: dict) -> None:
    """A stored analysis is served by a fresh app on the same store (nothing held in memory)."""
    with TestClient(create_app(settings)) as c:
        resp = c.get(f"/analyses/{default_analysis['id']}")
    assert resp.status_code == 200
    assert resp.json()["id"] == default_analysis["id"]
    params = AnalysisParams.model_validate(resp.json()["params"])
    assert params.dataset == GDP
