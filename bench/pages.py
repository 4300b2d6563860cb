"""``python -m bench.pages``: case 7, the planners' result map page as a browser sees it.

One process runs the whole case (both maps, both sides), so the reference is measured in
the same run, against the same server, on the same analyses:

1. a throwaway SQLite store in a temporary directory, filled by
   ``geo.indicators.load_demo`` (untimed);
2. the service, ``services.app.create_app(settings)`` under uvicorn on a free loopback
   port, in its own process (``python -m bench.pages serve``), which also serves the
   reference pages from the temporary directory under :data:`REF_PREFIX`;
3. two Gi* analyses of GDP per inhabitant (``nama_10r_3gdp``, ``EUR_HAB``) at NUTS level
   3, made with ``POST /analyses``: the Alpine Space in 2018, and every European region in
   2018 or 2019, whichever the data cover best (counted here, not typed in);
4. for each map, Debian's headless Chromium (Playwright, ``executable_path``, no browser
   download) loads our result map ``/maps/analyses/{id}`` and the reference, a plain
   folium map of the same regions, :data:`LOADS` times each, alternately, every load in
   a new browser context with the cache disabled, after one untimed warm-up load each.

The last line on stdout is the JSON record; ``bench.pages_report`` turns it into rows 7a
and 7b of the table. See ``bench/README.md``, case 7.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from bench.ogc import DEFAULT_OUT, Server, free_port, start, wait_ready

DATASET = "nama_10r_3gdp"
INDICATOR = "EUR_HAB"
LEVEL = 3
ALPINE_YEAR = 2018
EUROPE_YEARS = (2018, 2019)  # the one with more regions with a value; ties go to the first
LOADS = 5  # timed page loads per side and map (QUICK_LOADS with --quick)
QUICK_LOADS = 2
FLAG_TIMEOUT_S = 5.0  # no window.acReady by then: fall back to the regions' paths
PATHS_TIMEOUT_S = 60.0
IDLE_TIMEOUT_S = 15.0  # network idle after ready, for the byte count
CLICK_TIMEOUT_S = 3.0
ANALYSIS_TIMEOUT_S = 300.0
CHILD_TIMEOUT_S = 600.0
VIEWPORT = {"width": 1400, "height": 900}  # the window of tests/browser.py
REF_PREFIX = "/bench-ref"
REGION_PATHS = "path.leaflet-interactive"
CHROMIUM = "/usr/bin/chromium"

# Injected before any script of the page (Playwright add_init_script). It stamps, with
# performance.now() (milliseconds since navigation start), the moment window.acReady is
# set to true ("flag", through a setter) and the moment the first interactive region path
# enters the DOM ("paths", a MutationObserver), and for each the first animation frame
# after it ("*_frame", two requestAnimationFrame callbacks: the frame holding it is done).
# The page's own stamp, window.acReadyAt (atlas.js), is preferred when the page sets it.
PROBE_JS = """
(() => {
  const b = (window.__bench = {});
  const stamp = (name) => {
    if (b[name] !== undefined) { return; }
    b[name] = performance.now();
    requestAnimationFrame(() => requestAnimationFrame(() => {
      b[name + "_frame"] = performance.now();
    }));
  };
  let flag;
  Object.defineProperty(window, "acReady", {
    configurable: true,
    enumerable: true,
    get() { return flag; },
    set(v) { flag = v; if (v === true) { stamp("flag"); } },
  });
  const look = () => {
    if (document.querySelector(REGION_PATHS)) { stamp("paths"); return true; }
    return false;
  };
  const observer = new MutationObserver(() => { if (look()) { observer.disconnect(); } });
  observer.observe(document, { childList: true, subtree: true });
})();
""".replace("REGION_PATHS", json.dumps(REGION_PATHS))

# The Leaflet map of the page and a point inside a region that is in view and on top.
FIND_REGION_JS = """
(points) => {
  const name = Object.keys(window).find((k) => /^map_[0-9a-f]+$/.test(k));
  const map = name ? window[name] : null;
  if (!map) { return null; }
  const box = map.getContainer().getBoundingClientRect();
  for (const [lat, lon] of points) {
    const p = map.latLngToContainerPoint([lat, lon]);
    if (p.x < 20 || p.y < 20 || p.x > box.width - 20 || p.y > box.height - 20) { continue; }
    const x = box.left + p.x, y = box.top + p.y;
    const el = document.elementFromPoint(x, y);
    if (el && el.matches(REGION_PATHS)) { return { x: x, y: y, lat: lat, lon: lon }; }
  }
  return null;
}
""".replace("REGION_PATHS", json.dumps(REGION_PATHS))

VIEW_JS = """
() => {
  const name = Object.keys(window).find((k) => /^map_[0-9a-f]+$/.test(k));
  const map = name ? window[name] : null;
  if (!map) { return null; }
  const c = map.getCenter(), s = map.getSize();
  return { lat: c.lat, lon: c.lng, zoom: map.getZoom(), zoom_snap: map.options.zoomSnap,
           width: s.x, height: s.y };
}
"""

TIMING_JS = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const at = typeof window.acReadyAt === "number" ? window.acReadyAt : null;
  return { bench: window.__bench, acReady: window.acReady === true, acReadyAt: at,
           response_end: nav ? nav.responseEnd : null,
           dom_content_loaded: nav ? nav.domContentLoadedEventEnd : null,
           load: nav ? nav.loadEventEnd : null };
}
"""


@dataclass(frozen=True)
class MapSpec:
    """One of the two maps of the case."""

    key: str
    label: str
    area: str
    year: int


# --------------------------------------------------------------------------- the server


ADMIN_KEY_ENV = "ALPCLUSTERS_BENCH_ADMIN_KEY"


def settings_for(tmp: Path) -> Any:
    """The case's settings: the data mirror, no download, a throwaway SQLite store."""
    from geo.settings import Settings

    mirror = os.environ.get("ALPCLUSTERS_DATA_MIRROR")
    if not mirror:
        raise RuntimeError("set ALPCLUSTERS_DATA_MIRROR to the data mirror (shared/data)")
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=Path(mirror),
        allow_download=False,
        database_url=f"sqlite:///{tmp}/db",
        upload_dir=tmp / "uploads",
        tiles=None,  # the plain, offline background (the reference has none either)
        admin_key=admin_key(),
    )


def admin_key() -> str:
    """The run's bootstrap admin key (``POST /analyses`` needs an analyst or admin), made
    once in the parent and inherited by the server process."""
    from geo.accounts import new_key

    return os.environ.setdefault(ADMIN_KEY_ENV, new_key()[0])


def serve(tmp: Path, port: int) -> None:
    """The server process: ``create_app(settings)`` under uvicorn, plus the reference
    pages of ``tmp/ref`` under :data:`REF_PREFIX` (a mount on the app object; nothing of
    the service changes)."""
    import uvicorn
    from fastapi.staticfiles import StaticFiles

    from services.app import create_app

    app = create_app(settings_for(tmp))
    app.mount(REF_PREFIX, StaticFiles(directory=tmp / "ref", check_dir=False), name="bench-ref")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def launch(tmp: Path, log: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "bench.pages", "serve", "--tmp", str(tmp), "--port", str(port)]
    return start(command, dict(os.environ), port, log)


# --------------------------------------------------------------------------- the inputs


def prepare_store(settings: Any) -> float:
    """Fill the throwaway store with the demo data; the seconds it took."""
    from geo.indicators import load_demo
    from geo.store import Store

    started = time.perf_counter()
    load_demo(settings, Store(settings.database_url))
    return time.perf_counter() - started


def coverage(settings: Any, area: str, years: Sequence[int]) -> dict[int, int]:
    """Regions of ``area`` (level 3) with a GDP value, per year, from the store."""
    from geo.areas import resolve
    from geo.boundaries import load_boundaries
    from geo.store import Store

    codes = set(resolve(settings, load_boundaries(settings), area, LEVEL))
    frame = Store(settings.database_url).observations(DATASET, [INDICATOR], years)
    frame = frame[frame["geo"].isin(codes) & frame["value"].notna()]
    counts = frame.groupby("time")["geo"].nunique()
    return {int(y): int(counts.get(y, 0)) for y in years}


def create_analysis(client: Any, spec: MapSpec) -> dict[str, Any]:
    """``POST /analyses``, polled until done; the analysis as the API describes it."""
    body = {
        "dataset": DATASET,
        "indicators": [INDICATOR],
        "years": [spec.year],
        "area": spec.area,
        "level": LEVEL,
    }
    started = time.perf_counter()
    resp = client.post("/analyses", json=body)
    if resp.status_code not in (200, 201, 202):
        raise RuntimeError(f"POST /analyses {body}: {resp.status_code} {resp.text[:500]}")
    record = resp.json()
    while record["status"] != "done":
        if record["status"] == "failed" or time.perf_counter() - started > ANALYSIS_TIMEOUT_S:
            raise RuntimeError(f"analysis {record['id']}: {record['status']} {record.get('error')}")
        time.sleep(0.5)
        record = client.get(f"/analyses/{record['id']}").json()
    record["seconds"] = time.perf_counter() - started
    record["request"] = body
    return dict(record)


def click_points(collection: dict[str, Any], limit: int = 60) -> list[list[float]]:
    """[lat, lon] inside the largest regions, largest first: where the click check aims."""
    import shapely

    shapes = [(shapely.geometry.shape(f["geometry"]), f) for f in collection["features"]]
    shapes.sort(key=lambda s: -s[0].area)
    points = []
    for shape, _ in shapes[:limit]:
        point = shape.representative_point()
        points.append([float(point.y), float(point.x)])
    return points


def write_reference(collection: dict[str, Any], view: dict[str, Any] | None, path: Path) -> dict:
    """The reference: ``folium.Map`` + ``folium.GeoJson`` of the regions of
    ``GET /analyses/{id}/regions.geojson``, every property a tooltip field, coloured by
    the Gi* class (``maps.styles.class_of``, the colours of our legend), Leaflet from the
    service's ``/static/leaflet/`` (``maps.assets.localise``), in our page's initial view.
    """
    import folium
    import geopandas as gpd

    from maps.assets import localise
    from maps.styles import class_of

    frame = gpd.GeoDataFrame.from_features(collection["features"], crs=4326)
    frame.insert(0, "region", [f.get("id") for f in collection["features"]])
    fields = [c for c in frame.columns if c != "geometry"]

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        colour, _label = class_of("gi_star", feature["properties"])
        return {"fillColor": colour, "fillOpacity": 0.85, "color": "#555555", "weight": 0.6}

    if view is not None:
        options: dict[str, Any] = {"zoom_snap": view["zoom_snap"]} if view.get("zoom_snap") else {}
        m = folium.Map(
            location=[view["lat"], view["lon"]], zoom_start=view["zoom"], tiles=None, **options
        )
    else:
        m = folium.Map(tiles=None)
        west, south, east, north = frame.total_bounds
        m.fit_bounds([[south, west], [north, east]])
    folium.GeoJson(
        frame,
        name="Gi* classes",
        style_function=style,
        tooltip=folium.GeoJsonTooltip(fields=fields),
    ).add_to(m)
    localise(m, "/static")
    path.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(path))
    html = path.read_text(encoding="utf-8")
    return {
        "bytes": len(html.encode("utf-8")),
        "fields": fields,
        "external_urls": html.count("https://") + html.count("http://"),
        "view": "our page's initial view" if view is not None else "fit_bounds(regions)",
    }


# --------------------------------------------------------------------------- the browser


def load_page(browser: Any, url: str, *, flag: bool, points: list[list[float]]) -> dict:
    """One fresh load of ``url`` in a new context with the cache disabled: readiness,
    bytes, requests, errors and whether a click on a region answers (untimed)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(PROBE_JS)
        page = context.new_page()
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        responses: list[Any] = []
        failed: list[str] = []
        errors: list[str] = []
        page.on("response", lambda r: responses.append(r))
        page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
        page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
        page.on(
            "console",
            lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
        )
        started = time.perf_counter()
        page.goto(url, wait_until="commit")
        ready_flag, detected = wait_ready_state(page, flag)
        waited_s = time.perf_counter() - started
        idle = True
        try:
            page.wait_for_load_state("networkidle", timeout=IDLE_TIMEOUT_S * 1e3)
        except PlaywrightTimeoutError:
            idle = False
        record = ready_time(page, ready_flag, detected)
        record.update(waited_s=waited_s, network_idle=idle)
        record.update(traffic(responses, url))
        record["view"] = page.evaluate(VIEW_JS)  # before the click: a popup pans the map
        record["click"] = click_check(
            page, points, ".leaflet-popup-content" if flag else ".leaflet-tooltip"
        )
        record["failed_requests"] = failed
        record["js_errors"] = errors[:5]
        record["js_error_count"] = len(errors)
        return record
    finally:
        context.close()


def wait_ready_state(page: Any, flag: bool) -> tuple[bool, float]:
    """Wait for ``window.acReady === true`` (``flag``; at most :data:`FLAG_TIMEOUT_S`),
    else for the first region path; whether the flag came, and performance.now() then."""
    if flag:
        try:
            page.wait_for_function("() => window.acReady === true", timeout=FLAG_TIMEOUT_S * 1e3)
            return True, float(page.evaluate("performance.now()"))
        except PlaywrightTimeoutError:
            pass
    page.wait_for_function(
        "() => window.__bench && window.__bench.paths !== undefined",
        timeout=PATHS_TIMEOUT_S * 1e3,
    )
    return False, float(page.evaluate("performance.now()"))


def ready_time(page: Any, ready_flag: bool, detected_ms: float) -> dict[str, Any]:
    """When the page was ready, in seconds since navigation start, and how that was told.

    With the flag: the page's own ``window.acReadyAt`` if it sets one, else the probe's
    setter stamp; without: the probe's first region path. ``polled`` (the moment the wait
    saw it) only if neither stamp exists.
    """
    key = "flag" if ready_flag else "paths"
    with contextlib.suppress(PlaywrightTimeoutError):
        page.wait_for_function(
            "(k) => window.__bench[k + '_frame'] !== undefined", arg=key, timeout=5_000
        )
    timing = page.evaluate(TIMING_JS)
    bench = timing["bench"] or {}
    stamp, clock = bench.get(key), "probe"
    if ready_flag and timing["acReadyAt"] is not None:
        stamp, clock = timing["acReadyAt"], "window.acReadyAt"
    if stamp is None:
        stamp, clock = detected_ms, "polled"
    frame = bench.get(f"{key}_frame")
    return {
        "ready_s": stamp / 1e3,
        "ready_by": "window.acReady" if ready_flag else REGION_PATHS,
        "ready_clock": clock,
        "ready_flag": ready_flag,
        "ready_frame_s": None if frame is None else frame / 1e3,
        "flag_setter_s": _ms(bench.get("flag")),
        "acReadyAt_s": _ms(timing["acReadyAt"]),
        "paths_s": _ms(bench.get("paths")),
        "response_end_s": _ms(timing["response_end"]),
        "dom_content_loaded_s": _ms(timing["dom_content_loaded"]),
        "load_s": _ms(timing["load"]),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None or value <= 0 else value / 1e3


def traffic(responses: list[Any], url: str) -> dict[str, Any]:
    """Bytes of the page's own HTML and of every response (body as sent, plus headers)."""
    total_body = total_headers = 0
    by_type: dict[str, dict[str, int]] = {}
    external = []
    html: dict[str, Any] = {}
    for response in responses:
        request = response.request
        sizes = request.sizes()
        body, headers = sizes["responseBodySize"], sizes["responseHeadersSize"]
        total_body += max(body, 0)
        total_headers += max(headers, 0)
        kind = by_type.setdefault(request.resource_type, {"requests": 0, "bytes": 0})
        kind["requests"] += 1
        kind["bytes"] += max(body, 0) + max(headers, 0)
        host = urlsplit(response.url).hostname
        if host not in ("127.0.0.1", "localhost"):
            external.append(response.url)
        if not html and request.resource_type == "document" and response.url == url:
            content = response.body()
            html = {
                "html_bytes": len(content),
                "html_transfer_bytes": body,
                "html_status": response.status,
                "html_content_encoding": response.headers.get("content-encoding"),
            }
    return {
        **html,
        "requests": len(responses),
        "transfer_bytes": total_body + total_headers,
        "transfer_body_bytes": total_body,
        "by_type": by_type,
        "external_requests": external,
    }


def click_check(page: Any, points: list[list[float]], expected: str) -> dict[str, Any]:
    """Move to and click inside a region in view; whether ``expected`` becomes visible."""
    target = page.evaluate(FIND_REGION_JS, points)
    if target is None:
        return {"ok": False, "why": "no region under any test point"}
    page.mouse.move(target["x"], target["y"])
    page.mouse.click(target["x"], target["y"])
    try:
        page.locator(expected).first.wait_for(state="visible", timeout=CLICK_TIMEOUT_S * 1e3)
        ok = True
    except PlaywrightTimeoutError:
        ok = False
    return {"ok": ok, "expected": expected, "at": [target["lat"], target["lon"]]}


def summary(loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Median, min and max of the ready times; bytes of the first load; all checks."""
    times = [load["ready_s"] for load in loads]
    first = loads[0]
    return {
        "ready_median_s": statistics.median(times),
        "ready_min_s": min(times),
        "ready_max_s": max(times),
        "ready_s": times,
        "ready_frame_median_s": _median(load["ready_frame_s"] for load in loads),
        "ready_clock": sorted({load["ready_clock"] for load in loads}),
        "ready_flag": all(load["ready_flag"] for load in loads),
        "ready_by": sorted({load["ready_by"] for load in loads}),
        "html_bytes": first.get("html_bytes"),
        "html_transfer_bytes": first.get("html_transfer_bytes"),
        "html_content_encoding": first.get("html_content_encoding"),
        "html_status": first.get("html_status"),
        "transfer_bytes": statistics.median(load["transfer_bytes"] for load in loads),
        "transfer_bytes_range": [
            min(load["transfer_bytes"] for load in loads),
            max(load["transfer_bytes"] for load in loads),
        ],
        "requests": statistics.median(load["requests"] for load in loads),
        "by_type": first["by_type"],
        "dom_content_loaded_median_s": _median(load["dom_content_loaded_s"] for load in loads),
        "load_median_s": _median(load["load_s"] for load in loads),
        "clicks_ok": sum(load["click"]["ok"] for load in loads),
        "network_idle": all(load["network_idle"] for load in loads),
        "external_requests": sorted({u for load in loads for u in load["external_requests"]}),
        "failed_requests": sorted({u for load in loads for u in load["failed_requests"]}),
        "js_error_count": sum(load["js_error_count"] for load in loads),
        "js_errors": [e for load in loads for e in load["js_errors"]][:5],
        "loads": loads,
    }


def _median(values: Any) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


# --------------------------------------------------------------------------- the case


def measure_map(
    browser: Any, client: Any, base: str, spec: MapSpec, analysis: dict, tmp: Path, loads: int
) -> dict[str, Any]:
    """Both sides of one map: warm-ups, then ``loads`` timed loads each, alternately."""
    aid = analysis["id"]
    query = {"indicator": INDICATOR, "year": spec.year}
    regions = client.get(f"/analyses/{aid}/regions.geojson", params=query)
    regions.raise_for_status()
    collection = regions.json()
    points = click_points(collection)
    ours_url = f"{base}/maps/analyses/{aid}"
    ours_warm = load_page(browser, ours_url, flag=True, points=points)
    ref = write_reference(collection, ours_warm["view"], tmp / "ref" / f"{spec.key}.html")
    ref_url = f"{base}{REF_PREFIX}/{spec.key}.html"
    ref_warm = load_page(browser, ref_url, flag=False, points=points)
    ours_loads, ref_loads = [], []
    for _ in range(loads):
        ours_loads.append(load_page(browser, ours_url, flag=True, points=points))
        ref_loads.append(load_page(browser, ref_url, flag=False, points=points))
    return {
        "key": spec.key,
        "label": spec.label,
        "area": spec.area,
        "year": spec.year,
        "analysis": {
            k: analysis.get(k) for k in ("id", "n_regions", "duration_s", "seconds", "request")
        },
        "n": len(collection["features"]),
        "url": f"/maps/analyses/{aid}",
        "ours": {**summary(ours_loads), "warm_up": _brief(ours_warm)},
        "ref": {**summary(ref_loads), "warm_up": _brief(ref_warm), "page": ref, "url": ref_url},
    }


def _brief(load: dict[str, Any]) -> dict[str, Any]:
    keys = ("ready_s", "ready_flag", "transfer_bytes", "requests", "view")
    return {k: load.get(k) for k in keys}


def versions() -> dict[str, str]:
    found = {}
    for name in ("playwright", "folium", "uvicorn", "fastapi"):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def run(out: Path, quick: bool) -> dict[str, Any]:
    """The whole case: store, server, analyses, both maps; the record."""
    import httpx
    from playwright.sync_api import sync_playwright

    from tests.browser import FLAGS

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing (Debian's chromium package)")
    loads = QUICK_LOADS if quick else LOADS
    started = time.perf_counter()
    work = out / "pages"
    work.mkdir(parents=True, exist_ok=True)
    # Playwright starts the browser headless itself and sets the window with the viewport.
    flags = [f for f in FLAGS if f != "--headless" and not f.startswith("--window-size")]
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as name:
        tmp = Path(name)
        (tmp / "ref").mkdir()
        settings = settings_for(tmp)
        setup_s = prepare_store(settings)
        counts = coverage(settings, "europe", EUROPE_YEARS)
        europe_year = max(EUROPE_YEARS, key=lambda y: (counts[y], -EUROPE_YEARS.index(y)))
        specs = [
            MapSpec("alpine", "Alpine Space", "alpine-space", ALPINE_YEAR),
            MapSpec("europe", "Europe", "europe", europe_year),
        ]
        server = launch(tmp, work / "server.log")
        try:
            startup_s = wait_ready(server, "/health")
            base = f"http://127.0.0.1:{server.port}"
            maps = []
            auth = {"Authorization": f"Bearer {admin_key()}"}
            with httpx.Client(base_url=base, timeout=300, headers=auth) as client:
                analyses = [create_analysis(client, spec) for spec in specs]
                with sync_playwright() as pw:
                    browser = pw.chromium.launch(
                        executable_path=CHROMIUM, args=flags, headless=True
                    )
                    chromium = browser.version
                    try:
                        for spec, analysis in zip(specs, analyses, strict=True):
                            maps.append(
                                measure_map(browser, client, base, spec, analysis, tmp, loads)
                            )
                    finally:
                        browser.close()
        finally:
            server.stop()
    return {
        "case": "pages-map",
        "loads": loads,
        "quick": quick,
        "maps": maps,
        "europe_coverage": {str(y): n for y, n in counts.items()},
        "setup_s": setup_s,
        "server_startup_s": startup_s,
        "chromium": chromium,
        "flags": flags,
        "viewport": VIEWPORT,
        "cpus": os.cpu_count(),
        "load_1min": os.getloadavg()[0],
        "python": platform.python_version(),
        "versions": versions(),
        "time_s": time.perf_counter() - started,
    }


def child(out: Path, quick: bool) -> dict[str, Any]:
    """Run the case as ``python -m bench.pages`` in a fresh process; its record or an error."""
    command = [sys.executable, "-m", "bench.pages", "--out", str(out)]
    command += ["--quick"] if quick else []
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S:g} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-15:]
        return {"error": f"exit status {proc.returncode}:\n      " + "\n      ".join(tail)}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pages", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    server = sub.add_parser("serve", help="(internal) the server process of the case")
    server.add_argument("--tmp", type=Path, required=True)
    server.add_argument("--port", type=int, required=True)
    parser.add_argument("--quick", action="store_true", help="fewer page loads")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where outputs go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "serve":
        serve(args.tmp, args.port)
        return 0
    print(json.dumps(run(args.out, args.quick), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
