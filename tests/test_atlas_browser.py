"""A planner's whole path through the atlas in a real browser: Playwright (Python) driving
Debian's Chromium (no browser download) against the service on a loopback port.

Start page → fill in the form → run Gi* on the demo data → wait for the map → legend and
catchment layer → click a region and read its popup → move the time slider → no
JavaScript error. The expected texts come from the JSON API and from libpysal, not from
the page.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import libpysal
import pytest

from geo.boundaries import load_boundaries
from geo.settings import Settings
from geo.store import Store
from maps.styles import class_of, legend_entries
from tests.auth import headers
from tests.browser import CHROMIUM, live_server, requires_chromium
from tests.browser import FLAGS as BASE_FLAGS

pytestmark = requires_chromium
sync_api = pytest.importorskip("playwright.sync_api")
# Playwright starts the browser itself (headless) and sets the window with the viewport.
FLAGS = [f for f in BASE_FLAGS if f != "--headless" and not f.startswith("--window-size")]


@pytest.fixture(scope="module")
def base_url(settings: Settings, demo_store: Store) -> Iterator[str]:
    from services.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


class Page:
    """A fresh page that records every JavaScript error and failed request."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on(
            "console",
            lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        self.page.on("requestfailed", lambda req: self.errors.append(f"failed: {req.url}"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Page]:
    page = Page(browser)
    yield page
    page.close()


def api(base: str, path: str, **params: Any) -> Any:
    resp = httpx.get(base + path, params=params, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def years_with_data(base: str, settings: Settings) -> list[int]:
    """The default year of a GDP analysis (the latest covering 95 % of the regions) and the
    year before it, when GET /datasets lists it."""
    body = {"dataset": "nama_10r_3gdp"}
    resolved = httpx.post(base + "/analyses", json=body, headers=headers(settings), timeout=120)
    assert resolved.status_code in (200, 201), resolved.text
    latest = resolved.json()["params"]["years"][0]
    gdp = next(d for d in api(base, "/datasets") if d["id"] == "nama_10r_3gdp")
    years = next(i["years"] for i in gdp["indicators"] if i["code"] == "EUR_HAB")
    assert latest - 1 in years
    return [latest - 1, latest]


def region_point(settings: Settings, code: str) -> tuple[float, float]:
    point = load_boundaries(settings).loc[code, "geometry"].representative_point()
    return float(point.y), float(point.x)


def click_region(page: Any, settings: Settings, code: str) -> str:
    """Click inside region ``code`` as a planner would and return the popup's text."""
    map_name = page.evaluate("Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))")
    lat, lon = region_point(settings, code)
    page.evaluate(f"{map_name}.setView([{lat}, {lon}], 8, {{animate: false}})")
    page.wait_for_timeout(200)
    point = page.evaluate(f"{map_name}.latLngToContainerPoint([{lat}, {lon}])")
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + point["x"], box["y"] + point["y"])
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible", timeout=5000)
    return str(popup.inner_text())


def popup_fields(text: str) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in text.splitlines() if "\t" in line)


def test_planner_runs_gi_star_and_reads_the_map(
    tab: Page, base_url: str, settings: Settings, tmp_path: Path
) -> None:
    page = tab.page
    y0, y1 = years_with_data(base_url, settings)
    # 1. the start page
    page.goto(base_url + "/")
    assert page.get_by_role("heading", name="Run a new analysis").is_visible()
    # 2. the form, filled in by its labels
    page.get_by_label("Dataset", exact=True).select_option("nama_10r_3gdp")
    page.get_by_label("Indicator", exact=True).select_option("EUR_HAB")
    page.get_by_label("Years", exact=True).select_option([str(y0), str(y1)])
    page.get_by_label("Area", exact=True).select_option("alpine-space")
    page.get_by_label("NUTS level").select_option("3")
    page.get_by_label("Hot spots (Getis-Ord Gi*)").check()
    page.get_by_label("Correction for multiple testing").select_option("none")
    page.get_by_label("Permutations").fill("999")
    assert settings.admin_key is not None
    page.get_by_label("Your API key").fill(settings.admin_key.get_secret_value())
    # 3. run it
    page.get_by_role("button", name="Run the analysis").click()
    # 4. the map (after the progress page, if the analysis runs in the background)
    page.wait_for_url(re.compile(r"/maps/analyses/[0-9a-f]{16}"), timeout=60_000)
    page.wait_for_function("() => window.acReady === true", timeout=60_000)
    analysis_id = re.search(r"/maps/analyses/([0-9a-f]{16})", page.url).group(1)  # type: ignore[union-attr]
    analysis = api(base_url, f"/analyses/{analysis_id}")
    assert analysis["params"]["years"] == [y0, y1] and analysis["params"]["correction"] == "none"
    if os.environ.get("ATLAS_SCREENSHOTS"):  # where to keep the screenshot of the result map
        page.screenshot(path=Path(os.environ["ATLAS_SCREENSHOTS"]) / "result-map.png")

    # 5. the legend names every class; the catchment layer is on and labels each catchment
    legend = page.locator(".ac-legend [data-legend=classes]")
    assert legend.is_visible()
    for _colour, label in legend_entries("gi_star"):
        assert label in legend.inner_text()
    assert page.get_by_label("Cluster catchments").is_checked()
    last = next(s for s in analysis["series"] if s["year"] == y1)
    labels = page.locator(".ac-catchment-label").all_inner_texts()
    assert sorted(labels) == sorted(c["catchment"] for c in last["catchments"])
    assert labels, "the demo analysis without correction has catchments"

    # 6. click a region outside every catchment and read its popup against the API
    rows = api(base_url, f"/analyses/{analysis_id}/regions.geojson", year=y1)["features"]
    free = [f for f in rows if not f["properties"]["catchment"] and f["properties"]["hot"] is False]
    feature = next(f for f in free if f["properties"]["status"] == "ok")
    code, props = feature["id"], feature["properties"]
    shown = popup_fields(click_region(page, settings, code))
    layer = load_boundaries(settings).loc[[r["id"] for r in rows]]
    queen = libpysal.weights.Queen.from_dataframe(layer, use_index=True)
    assert shown["NUTS code"] == code
    assert shown["Name"] == props["NAME_LATN"] and shown["National name"] == props["NUTS_NAME"]
    assert shown["Year"] == str(y1)
    assert shown["Value (EUR_HAB)"] == f"{props['value']:,.0f}"
    assert shown["z"] == f"{props['z']:,.2f}" and shown["p"] == f"{props['p_sim']:,.4f}"
    assert shown["Hot-spot class"] == class_of("gi_star", props)[1]
    assert shown["Neighbours"].startswith(f"{len(queen.neighbors[code])}: ")
    assert set(shown["Neighbours"].split(": ", 1)[1].split(", ")) == set(queen.neighbors[code])

    # 7. the time slider, moved with the keyboard, shows the earlier year everywhere
    page.keyboard.press("Escape")
    slider = page.get_by_role("slider", name=re.compile("^Year"))
    slider.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(f"() => new URL(location.href).searchParams.get('year') === '{y0}'")
    assert page.locator("#ac-year-value").inner_text() == str(y0)
    earlier = api(base_url, f"/analyses/{analysis_id}/regions.geojson", year=y0)["features"]
    before = next(f["properties"] for f in earlier if f["id"] == code)
    shown = popup_fields(click_region(page, settings, code))
    assert shown["Year"] == str(y0)
    assert shown["Value (EUR_HAB)"] == f"{before['value']:,.0f}"
    assert shown["Hot-spot class"] == class_of("gi_star", before)[1]
    first = next(s for s in analysis["series"] if s["year"] == y0)
    labels = page.locator(".ac-catchment-label").all_inner_texts()
    assert sorted(labels) == sorted(c["catchment"] for c in first["catchments"])

    # 8. no JavaScript error, no failed request
    assert not tab.errors, tab.errors


def test_start_page_is_keyboard_operable(tab: Page, base_url: str) -> None:
    """Tab reaches the skip link first, then every form control has a visible label."""
    page = tab.page
    page.goto(base_url + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    unlabelled = page.evaluate(
        """[...document.querySelectorAll('#analysis-form select, #analysis-form input')]
           .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length))
           .map(e => e.name)"""
    )
    assert unlabelled == []
    if os.environ.get("ATLAS_SCREENSHOTS"):  # where to keep the screenshot of the start page
        page.screenshot(path=Path(os.environ["ATLAS_SCREENSHOTS"]) / "start-page.png")
    assert not tab.errors, tab.errors


AXE = Path(__file__).resolve().parents[1] / "maps/static/node_modules/axe-core/axe.min.js"
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def two_year_analysis(base_url: str, settings: Settings) -> dict[str, Any]:
    """Gi* of GDP per head over two years without correction (so with catchments)."""
    years = years_with_data(base_url, settings)
    body = {"dataset": "nama_10r_3gdp", "years": years, "correction": "none"}
    resp = httpx.post(base_url + "/analyses", json=body, headers=headers(settings), timeout=120)
    assert resp.status_code in (200, 201), resp.text
    analysis: dict[str, Any] = resp.json()
    return analysis


def page_urls(analysis: dict[str, Any]) -> dict[str, str]:
    aid, last = analysis["id"], analysis["series"][-1]
    catchment = last["catchments"][0]["catchment"]
    return {
        "start": "/",
        "result-map": f"/maps/analyses/{aid}",
        "indicator-map": "/maps/datasets/nama_10r_3gdp?indicator=EUR_HAB",
        "catchment": f"/maps/analyses/{aid}/catchments/{catchment}?year={last['year']}",
        "error": "/maps/analyses/0123456789abcdef",
        "german": "/?lang=de",
    }


@pytest.mark.parametrize(
    "page_name", ["start", "result-map", "indicator-map", "catchment", "error", "german"]
)
def test_pages_pass_axe_wcag_checks(
    tab: Page, base_url: str, two_year_analysis: dict[str, Any], page_name: str
) -> None:
    """axe-core (Deque's WCAG 2.1 A/AA rules, from the npm registry) finds no violation:
    labels, names, contrast, language, landmarks, zoomable pages."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `make assets`")
    page = tab.page
    page.goto(base_url + page_urls(two_year_analysis)[page_name])
    if page_name.endswith("map") or page_name == "catchment":
        page.wait_for_function("() => window.acReady === true", timeout=30_000)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(f"axe.run(document, {{runOnly: {WCAG}}})")
    found = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"][:3]]) for v in result["violations"]
    ]
    assert found == []
    assert result["passes"], "axe ran no check"


def test_a_region_popup_is_reachable_by_keyboard(
    tab: Page, base_url: str, settings: Settings, two_year_analysis: dict[str, Any]
) -> None:
    """ "Find a region" (a labelled list) opens a region's popup without a mouse."""
    page = tab.page
    page.goto(base_url + f"/maps/analyses/{two_year_analysis['id']}")
    page.wait_for_function("() => window.acReady === true", timeout=30_000)
    rows = api(base_url, f"/analyses/{two_year_analysis['id']}/regions.geojson")["features"]
    code = rows[len(rows) // 2]["id"]
    finder = page.get_by_label("Find a region")
    finder.focus()
    finder.select_option(code)  # what a keyboard user does with the arrow keys
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for(state="visible", timeout=5000)
    shown = popup_fields(popup.inner_text())
    assert shown["NUTS code"] == code
    assert shown["Name"] == load_boundaries(settings).loc[code, "NAME_LATN"]
    assert not tab.errors, tab.errors


def test_standalone_map_works_without_the_service(
    tab: Page, base_url: str, two_year_analysis: dict[str, Any], tmp_path: Path
) -> None:
    """The downloaded HTML file draws the map from file:// with every request refused but
    its own: nothing of it needs AlpClusters any more."""
    resp = httpx.get(
        f"{base_url}/maps/analyses/{two_year_analysis['id']}", params={"f": "standalone"}
    )
    saved = tmp_path / "map.html"
    saved.write_bytes(resp.content)
    page = tab.page
    asked: list[str] = []
    page.route(
        "**/*",
        lambda route: (
            (asked.append(route.request.url), route.continue_())
            if route.request.url.startswith("file:")
            else (asked.append(route.request.url), route.abort())
        ),
    )
    page.goto(saved.as_uri())
    page.wait_for_function("() => window.acReady === true", timeout=30_000)
    n_regions = two_year_analysis["n_regions"]
    assert page.locator("path.leaflet-interactive").count() >= n_regions
    assert [u for u in asked if not u.startswith(("file:", "data:"))] == []
    assert not tab.errors, tab.errors


def test_api_documentation_page_needs_no_cdn(tab: Page, base_url: str) -> None:
    """Swagger UI, from AlpClusters' own copy, lists every operation of /openapi.json."""
    page = tab.page
    asked: list[str] = []
    page.on("request", lambda req: asked.append(req.url))
    page.goto(base_url + "/docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    document = httpx.get(base_url + "/openapi.json", timeout=60).json()
    operations = sum(len(ops) for ops in document["paths"].values())
    assert page.locator(".opblock").count() == operations
    assert [u for u in asked if not u.startswith((base_url, "data:"))] == []
    assert not tab.errors, tab.errors
