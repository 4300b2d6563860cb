"""The result map as a planner sees it: rendered by a real headless Chromium."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from geo.settings import Settings
from geo.store import Store
from tests.auth import headers
from tests.browser import CHROMIUM, live_server, requires_chromium
from tests.browser import FLAGS as BASE_FLAGS

pytestmark = requires_chromium
FLAGS = [*BASE_FLAGS, "--virtual-time-budget=8000"]


@pytest.fixture(scope="module")
def server(settings: Settings, demo_store: Store) -> Iterator[str]:
    """The real service on a loopback port, in a thread."""
    from services.app import create_app

    with live_server(create_app(settings)) as url:
        yield url


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def analysis_url(server: str, settings: Settings, demo_store: Store) -> str:
    """A Gi* analysis of GDP per head 2018 that has catchments (no correction)."""
    import httpx

    body = {"dataset": "nama_10r_3gdp", "years": [2018], "correction": "none"}
    resp = httpx.post(f"{server}/analyses", json=body, headers=headers(settings), timeout=120)
    assert resp.status_code == 201, resp.text
    return f"{server}/maps/analyses/{resp.json()['id']}"


def test_map_renders_every_region(analysis_url: str, tmp_path: Path) -> None:
    """Leaflet (served locally) draws one SVG path per region plus catchment outlines."""
    done = _chromium(tmp_path, "--dump-dom", analysis_url)
    dom = done.stdout
    paths = re.findall(r'<path[^>]*class="leaflet-interactive"', dom)
    assert len(paths) >= 272, (len(paths), done.stderr[-2000:])
    assert "Gi* hot spots" in dom and "Cluster catchments" in dom
    assert "False Discovery Rate" not in dom and "no correction for multiple testing" in dom


def test_screenshot_is_a_map(analysis_url: str, tmp_path: Path) -> None:
    """The screenshot holds the hot-spot colours, not a blank page."""
    from PIL import Image

    shot = tmp_path / "map.png"
    done = _chromium(tmp_path, f"--screenshot={shot}", analysis_url)
    assert shot.is_file(), done.stderr[-2000:]
    colours = Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20) or []
    present = {rgb for _, rgb in colours}
    hot_99, cold_99 = (0xD6, 0x2F, 0x27), (0x45, 0x75, 0xB5)
    assert hot_99 in present or (0xED, 0x75, 0x51) in present
    assert cold_99 in present or (0x84, 0x9E, 0xBA) in present
