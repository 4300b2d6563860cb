"""Front-end assets served by AlpClusters itself (no public CDN).

Leaflet and Leaflet.VectorGrid are installed from the npm registry at build time
(``maps/static/package.json``, ``make assets``) into ``maps/static/node_modules``, which git
ignores.
"""

from __future__ import annotations

from pathlib import Path

import folium

STATIC_DIR = Path(__file__).resolve().parent / "static"
LEAFLET_DIR = STATIC_DIR / "node_modules" / "leaflet" / "dist"
VECTORGRID_DIR = STATIC_DIR / "node_modules" / "leaflet.vectorgrid" / "dist"
CSS_DIR = STATIC_DIR / "css"


def assets_missing() -> list[str]:
    """Asset files that are not installed yet (run ``make assets``)."""
    needed = [
        LEAFLET_DIR / "leaflet.js",
        LEAFLET_DIR / "leaflet.css",
        VECTORGRID_DIR / "Leaflet.VectorGrid.bundled.min.js",
        CSS_DIR / "map.css",
    ]
    return [str(p) for p in needed if not p.is_file()]


def localise(m: folium.Map, static_url: str) -> folium.Map:
    """Make a folium map load Leaflet and our stylesheet from ``static_url``.

    folium's defaults (jQuery, Bootstrap, awesome-markers from public CDNs) are not used by
    our maps and are dropped, so the page works on an air-gapped network.
    """
    base = static_url.rstrip("/")
    m.default_js = [("leaflet", f"{base}/leaflet/leaflet.js")]
    m.default_css = [
        ("leaflet_css", f"{base}/leaflet/leaflet.css"),
        ("alpclusters_css", f"{base}/css/map.css"),
    ]
    return m
