"""The planners' pages over HTTP: the start page and its form, the result, catchment and
indicator maps with their downloads, embedding and languages. The references are the JSON
API of the same service, the store, the boundaries, libpysal and mapclassify."""

from __future__ import annotations

import html
import io
import json
import re
import time
from html.parser import HTMLParser
from typing import Any

import geopandas as gpd
import libpysal
import mapclassify
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo.boundaries import load_boundaries
from geo.settings import Settings
from geo.store import Store
from maps import messages
from maps.classify import SCHEMES
from maps.i18n import LOCALE_DIR, languages
from maps.styles import class_of, legend_entries
from tests.test_api import CDN_HOSTS

LANGUAGES = ["de", "fr", "it", "sl"]  # beside English, the Alpine Space's languages
PAYLOAD = re.compile(r"var atlas_data_[0-9a-f]+ = (\{.*?\});\n", re.S)


def payload(page: str) -> dict[str, Any]:
    found = PAYLOAD.search(page)
    assert found is not None, "the page embeds no atlas payload"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside ``<th scope=row>``."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.row_heads: list[str] = []
        self._in_row_head = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_row_head = tag == "th" and dict(attrs).get("scope") == "row"

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._in_row_head = False

    def handle_data(self, data: str) -> None:
        if self._in_row_head and data.strip():
            self.row_heads.append(data.strip())

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())
        ]


def gdp_years(client: TestClient) -> list[int]:
    gdp = next(d for d in client.get("/datasets").json() if d["id"] == "nama_10r_3gdp")
    return list(next(i["years"] for i in gdp["indicators"] if i["code"] == "EUR_HAB"))


@pytest.fixture(scope="module")
def two_years(client: TestClient) -> list[int]:
    """The default year of a GDP analysis (well covered) and the year before."""
    latest = client.post("/analyses", json={"dataset": "nama_10r_3gdp"}).json()["params"]
    year = latest["years"][0]
    assert year - 1 in gdp_years(client)
    return [year - 1, year]


@pytest.fixture(scope="module")
def analysis(client: TestClient, two_years: list[int]) -> dict[str, Any]:
    body = {"dataset": "nama_10r_3gdp", "years": two_years, "correction": "none"}
    resp = client.post("/analyses", json=body)
    assert resp.status_code in (200, 201), resp.text
    out: dict[str, Any] = resp.json()
    assert any(s["catchments"] for s in out["series"]), "no catchment to test with"
    return out


@pytest.fixture(scope="module")
def result_page(client: TestClient, analysis: dict[str, Any]) -> str:
    resp = client.get(f"/maps/analyses/{analysis['id']}")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    return resp.text


def api_regions(client: TestClient, aid: str, year: int) -> list[dict[str, Any]]:
    resp = client.get(f"/analyses/{aid}/regions.geojson", params={"year": year})
    assert resp.status_code == 200
    features: list[dict[str, Any]] = resp.json()["features"]
    return features


# -- start page -------------------------------------------------------------------------------


def test_start_page_lists_datasets_and_labels_every_field(
    client: TestClient, analysis: dict[str, Any]
) -> None:
    page = client.get("/").text
    for d in client.get("/datasets").json():
        assert d["title"] in page and d["source"] in page
        for ind in d["indicators"]:
            assert ind["label"] in page
            assert f"{ind['years'][0]}–{ind['years'][-1]}" in page
    html = Elements(page)
    labelled = {a["for"] for a in html.find("label") if a.get("for")}
    for field in (
        "dataset",
        "indicator",
        "years",
        "area",
        "codes",
        "level",
        "weights",
        "alpha",
        "correction",
        "permutations",
    ):
        control = html.find("select", name=field) + html.find("input", name=field)
        assert control, field
        assert control[0]["id"] in labelled, field
    assert html.find("input", name="method", value="gi_star")
    assert f"/maps/analyses/{analysis['id']}" in page
    for ref in [a.get("src") for a in html.find("script")] + [
        a.get("href") for a in html.find("link", rel="stylesheet")
    ]:
        assert ref and ref.startswith("/static/"), ref
    assert not any(host in page.lower() for host in CDN_HOSTS)


def test_the_form_starts_the_analysis_it_describes(
    client: TestClient, two_years: list[int]
) -> None:
    form = {
        "dataset": "nama_10r_3gdp",
        "indicator": "EUR_HAB",
        "years": [str(y) for y in two_years],
        "area": "alpine-space",
        "level": "3",
        "method": "local_moran",
        "weights": "rook",
        "alpha": "0.1",
        "correction": "bonferroni",
        "permutations": "199",
    }
    resp = client.post("/maps/analyses", data=form, follow_redirects=False)
    assert resp.status_code == 303
    aid = re.fullmatch(r"/maps/analyses/([0-9a-f]{16})", resp.headers["location"]).group(1)  # type: ignore[union-attr]
    params = client.get(f"/analyses/{aid}").json()["params"]
    expected = {k: form[k] for k in ("dataset", "area", "method", "weights", "correction")}
    assert {k: params[k] for k in expected} == expected
    assert params["years"] == two_years and params["indicators"] == ["EUR_HAB"]
    assert (params["level"], params["alpha"], params["permutations"]) == (3, 0.1, 199)
    for _ in range(600):  # at most a minute
        if client.get(f"/analyses/{aid}").json()["status"] in ("done", "failed"):
            break
        time.sleep(0.1)
    assert client.get(f"/analyses/{aid}").json()["status"] == "done"
    page = client.get(resp.headers["location"])
    assert page.status_code == 200


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"indicator": "NOPE"}, "NOPE"),
        ({"permutations": "-5"}, "permutations"),
        ({"area": "custom", "codes": "XX99"}, "XX99"),
    ],
    ids=["unknown-indicator", "negative-permutations", "unknown-code"],
)
def test_a_bad_form_comes_back_with_its_problem(
    client: TestClient, change: dict[str, str], named: str
) -> None:
    before = len(client.get("/analyses").json()["analyses"])
    form = {"dataset": "nama_10r_3gdp", "indicator": "EUR_HAB", **change}
    resp = client.post("/maps/analyses", data=form, follow_redirects=False)
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
    alert = re.search(r'<div class="errors" role="alert".*?</div>', resp.text, re.S)
    assert alert is not None and named in alert.group(0)
    assert 'id="analysis-form"' in resp.text
    assert len(client.get("/analyses").json()["analyses"]) == before


# -- result map -------------------------------------------------------------------------------


def test_result_payload_equals_the_api(
    client: TestClient, settings: Settings, analysis: dict[str, Any], result_page: str
) -> None:
    data = payload(result_page)
    aid, method = analysis["id"], analysis["params"]["method"]
    assert data["years"] == analysis["params"]["years"]
    for year in data["years"]:
        rows = {f["id"]: f["properties"] for f in api_regions(client, aid, year)}
        assert data["ids"] == sorted(rows)
        s = data["series"][str(year)]
        for i, code in enumerate(data["ids"]):
            row = rows[code]
            if row["value"] is None:
                assert s["v"][i] is None
            else:
                assert s["v"][i] == pytest.approx(row["value"], rel=1e-9)
            if row["z"] is not None:
                assert s["s"][i] == pytest.approx(row["z"], abs=5e-4)
            assert s["c"][i] == (row["catchment"] or "")
            assert data["classes"][s["k"][i]][1] == class_of(method, row)[1]
        catch = client.get(f"/analyses/{aid}/catchments.geojson", params={"year": year}).json()
        mine = [
            f["properties"]
            for f in data["catchments"]["features"]
            if f["properties"]["year"] == year
        ]
        theirs = [f["properties"] for f in catch["features"]]
        assert [(c["catchment"], c["n_regions"], c["members"]) for c in mine] == [
            (c["catchment"], c["n_regions"], c["members"]) for c in theirs
        ]
    layer = load_boundaries(settings).loc[data["ids"]]
    queen = libpysal.weights.Queen.from_dataframe(layer, use_index=True, silence_warnings=True)
    for i, code in enumerate(data["ids"]):
        assert {data["ids"][j] for j in data["neighbours"][i]} == set(queen.neighbors[code])


def test_result_downloads(client: TestClient, analysis: dict[str, Any]) -> None:
    aid, year = analysis["id"], analysis["params"]["years"][0]
    rows = {f["id"]: f["properties"] for f in api_regions(client, aid, year)}
    csv = client.get(f"/maps/analyses/{aid}", params={"year": year, "f": "csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    table = pd.read_csv(io.StringIO(csv.text)).set_index("region")
    assert sorted(table.index) == sorted(rows)
    np.testing.assert_allclose(
        table["value"].to_numpy(), [rows[c]["value"] or np.nan for c in table.index]
    )
    geo = client.get(f"/maps/analyses/{aid}", params={"year": year, "f": "geojson"}).json()
    assert sorted(f["id"] for f in geo["features"]) == sorted(rows)
    alone = client.get(f"/maps/analyses/{aid}", params={"f": "standalone"})
    assert "attachment" in alone.headers["content-disposition"]
    assert not re.search(r'(?:src|href)="/static', alone.text)
    assert "leaflet" in alone.text.lower() and "AC.layer" in alone.text


def test_result_map_size_embed_and_bad_year(
    client: TestClient, analysis: dict[str, Any], result_page: str
) -> None:
    assert len(result_page.encode()) < 1.5e6  # the 272 Alpine NUTS-3 regions, two years
    assert 'class="ac-panel ac-title"' in result_page and "ac-summary" in result_page
    embed = client.get(f"/maps/analyses/{analysis['id']}", params={"embed": 1}).text
    assert "ac-title" not in embed and "ac-summary" not in embed and "ac-legend" in embed
    absent = sorted(set(gdp_years(client)) - set(analysis["params"]["years"]))[0]
    resp = client.get(f"/maps/analyses/{analysis['id']}", params={"year": absent})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")


def test_browsers_get_problems_as_pages(client: TestClient) -> None:
    resp = client.get("/maps/analyses/0123456789abcdef", headers={"Accept": "text/html"})
    assert resp.status_code == 404 and resp.headers["content-type"].startswith("text/html")
    api = client.get("/maps/analyses/0123456789abcdef").json()
    assert api["detail"] in resp.text.replace("&#39;", "'")


# -- catchment page ---------------------------------------------------------------------------


def test_catchment_pages_list_their_members(client: TestClient, analysis: dict[str, Any]) -> None:
    aid = analysis["id"]
    for series in analysis["series"]:
        for catchment in series["catchments"]:
            cid, query = catchment["catchment"], {"year": series["year"]}
            resp = client.get(f"/maps/analyses/{aid}/catchments/{cid}", params=query)
            assert resp.status_code == 200
            panel = resp.text[resp.text.index('class="ac-panel ac-members"') :]
            members = Elements(panel).row_heads
            assert members == catchment["members"].split(",")
            geo = client.get(
                f"/maps/analyses/{aid}/catchments/{cid}", params={**query, "f": "geojson"}
            ).json()
            assert sorted(f["id"] for f in geo["features"]) == sorted(members)


def test_unknown_catchment_names_the_valid_ones(
    client: TestClient, analysis: dict[str, Any]
) -> None:
    series = analysis["series"][-1]
    resp = client.get(
        f"/maps/analyses/{analysis['id']}/catchments/C999", params={"year": series["year"]}
    )
    assert resp.status_code == 404
    assert resp.headers["content-type"].startswith("application/problem+json")
    for c in series["catchments"]:
        assert c["catchment"] in resp.json()["detail"]


# -- indicator map ----------------------------------------------------------------------------

INDICATOR = "/maps/datasets/nama_10r_3gdp"


@pytest.fixture(scope="module")
def alpine_values(demo_store: Store, settings: Settings, client: TestClient) -> pd.DataFrame:
    ids = [f["id"] for f in client.get("/regions", params={"level": 3}).json()["features"]]
    obs = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], geos=ids)
    return obs.pivot(index="geo", columns="time", values="value").reindex(sorted(ids))


@pytest.mark.parametrize("scheme", sorted(SCHEMES), ids=sorted(SCHEMES))
def test_indicator_map_values_and_classes(
    client: TestClient, alpine_values: pd.DataFrame, scheme: str
) -> None:
    page = client.get(INDICATOR, params={"indicator": "EUR_HAB", "scheme": scheme, "k": 5}).text
    data = payload(page)
    assert data["ids"] == list(alpine_values.index)
    pooled = alpine_values.to_numpy().ravel()
    ref = getattr(mapclassify, SCHEMES[scheme])(pooled[np.isfinite(pooled)], k=5)
    bins_of = dict(zip(np.unique(ref.bins), range(len(ref.bins)), strict=False))
    assert len(data["indicator"]["colours"]) == len(bins_of)
    for year in data["years"]:
        values = alpine_values[year].to_numpy()
        got = np.array(data["series"][str(year)]["b"])
        assert (got[np.isnan(values)] == -1).all()
        expected = mapclassify.UserDefined(values[np.isfinite(values)], np.unique(ref.bins)).yb
        np.testing.assert_array_equal(got[np.isfinite(values)], expected)
        shown = np.array([np.nan if v is None else v for v in data["series"][str(year)]["v"]])
        np.testing.assert_allclose(shown, values, rtol=1e-9)


def test_indicator_legend_unit_source_no_data(client: TestClient) -> None:
    gdp = next(d for d in client.get("/datasets").json() if d["id"] == "nama_10r_3gdp")
    unit = next(i["unit"] for i in gdp["indicators"] if i["code"] == "EUR_HAB")
    page = client.get(INDICATOR, params={"indicator": "EUR_HAB"}).text
    legend = page[page.index('class="ac-panel ac-legend"') :]
    assert f"({unit})" in legend and gdp["source"] in legend and "No data" in legend


def test_indicator_csv_and_bad_indicator(client: TestClient, alpine_values: pd.DataFrame) -> None:
    year = int(alpine_values.columns[-3])
    csv = client.get(INDICATOR, params={"indicator": "EUR_HAB", "year": year, "f": "csv"})
    table = pd.read_csv(io.StringIO(csv.text)).set_index("region")
    np.testing.assert_allclose(table.loc[alpine_values.index, "value"], alpine_values[year])
    resp = client.get(INDICATOR, params={"indicator": "NOPE"})
    assert resp.status_code == 400 and "EUR_HAB" in resp.json()["detail"]


# -- languages --------------------------------------------------------------------------------


def catalogue(lang: str) -> dict[str, str]:
    from babel.messages.pofile import read_po

    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {m.id: m.string for m in read_po(fh, locale=lang) if m.id}


def test_catalogues_cover_every_message(settings: Settings) -> None:
    """The template holds what extraction finds now, and each language translates all of it
    with the same placeholders (a stale or partial catalogue fails here)."""
    from babel.messages.pofile import read_po

    expected = {m.id for m in messages.template(settings) if m.id}
    with messages.TEMPLATE.open("rb") as fh:
        assert {m.id for m in read_po(fh) if m.id} == expected, "run python -m maps.messages"
    assert languages() == ["en", *LANGUAGES]
    placeholder = re.compile(r"\{\w+\}")
    for lang in LANGUAGES:
        cat = catalogue(lang)
        assert set(cat) == expected, lang
        untranslated = [k for k, v in cat.items() if not v]
        assert not untranslated, (lang, untranslated)
        wrong = [
            k for k, v in cat.items() if set(placeholder.findall(k)) != set(placeholder.findall(v))
        ]
        assert not wrong, (lang, wrong)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_interface_languages(
    client: TestClient, result_page: str, analysis: dict[str, Any], lang: str
) -> None:
    cat = catalogue(lang)
    page = client.get("/", params={"lang": lang}).text
    text = html.unescape(page)
    assert f'<html lang="{lang}">' in page
    assert cat["Run the analysis"] in text and cat["Recent analyses"] in text
    browser = client.get("/", headers={"Accept-Language": f"{lang}-XX,{lang};q=0.9,en;q=0.5"})
    assert f'<html lang="{lang}">' in browser.text
    assert "?lang=en" in page
    result = html.unescape(
        client.get(f"/maps/analyses/{analysis['id']}", params={"lang": lang}).text
    )
    for _colour, label in legend_entries("gi_star"):
        assert cat[label] in result, (lang, label)
        assert label in html.unescape(result_page)  # the English page keeps the English text


def test_national_names_in_the_popups(settings: Settings, result_page: str) -> None:
    data = payload(result_page)
    layer: gpd.GeoDataFrame = load_boundaries(settings).loc[data["ids"]]
    assert [n[:2] for n in data["names"]] == layer[["NAME_LATN", "NUTS_NAME"]].values.tolist()


def test_a_basemap_is_a_setting_and_outlines_stay(
    settings: Settings, demo_store: Store, analysis: dict[str, Any]
) -> None:
    """With tiles configured (here a port nothing listens on) the map asks for them, and
    still draws the NUTS 0 country outlines beneath the regions, so it works without them."""
    from services.app import create_app

    tiles = "http://127.0.0.1:9/{z}/{x}/{y}.png"
    with_tiles = settings.model_copy(update={"tiles": tiles, "tiles_attribution": "test tiles"})
    with TestClient(create_app(with_tiles)) as client:
        page = client.get(f"/maps/analyses/{analysis['id']}").text
    assert json.dumps(tiles) in page and "test tiles" in page
    outlines = re.findall(r'"country": "([A-Z]{2})"', page)
    layer = load_boundaries(settings)
    countries = set(layer.loc[payload(page)["ids"], "CNTR_CODE"])
    assert countries <= set(outlines)
