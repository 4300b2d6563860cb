"""Emerging hot spots and similar regions over HTTP: the JSON, GeoJSON and CSV against
geo.emerging.emerging_hot_spots and geo.similar.similar_regions called directly on the same
inputs (read from the store and the boundaries independently of geo.s3_views), RFC 7946
rules checked with shapely, the map pages rendered in Debian's headless Chromium, and bad
parameters answered 4xx in problem+json.

Data: GDP per inhabitant (nama_10r_3gdp EUR_HAB) of the demo store over the Alpine Space
NUTS 3 regions, 2010-2020; for Trento (ITH2) at NUTS 2, the three demo indicators
aggregated from NUTS 3 to NUTS 2 by plain pandas (population summed, density as summed
population over summed EPSG:3035 area, GDP per inhabitant weighted by population), stored in
a store of this module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import shapely.geometry
from fastapi.testclient import TestClient

from geo.areas import resolve
from geo.boundaries import layer_key, load_boundaries
from geo.emerging import CATEGORIES, emerging_hot_spots
from geo.indicators import EUROSTAT_LICENCE, upload_frame
from geo.settings import Settings
from geo.similar import similar_regions
from geo.store import Store
from geo.uploads import UploadRequest
from geo.weights import cached_weights
from maps.emerging import category_names
from maps.i18n import Text
from services.s3_schemas import EmergingResult, SimilarResult
from tests.browser import CHROMIUM, live_server

GDP, EUR_HAB = "nama_10r_3gdp", "EUR_HAB"
YEARS = list(range(2010, 2021))
QUERY = {"start": 2010, "end": 2020, "permutations": 199, "seed": 7, "correction": "none"}
NUTS2 = "demo_nuts2"


def reference_emerging(settings: Settings, store: Store, **kw: Any) -> pd.DataFrame:
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, "alpine-space", 3)
    obs = store.observations(GDP, [EUR_HAB], YEARS, geos=ids)
    panel = obs.pivot(index="geo", columns="time", values="value").reindex(ids)
    weights = cached_weights(
        layer.loc[ids, ["geometry"]], "queen", settings.cache_dir, layer_key(settings)
    )
    return emerging_hot_spots(panel, weights, **kw)


@pytest.fixture(scope="module")
def expected(settings: Settings, demo_store: Store) -> pd.DataFrame:
    return reference_emerging(
        settings, demo_store, permutations=199, seed=7, alpha=0.05, correction="none"
    )


def assert_rfc7946(body: dict[str, Any]) -> None:
    assert body["type"] == "FeatureCollection" and "crs" not in body
    for feature in body["features"]:
        assert feature["type"] == "Feature" and isinstance(feature["id"], str)
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid and not geom.is_empty
        minx, miny, maxx, maxy = geom.bounds
        assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
        for poly in getattr(geom, "geoms", [geom]):
            assert poly.exterior.is_ccw  # RFC 7946 section 3.1.6: exteriors counter-clockwise


def assert_problem(resp: Any, status: int) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body = resp.json()
    assert body["status"] == status and body["detail"] and body["code"]


# -- emerging hot spots -----------------------------------------------------------------


def test_emerging_json_equals_the_library(client: TestClient, expected: pd.DataFrame) -> None:
    resp = client.get(f"/datasets/{GDP}/emerging", params=QUERY)
    assert resp.status_code == 200, resp.text
    body = EmergingResult.model_validate(resp.json())
    assert body.parameters.years == YEARS and body.parameters.permutations == 199
    assert [r.region for r in body.regions] == list(expected.index)
    assert [r.category for r in body.regions] == expected["category"].tolist()
    assert [r.n_hot for r in body.regions] == expected["n_hot"].tolist()
    assert [r.n_cold for r in body.regions] == expected["n_cold"].tolist()
    got = np.array([np.nan if r.trend_z is None else r.trend_z for r in body.regions])
    np.testing.assert_allclose(got, expected["trend_z"], rtol=1e-12, equal_nan=True)
    first = body.regions[0]
    assert first.hot_years == [y for y in YEARS if expected.iloc[0][f"bin_{y}"] == 1]
    # counts: every category, zeros included, summing to the regions
    assert list(body.counts) == list(CATEGORIES)
    assert sum(body.counts.values()) == len(expected) == 272
    assert (
        body.counts
        == expected["category"].value_counts().reindex(CATEGORIES, fill_value=0).to_dict()
    )
    assert body.counts["no_pattern"] < len(expected)  # the uncorrected demo has patterns


def test_emerging_geojson_and_csv(client: TestClient, expected: pd.DataFrame) -> None:
    resp = client.get(f"/datasets/{GDP}/emerging", params={**QUERY, "f": "geojson"})
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/geo+json")
    body = resp.json()
    assert_rfc7946(body)
    props = {f["id"]: f["properties"] for f in body["features"]}
    assert list(props) == list(expected.index)
    for code, row in expected.iterrows():
        p = props[code]
        assert p["category"] == row["category"] and p["label"] == row["label"]
        assert p["n_hot"] == row["n_hot"] and p["n_cold"] == row["n_cold"]
        for key in ("trend_z", "trend_p"):
            assert (p[key] is None and np.isnan(row[key])) or np.isclose(p[key], row[key])
    csv_resp = client.get(f"/datasets/{GDP}/emerging", params={**QUERY, "f": "csv"})
    assert csv_resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_resp.text)))
    assert [r["region"] for r in rows] == list(expected.index)
    assert [r["category"] for r in rows] == expected["category"].tolist()
    assert not any(v.startswith(("=", "+", "@")) for r in rows for v in r.values() if v)


def test_emerging_default_correction_is_fdr(
    client: TestClient, settings: Settings, demo_store: Store
) -> None:
    resp = client.get(f"/datasets/{GDP}/emerging", params={"start": 2010, "end": 2020})
    body = EmergingResult.model_validate(resp.json())
    p = body.parameters
    assert (p.correction, p.permutations, p.alpha, p.weights) == ("fdr", 999, 0.05, "queen")
    ref = reference_emerging(settings, demo_store, permutations=999, seed=p.seed)
    assert [r.category for r in body.regions] == ref["category"].tolist()


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        (f"/datasets/{GDP}/emerging", {"start": 2015, "end": 2018}, 400),  # fewer than 6 years
        (f"/datasets/{GDP}/emerging", {"indicator": "NOPE"}, 400),
        (f"/datasets/{GDP}/emerging", {"start": 2020, "end": 2010}, 400),
        (f"/datasets/{GDP}/emerging", {"weights": "hexagons"}, 400),
        (f"/datasets/{GDP}/emerging", {"area": "atlantis"}, 400),
        (f"/datasets/{GDP}/emerging", {"alpha": 2}, 422),
        (f"/datasets/{GDP}/emerging", {"area": "europe", "permutations": 99_999}, 400),
        (f"/datasets/{GDP}/emerging", {"level": 2, "start": 2010, "end": 2020}, 400),  # no data
        ("/datasets/nope/emerging", {}, 404),
        (f"/maps/datasets/{GDP}/emerging", {"start": 2019, "end": 2020}, 400),
        ("/regions/ITH20/similar", {"dataset": "nope"}, 404),
        ("/regions/XX99/similar", {"dataset": GDP}, 400),
        ("/regions/ITH20/similar", {"dataset": GDP, "indicators": "NOPE"}, 400),
        ("/regions/ITH20/similar", {"dataset": GDP, "year": 1950}, 400),
        ("/regions/ITH20/similar", {"dataset": GDP, "k": 0}, 422),
        ("/regions/ITH2/similar", {"dataset": GDP}, 400),  # no NUTS 2 data in the demo
        ("/maps/regions/ITH20/similar", {"dataset": GDP, "area": "austria"}, 400),
    ],
    ids=lambda v: str(v) if not isinstance(v, dict) else "&".join(f"{k}={x}" for k, x in v.items()),
)
def test_bad_parameters_are_problems(
    client: TestClient, path: str, params: dict[str, Any], status: int
) -> None:
    assert_problem(client.get(path, params=params), status)


def test_emerging_map_page_has_the_category_legend(client: TestClient) -> None:
    resp = client.get(f"/maps/datasets/{GDP}/emerging", params=QUERY)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    for name in category_names(Text("en")).values():
        assert name in resp.text
    german = client.get(f"/maps/datasets/{GDP}/emerging", params={**QUERY, "lang": "de"})
    assert "Entstehende Hotspots" in german.text and '<html lang="de">' in german.text
    embed = client.get(f"/maps/datasets/{GDP}/emerging", params={**QUERY, "embed": 1})
    assert "ac-title" not in embed.text.split("<body>")[1].split("<script>")[0]
    standalone = client.get(f"/maps/datasets/{GDP}/emerging", params={**QUERY, "f": "standalone"})
    assert "attachment" in standalone.headers["content-disposition"]
    assert 'src="/static' not in standalone.text
    geo = client.get(f"/maps/datasets/{GDP}/emerging", params={**QUERY, "f": "geojson"}).json()
    assert_rfc7946(geo)


# -- similar regions ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def nuts2_store(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Store:
    """A store of this module with the demo indicators aggregated to NUTS 2 (pandas)."""
    layer = load_boundaries(settings)
    nuts3 = layer[layer["LEVL_CODE"] == 3]
    km2 = nuts3.geometry.to_crs(3035).area / 1e6
    pop = demo_store.observations("demo_r_pjanaggr3", ["NR"], YEARS)
    gdp = demo_store.observations(GDP, [EUR_HAB], YEARS)
    both = pop.merge(gdp, on=["geo", "time"], suffixes=("_pop", "_gdp"))
    both = both[both["geo"].isin(nuts3.index)].assign(parent=lambda d: d["geo"].str[:4])
    both["km2"] = both["geo"].map(km2)
    both["gdp"] = both["value_pop"] * both["value_gdp"]
    sums = both.groupby(["parent", "time"])[["value_pop", "km2", "gdp"]].sum(min_count=1)
    sums = sums[sums.index.get_level_values(0).isin(layer.index)].reset_index()
    frame = pd.concat(
        [
            sums.assign(indicator="NR", value=sums["value_pop"]),
            sums.assign(indicator="PER_KM2", value=sums["value_pop"] / sums["km2"]),
            sums.assign(indicator=EUR_HAB, value=sums["gdp"] / sums["value_pop"]),
        ]
    ).rename(columns={"parent": "geo"})[["indicator", "geo", "time", "value"]]
    frame["flag"] = ""
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('nuts2') / 'store.db'}")
    request = UploadRequest(
        dataset_id=NUTS2,
        title="Demo indicators at NUTS 2",
        description="Population, density and GDP per inhabitant aggregated from NUTS 3.",
        source="Derived from Eurostat demo_r_pjanaggr3 and nama_10r_3gdp",
        licence=EUROSTAT_LICENCE,
        uploader="tests",
        labels={
            "NR": ("Population on 1 January", "NR"),
            "PER_KM2": ("Population density", "persons per km²"),
            EUR_HAB: ("GDP per inhabitant", "EUR_HAB"),
        },
        levels=(2,),
    )
    upload_frame(settings, store, frame, request)
    return store


@pytest.fixture(scope="module")
def nuts2_client(settings: Settings, nuts2_store: Store) -> Iterator[TestClient]:
    from services.app import create_app

    variant = settings.model_copy(update={"database_url": str(nuts2_store.engine.url)})
    with TestClient(create_app(variant)) as c:
        yield c


def reference_similar(
    settings: Settings, store: Store, region: str, year: int, **kw: Any
) -> pd.DataFrame:
    layer = load_boundaries(settings)
    level = int(layer.at[region, "LEVL_CODE"])
    ids = sorted(layer.index[layer["LEVL_CODE"] == level])
    obs = store.observations(NUTS2 if level == 2 else GDP, None, [year], geos=ids)
    values = obs.pivot(index="geo", columns="indicator", values="value")
    return similar_regions(values, region, **kw)


@pytest.mark.parametrize("exclude", [False, True], ids=["with-italy", "exclude-country"])
def test_trento_similar_equals_the_library(
    nuts2_client: TestClient, settings: Settings, nuts2_store: Store, exclude: bool
) -> None:
    params = {"dataset": NUTS2, "k": 5, "exclude_country": str(exclude).lower()}
    resp = nuts2_client.get("/regions/ITH2/similar", params=params)
    assert resp.status_code == 200, resp.text
    body = SimilarResult.model_validate(resp.json())
    assert body.parameters.level == 2 and body.region.region == "ITH2"
    assert sorted(body.parameters.indicators) == sorted(["NR", "PER_KM2", EUR_HAB])
    ref = reference_similar(
        settings, nuts2_store, "ITH2", body.parameters.year, k=5, exclude_country=exclude
    )
    assert [r.region for r in body.similar] == ref["region"].tolist()
    np.testing.assert_allclose([r.distance for r in body.similar], ref["distance"], rtol=1e-10)
    assert [r.rank for r in body.similar] == [1, 2, 3, 4, 5]
    for row, (_i, r) in zip(body.similar, ref.iterrows(), strict=True):
        for code, z in row.z.items():
            assert z == pytest.approx(r[f"z_{code}"], rel=1e-10)
    if exclude:
        assert not any(r.region.startswith("IT") for r in body.similar)
    geo = nuts2_client.get("/regions/ITH2/similar", params={**params, "f": "geojson"}).json()
    assert_rfc7946(geo)
    assert [f["id"] for f in geo["features"]] == ["ITH2", *ref["region"]]
    table = nuts2_client.get("/regions/ITH2/similar", params={**params, "f": "csv"}).text
    assert [r["region"] for r in csv.DictReader(io.StringIO(table))] == ["ITH2", *ref["region"]]


def test_similar_default_year_is_the_latest_complete(
    nuts2_client: TestClient, nuts2_store: Store
) -> None:
    body = nuts2_client.get("/regions/ITH2/similar", params={"dataset": NUTS2}).json()
    obs = nuts2_store.observations(NUTS2, None, None, geos=["ITH2"]).dropna(subset=["value"])
    complete = obs.groupby("time")["indicator"].nunique()
    assert body["parameters"]["year"] == int(complete[complete == 3].index.max())


def test_similar_map_page(nuts2_client: TestClient) -> None:
    params = {"dataset": NUTS2, "exclude_country": "true"}
    resp = nuts2_client.get("/maps/regions/ITH2/similar", params=params)
    assert resp.status_code == 200
    body = nuts2_client.get("/regions/ITH2/similar", params=params).json()
    for row in body["similar"]:
        assert f'<th scope="row">{row["region"]}</th>' in resp.text
    assert "Regions most similar to Provincia Autonoma di Trento (ITH2)" in resp.text


# -- in the browser -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is missing: `make browser` installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        yield chromium
        chromium.close()


def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda req: errors.append(f"failed: {req.url}"))
    page.goto(url)
    page.wait_for_function("() => window.acReady === true", timeout=30_000)
    return page, errors


def test_maps_in_chromium(browser: Any, settings: Settings, nuts2_store: Store) -> None:
    from services.app import create_app

    with live_server(create_app(settings)) as base:
        query = "&".join(f"{k}={v}" for k, v in QUERY.items())
        page, errors = open_page(browser, f"{base}/maps/datasets/{GDP}/emerging?{query}")
        legend = page.locator(".ac-legend").inner_text()
        for name in category_names(Text("en")).values():
            assert name in legend
        assert page.locator("path.leaflet-interactive").count() >= 272
        page.select_option("#ac-find", "ITC20")  # Valle d'Aosta, by keyboard-operable list
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(state="visible", timeout=5000)
        text = popup.inner_text()
        assert "Valle d’Aosta" in text or "Valle d'Aosta" in text
        assert "Category" in text and "Hot-spot years" in text
        assert not errors, errors
        page.context.close()
    variant = settings.model_copy(update={"database_url": str(nuts2_store.engine.url)})
    with live_server(create_app(variant)) as base:
        url = f"{base}/maps/regions/ITH2/similar?dataset={NUTS2}&exclude_country=true"
        page, errors = open_page(browser, url)
        labels = page.locator(".ac-catchment-label").all_inner_texts()
        assert sorted(labels) == sorted(["ITH2", "1", "2", "3", "4", "5"])
        assert page.locator(".ac-members table tbody tr").count() == 5
        assert not errors, errors
        page.context.close()
