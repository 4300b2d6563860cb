"""Front-end assets served by AlpClusters itself (no public CDN).

Leaflet, Leaflet.VectorGrid and Swagger UI (the API documentation page) are installed from
the npm registry at build time (``maps/static/package.json``, ``make assets``) into
``maps/static/node_modules``, which git ignores.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

import folium

STATIC_DIR = Path(__file__).resolve().parent / "static"
LEAFLET_DIR = STATIC_DIR / "node_modules" / "leaflet" / "dist"
VECTORGRID_DIR = STATIC_DIR / "node_modules" / "leaflet.vectorgrid" / "dist"
CSS_DIR = STATIC_DIR / "css"
JS_DIR = STATIC_DIR / "js"
SWAGGER_DIR = STATIC_DIR / "node_modules" / "swagger-ui-dist"
# URL folder under the static URL -> where its files are
FOLDERS = {
    "leaflet": LEAFLET_DIR,
    "vectorgrid": VECTORGRID_DIR,
    "css": CSS_DIR,
    "js": JS_DIR,
    "swagger": SWAGGER_DIR,
}
_ASSET = re.compile(
    r'<script src="(?P<s>[^"]+)"></script>|<link rel="stylesheet" href="(?P<c>[^"]+)"\s*/?>'
)
_CSS_IMAGE = re.compile(r"url\((?P<q>['\"]?)(?P<path>images/[^)'\"]+)(?P=q)\)")


def assets_missing() -> list[str]:
    """Asset files that are not installed yet (run ``make assets``)."""
    needed = [
        LEAFLET_DIR / "leaflet.js",
        LEAFLET_DIR / "leaflet.css",
        VECTORGRID_DIR / "Leaflet.VectorGrid.bundled.min.js",
        CSS_DIR / "map.css",
        JS_DIR / "atlas.js",
        SWAGGER_DIR / "swagger-ui-bundle.js",
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


def standalone(page: str, static_url: str) -> str:
    """``page`` with every script and stylesheet from ``static_url`` inlined (and the
    stylesheets' images as data URLs), so the saved file works without AlpClusters."""
    base = static_url.rstrip("/") + "/"

    def inline(match: re.Match[str]) -> str:
        url = match.group("s") or match.group("c")
        path = _asset_path(url, base)
        if path is None:
            return match.group(0)
        text = path.read_text(encoding="utf-8")
        if match.group("s"):
            return "<script>" + text.replace("</script", "<\\/script") + "</script>"
        return "<style>" + _css_images(text, path.parent) + "</style>"

    return _ASSET.sub(inline, page)


def _asset_path(url: str, base: str) -> Path | None:
    if not url.startswith(base):
        return None
    folder, _, rest = url[len(base) :].partition("/")
    root = FOLDERS.get(folder)
    if root is None:
        return None
    path = (root / rest).resolve()
    return path if path.is_file() and path.is_relative_to(root.resolve()) else None


def _css_images(css: str, folder: Path) -> str:
    def data_url(match: re.Match[str]) -> str:
        path = folder / match.group("path")
        if not path.is_file():
            return match.group(0)
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f"url(data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()})"

    return _CSS_IMAGE.sub(data_url, css)
