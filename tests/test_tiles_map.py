"""A map of more than a thousand regions, drawn from AlpClusters' vector tiles in Chromium.

The service runs on a loopback port behind a recorder of the requests it gets. Debian's
Chromium takes a screenshot (checked by pixels) with a network log (no request of the page
leaves the service), and, driven over the DevTools protocol on a pipe (no extra package),
hovers and clicks a region to read the tooltip and popup made from the tile properties.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import httpx
import numpy as np
import pandas as pd
import pytest
import shapely

from geo.boundaries import regions
from geo.settings import Settings
from geo.store import Store
from maps.styles import GI_CLASSES, class_of
from tests.auth import headers
from tests.browser import CHROMIUM, live_server, requires_chromium
from tests.browser import FLAGS as BASE_FLAGS

pytestmark = requires_chromium
FLAGS = [*BASE_FLAGS, "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


class Recorder:
    """ASGI wrapper noting every path (with its query) the service is asked for."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.requests: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests.append(scope["path"] + "?" + scope["query_string"].decode())
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def served(settings: Settings, demo_store: Store) -> Iterator[tuple[str, Recorder]]:
    """The real service on a loopback port, in a thread, its requests recorded."""
    from services.app import create_app

    recorder = Recorder(create_app(settings))
    with live_server(recorder) as url:
        yield url, recorder


@pytest.fixture(scope="module")
def fine_analysis(served: tuple[str, Recorder], settings: Settings) -> dict[str, Any]:
    """Gi* of GDP per head 2018 over the NUTS-3 regions of central and western Europe (those
    of the NUTS-2 regions within 6 W - 26 E, 42 - 57 N): more than a thousand regions."""
    base, _ = served
    nuts2 = regions(settings, 2)
    codes = nuts2.index[nuts2.within(shapely.box(-6, 42, 26, 57))]
    body = {"dataset": "nama_10r_3gdp", "years": [2018], "correction": "none"}
    resp = httpx.post(
        f"{base}/analyses",
        json=body | {"area": ",".join(codes)},
        headers=headers(settings),
        timeout=300,
    )
    assert resp.status_code in (200, 201), resp.text
    analysis: dict[str, Any] = resp.json()
    assert analysis["n_regions"] > 1000
    return analysis


def test_fine_layer_map_is_drawn_from_our_tiles(
    served: tuple[str, Recorder],
    fine_analysis: dict[str, Any],
    demo_store: Store,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """VectorGrid and every tile come from AlpClusters, and the screenshot shows the class
    colours (blended at 85 % over the white country fill) of the hot and the cold class
    covering the most ground."""
    from PIL import Image

    base, recorder = served
    url = f"{base}/maps/analyses/{fine_analysis['id']}"
    page = httpx.get(url, timeout=120).text
    assert "L.vectorGrid.protobuf" in page and '"fill": "#' not in page  # no region GeoJSON
    recorder.requests.clear()
    shot, netlog = tmp_path / "map.png", tmp_path / "net.json"
    assert CHROMIUM is not None
    done = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            "--virtual-time-budget=15000",
            f"--log-net-log={netlog}",
            "--enable-logging=stderr",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert shot.is_file(), done.stderr[-2000:]
    if os.environ.get("TEST_TILES_SCREENSHOT"):  # where to keep it, to look at
        shutil.copy(shot, os.environ["TEST_TILES_SCREENSHOT"])
    assert "Uncaught" not in done.stderr, done.stderr[-2000:]
    layer = f"/ogc/collections/analysis-{fine_analysis['id']}-regions/tiles/WebMercatorQuad/"
    tiles = [r for r in recorder.requests if r.startswith(layer)]
    assert len(tiles) >= 4 and all("indicator=EUR_HAB" in r and "year=2018" in r for r in tiles)
    assert any(r.startswith("/static/vectorgrid/") for r in recorder.requests)
    assert not [u for u in _page_requests(netlog) if not u.startswith(base)]

    table = demo_store.analysis(fine_analysis["id"]).regions
    assert table is not None
    area = regions(settings, 3).to_crs(3857).area  # as large as the map shows them
    by_class = table.assign(area=area.loc[table["region"]].to_numpy()).groupby("bin")["area"].sum()
    hot = by_class[by_class.index > 0].idxmax()
    cold = by_class[by_class.index < 0].idxmax()
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3).astype(int)
    for code in (hot, cold):
        colour = np.array([int(GI_CLASSES[code][0][i : i + 2], 16) for i in (1, 3, 5)])
        blended = np.rint(0.85 * colour + 0.15 * 255)
        close = (np.abs(pixels - blended) <= 3).all(axis=1).sum()
        assert close >= 300, (GI_CLASSES[code][1], close)


def region_near(nuts3: gpd.GeoDataFrame, table: pd.DataFrame, centre: shapely.Point) -> str:
    """The analysed region outside every catchment whose inner point is nearest ``centre``."""
    free = table.loc[table["catchment"].fillna("") == "", "region"]
    points = nuts3.loc[nuts3.index.isin(free), "geometry"].representative_point().to_crs(3035)
    here = gpd.GeoSeries([centre], crs=4326).to_crs(3035).iloc[0]
    return str(points.distance(here).idxmin())


def test_tooltip_and_popup_read_the_tile_properties(
    served: tuple[str, Recorder],
    fine_analysis: dict[str, Any],
    demo_store: Store,
    settings: Settings,
    tmp_path: Path,
) -> None:
    """Hovering a region (outside every catchment, whose outlines lie on top with their own
    tooltips) shows its code, names, value, z, p, class and catchment; clicking opens a popup
    with the same."""
    base, _ = served
    nuts3 = regions(settings, 3)
    table = demo_store.analysis(fine_analysis["id"]).regions
    assert table is not None
    with DevTools(tmp_path / "profile", f"{base}/maps/analyses/{fine_analysis['id']}") as tab:
        tab.wait_for(
            "document.querySelectorAll('.leaflet-tile path.leaflet-interactive').length > 300"
        )
        map_name = tab.js("Object.keys(window).find(k => /^map_[0-9a-f]+$/.test(k))")
        # as a planner would: act once every tile layer has finished loading
        tab.wait_for(f"Object.values({map_name}._layers).every(l => !l._loading)")
        centre = tab.js(f"{map_name}.getCenter()")
        code = region_near(nuts3, table, shapely.Point(centre["lng"], centre["lat"]))
        spot = nuts3.loc[code, "geometry"].representative_point()
        point = tab.js(f"{map_name}.latLngToContainerPoint([{spot.y}, {spot.x}])")
        tab.mouse("mouseMoved", point)
        tooltip = tab.wait_for("(document.querySelector('.ac-region-tip') || {}).innerText")
        tab.mouse("mousePressed", point)
        tab.mouse("mouseReleased", point)
        popup = tab.wait_for("(document.querySelector('.leaflet-popup-content') || {}).innerText")
        assert not tab.exceptions, tab.exceptions

    under = nuts3.loc[[code]]
    row = table.set_index("region").loc[code]
    label = class_of("gi_star", row.to_dict())[1]
    assert tooltip.splitlines() == [f"{code} {under['NAME_LATN'].iloc[0]}", label]
    shown = dict(line.split("\t", 1) for line in popup.strip().splitlines() if "\t" in line)
    assert "NUTS code" in shown, f"popup: {popup!r}"
    assert shown["NUTS code"] == under.index[0]
    assert shown["Name"] == under["NAME_LATN"].iloc[0]
    assert shown["National name"] == under["NUTS_NAME"].iloc[0]
    assert shown["Value (EUR_HAB)"] == f"{row['value']:,.0f}"
    assert shown["z"] == f"{row['z']:,.2f}" and shown["p"] == f"{row['p_sim']:,.4f}"
    assert shown["Hot-spot class"] == label
    assert shown["Catchment"] == (str(row["catchment"]) or "–")


def _page_requests(netlog: Path) -> list[str]:
    """URLs the page asked for (the browser's own housekeeping has no initiator)."""
    raw = netlog.read_text()
    try:
        log = json.loads(raw)
    except json.JSONDecodeError:  # a log cut short when the browser exits
        log = json.loads(raw.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event["type"] == start and params.get("initiator", "not an origin") != "not an origin":
            urls.append(str(params["url"]))
    return urls


class DevTools:
    """Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    commands in on fd 3, replies out on fd 4, NUL-separated JSON)."""

    def __init__(self, profile: Path, url: str) -> None:
        assert CHROMIUM is not None
        to_browser, self._theirs_in = os.pipe()
        self._theirs_out, from_browser = os.pipe()
        devnull = os.open(os.devnull, os.O_WRONLY)
        self.pid = os.posix_spawn(
            CHROMIUM,
            [CHROMIUM, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}", url],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, to_browser, 3),
                (os.POSIX_SPAWN_DUP2, from_browser, 4),
                (os.POSIX_SPAWN_DUP2, devnull, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
            ],
        )
        for fd in (to_browser, from_browser, devnull):
            os.close(fd)
        self._buffer = b""
        self._n = 0
        self.exceptions: list[str] = []
        self.session: str | None = None
        page = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]
        self.call("Runtime.enable")

    def __enter__(self) -> DevTools:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.session = None
            self.call("Browser.close")
        except (OSError, RuntimeError):
            pass
        finally:
            os.close(self._theirs_in)
            os.close(self._theirs_out)
            deadline = time.monotonic() + 10
            while os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)  # the browser this test started
                    os.waitpid(self.pid, 0)
                    break
                time.sleep(0.1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._n += 1
        message: dict[str, Any] = {"id": self._n, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        os.write(self._theirs_in, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._theirs_out, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("method") == "Runtime.exceptionThrown":
                self.exceptions.append(json.dumps(reply["params"]["exceptionDetails"])[:500])
            if reply.get("id") == self._n:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page."""
        reply = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in reply, reply["exceptionDetails"]
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30) -> Any:
        """The expression's value once it is truthy."""
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.2)
        return value

    def mouse(self, kind: str, point: dict[str, float]) -> None:
        click = {"button": "left", "clickCount": 1} if kind != "mouseMoved" else {}
        self.call("Input.dispatchMouseEvent", type=kind, x=point["x"], y=point["y"], **click)
