"""HTML pages: the landing page and folium maps."""

from __future__ import annotations

import html
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from geo.boundaries import regions as nuts_regions
from maps.analysis import MapInfo, analysis_map
from maps.vector_tiles import VectorTiles
from services.dependencies import SeriesDep, SettingsDep, StoreDep

router = APIRouter(tags=["maps"])


def static_url(request: Request) -> str:
    return f"{request.scope.get('root_path', '')}/static"


@router.get(
    "/maps/analyses/{analysis_id}",
    response_class=HTMLResponse,
    summary="Result map of an analysis",
    name="analysis_map",
)
def analysis_map_page(
    series: SeriesDep, request: Request, settings: SettingsDep, store: StoreDep
) -> HTMLResponse:
    """Regions coloured by class, catchment outlines, tooltips and a legend."""
    record, ind, yr = series.record, series.indicator, series.year
    regions, catch, summary = series.regions, series.catchments, series.summary
    label = next(
        (i.label for i in store.dataset(record.dataset_id).indicators if i.code == ind), ind
    )
    p = record.params
    method = "Getis-Ord Gi*" if p["method"] == "gi_star" else "Local Moran's I (LISA)"
    info = MapInfo(
        title=f"{label} ({ind}), {yr}: {method}",
        subtitle=f"{len(regions)} NUTS {p['level']} regions of {p['area']} · "
        f"{summary['n_hot']} significant hot-spot region(s) · {len(catch)} catchment(s)",
        method=p["method"],
        params=p,
        summary=summary,
    )
    m = analysis_map(
        regions,
        catch,
        info,
        static_url=static_url(request),
        outlines=nuts_regions(settings, 0),
        tiles=settings.tiles,
        tiles_attribution=settings.tiles_attribution,
        vector_tiles=region_tiles(request, record.id, ind, yr),
        outline_vector_tiles=collection_tiles(request, f"nuts-{settings.nuts_year}-level-0"),
    )
    return HTMLResponse(m.get_root().render())


def collection_tiles(request: Request, collection_id: str, query: str = "") -> VectorTiles:
    """The vector tiles of a collection (``query``: filters on its queryables)."""
    base = request.url_for("collection_tileset", collection_id=collection_id).path
    return VectorTiles(f"{base}/{{z}}/{{y}}/{{x}}{'?' + query if query else ''}", collection_id)


def region_tiles(request: Request, analysis_id: str, indicator: str, year: int) -> VectorTiles:
    """The vector tiles of an analysis's regions, filtered to one series."""
    query = urlencode({"indicator": indicator, "year": year})
    return collection_tiles(request, f"analysis-{analysis_id}-regions", query)


@router.get("/", response_class=HTMLResponse, summary="Landing page")
def index(request: Request, store: StoreDep) -> HTMLResponse:
    """Links to the datasets, the recent analyses and their maps."""
    rows = "".join(
        f'<li><a href="{request.url_for("analysis_map", analysis_id=a.id)}">'
        f"{html.escape(a.dataset_id)} · {html.escape(', '.join(a.params['indicators']))} · "
        f"{', '.join(map(str, a.params['years']))} · {html.escape(a.params['method'])} · "
        f"{html.escape(a.params['area'])} NUTS {a.params['level']}</a></li>"
        for a in store.analyses()
    )
    datasets = "".join(
        f"<li>{html.escape(d.title)} (<code>{html.escape(d.id)}</code>)</li>"
        for d in store.datasets()
    )
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>AlpClusters</title>"
        "<link rel='stylesheet' href='/static/css/map.css'></head><body style='padding:1em'>"
        "<h1>AlpClusters</h1><p>Where, across borders, do economic activities concentrate?</p>"
        f"<h2>Analyses</h2><ul>{rows or '<li>none yet</li>'}</ul>"
        f"<h2>Datasets</h2><ul>{datasets or '<li>none yet</li>'}</ul>"
        "<p><a href='/docs'>API documentation</a></p></body></html>"
    )
    return HTMLResponse(page)
