"""What the HTML pages share: the language, links that keep the page's state, the map
options of the settings, and the page as HTML, standalone HTML, GeoJSON or CSV."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import folium
import geopandas as gpd
import pandas as pd
from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from geo.areas import named_areas
from geo.boundaries import regions as nuts_regions
from geo.exports import neutralise
from geo.geojson import feature_collection
from geo.settings import Settings
from geo.store import AnalysisRecord
from maps.analysis import MapOptions
from maps.assets import standalone
from maps.atlas import render_page
from maps.i18n import Text, languages, pick_language
from maps.pages import render
from maps.panels import Link
from services.responses import GeoJSONResponse

PageFormat = Literal["html", "standalone", "geojson", "csv"]
FormatQuery = Annotated[
    PageFormat,
    Query(
        alias="f",
        description="html (the page), standalone (the map as one self-contained HTML file), "
        "geojson or csv (the data shown).",
    ),
]
LangQuery = Annotated[
    str | None,
    Query(description="Interface language (en, de, ...); default: the browser's.", max_length=8),
]
# A map page's answers: the page, or with ?f= the data shown (GeoJSON, CSV)
PAGE_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/geo+json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}
EmbedQuery = Annotated[
    bool, Query(description="A bare map for an iframe: no title, summary or downloads.")
]


def get_text(request: Request, lang: LangQuery = None) -> Text:
    """The interface text in ``?lang=`` or the browser's language."""
    return Text(pick_language(lang, request.headers.get("accept-language")))


TextDep = Annotated[Text, Depends(get_text)]


def static_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}/static"


def with_query(request: Request, **changes: Any) -> str:
    """This page's URL (path and query) with some parameters changed or (``None``) removed."""
    params = dict(request.query_params)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)
    url = request.url.replace_query_params(**params)
    return url.path + (f"?{url.query}" if url.query else "")


def language_links(request: Request) -> list[Link]:
    return [Link(code, with_query(request, lang=code)) for code in languages()]


def download_links(request: Request, _: Text) -> list[Link]:
    return [
        Link("GeoJSON", with_query(request, f="geojson", embed=None), download=True),
        Link("CSV", with_query(request, f="csv", embed=None), download=True),
        Link(_("Map (HTML file)"), with_query(request, f="standalone", embed=None), download=True),
    ]


def map_options(
    request: Request, settings: Settings, _: Text, *, f: PageFormat, embed: bool, **extra: Any
) -> MapOptions:
    """Options of a map page: assets, background, links; a standalone file draws every
    region from its own GeoJSON (it cannot ask for vector tiles)."""
    fine: dict[str, Any] = {}
    if f == "standalone":
        fine = {"vector_tiles": None, "outline_vector_tiles": None}
    return MapOptions(
        static_url=static_url(request),
        outlines=nuts_regions(settings, 0),
        tiles=settings.tiles,
        tiles_attribution=settings.tiles_attribution,
        embed=embed,
        downloads=download_links(request, _),
        languages=language_links(request),
        home=with_home(request, _),
        area_titles={a.name: _(a.title) for a in named_areas(settings).values()},
        **{**extra, **fine},
    )


def with_home(request: Request, _: Text) -> str:
    return str(request.url_for("index").path) + (f"?lang={_.lang}" if _.lang != "en" else "")


def page(
    m: folium.Map, f: PageFormat, request: Request, filename: str, _: Text
) -> HTMLResponse | Response:
    """The map as a page, or as a standalone file to save."""
    html_text = render_page(m, _.lang)
    if f == "standalone":
        body = standalone(html_text, static_url(request))
        disposition = f'attachment; filename="{safe_name(filename)}.html"'
        return HTMLResponse(body, headers={"Content-Disposition": disposition})
    return HTMLResponse(html_text)


def data_response(frame: gpd.GeoDataFrame, f: PageFormat, filename: str, precision: int) -> Any:
    """The regions shown, as GeoJSON or as CSV (formulas neutralised, geometry left out)."""
    if f == "geojson":
        body = feature_collection(frame, precision=precision)
        disposition = f'attachment; filename="{safe_name(filename)}.geojson"'
        return GeoJSONResponse(body, headers={"Content-Disposition": disposition})
    table = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    table.index.name = "region"
    table = table.reset_index()
    for column in table.select_dtypes(include=["object", "string"]).columns:
        table[column] = neutralise(table[column].astype("string").fillna(""))
    disposition = f'attachment; filename="{safe_name(filename)}.csv"'
    return Response(
        table.to_csv(index=False),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )


def safe_name(name: str) -> str:
    """A file name of letters, digits, ``-`` and ``_`` only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:120] or "alpclusters"


def progress_page(request: Request, record: AnalysisRecord, _: Text) -> HTMLResponse:
    """An unfinished analysis: its progress, polled until the map can open (or why not)."""
    body = render(
        "progress.html",
        _,
        analysis=record,
        status_url=str(request.url_for("get_analysis", analysis_id=record.id).path),
        static=static_url(request),
        home=with_home(request, _),
        languages=language_links(request),
    )
    return HTMLResponse(body, status_code=200)
