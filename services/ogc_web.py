"""Web helpers of the OGC API router: content negotiation, absolute links, HTML pages."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse

from geo.ogc import GEOJSON

JSON = "application/json"
HTML = "text/html"
TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates" / "ogc"),
    autoescape=True,
)


def output_format(request: Request, f: str | None) -> str:
    """``f`` if given, else HTML when the Accept header prefers text/html to JSON."""
    if f:
        return f
    best = {"html": 0.0, "json": 0.0}
    for item in request.headers.get("accept", "").split(","):
        media, *params = (p.strip() for p in item.split(";"))
        q = next((float(p[2:]) for p in params if p.startswith("q=") and _number(p[2:])), 1.0)
        kind = {"text/html": "html", "application/xhtml+xml": "html"}.get(media, "json")
        if media in ("text/html", "application/xhtml+xml", JSON, GEOJSON, "*/*"):
            best[kind] = max(best[kind], q)
    return "html" if best["html"] > best["json"] else "json"


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def href(request: Request, path: str, params: Iterable[tuple[str, Any]] = ()) -> str:
    """Absolute URL of ``path`` under this service with query ``params``."""
    query = urlencode([(k, str(v)) for k, v in params])
    return str(request.base_url).rstrip("/") + path + (f"?{query}" if query else "")


def link(url: str, rel: str, type_: str | None, title: str, **extra: Any) -> dict[str, Any]:
    return {"href": url, "rel": rel, "type": type_, "title": title, **extra}


def self_links(
    request: Request, path: str, fmt: str, json_type: str = JSON, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """``self`` in the format answered and ``alternate`` in the other one."""
    kinds = {"json": (json_type, "this document as JSON"), "html": (HTML, "this page as HTML")}
    other = "html" if fmt == "json" else "json"
    return [
        link(href(request, path, [*params, ("f", fmt)]), "self", *kinds[fmt]),
        link(href(request, path, [*params, ("f", other)]), "alternate", *kinds[other]),
    ]


def page(request: Request, template: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(TEMPLATES.get_template(template).render(request=request, **context))


def crumbs(request: Request, *more: tuple[str, str]) -> list[tuple[str, str]]:
    return [("AlpClusters", href(request, "/")), ("OGC API", href(request, "/ogc")), *more]


def collection_path(collection_id: str) -> str:
    return f"/ogc/collections/{quote(collection_id, safe='')}"
