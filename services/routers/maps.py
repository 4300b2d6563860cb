"""Map pages: an analysis's result map, a catchment, and an indicator's choropleth.

Every page's state is in its URL; ``?f=`` gives the data shown (GeoJSON, CSV) or the map
as a standalone HTML file, ``?embed=1`` a bare map for an iframe.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from geo.analysis import pick_series, series_layers
from geo.atlas import indicator_slice, result_view
from geo.errors import InvalidParameterError, UnknownCatchmentError
from geo.store import DONE
from maps.analysis import analysis_map, p_column
from maps.classify import DEFAULT_K, SCHEMES
from maps.indicator import indicator_map
from maps.panels import Link, member_panel
from maps.vector_tiles import VectorTiles
from services.dependencies import (
    AreaQuery,
    IndicatorQuery,
    LevelQuery,
    SettingsDep,
    StoreDep,
    YearQuery,
)
from services.schemas import problems
from services.views import (
    PAGE_CONTENT,
    EmbedQuery,
    FormatQuery,
    TextDep,
    data_response,
    map_options,
    page,
    progress_page,
)

router = APIRouter(tags=["maps"])

LayerQuery = Annotated[
    Literal["classes", "indicator"],
    Query(description="The layer shown first: the hot-spot classes or the indicator."),
]
CatchmentsQuery = Annotated[bool, Query(description="Show the catchment outlines.")]
SchemeQuery = Annotated[
    Literal["quantiles", "fisher_jenks", "equal_interval"],
    Query(description=f"mapclassify scheme of the indicator's classes: {sorted(SCHEMES)}."),
]
KQuery = Annotated[int, Query(ge=2, le=9, description="Number of indicator classes.")]


def collection_tiles(request: Request, collection_id: str, query: str = "") -> VectorTiles:
    """The vector tiles of a collection (``query``: filters on its queryables)."""
    base = request.url_for("collection_tileset", collection_id=collection_id).path
    return VectorTiles(f"{base}/{{z}}/{{y}}/{{x}}{'?' + query if query else ''}", collection_id)


def catchment_template(request: Request, analysis_id: str, indicator: str, lang: str) -> str:
    """The catchment pages' URL with ``{catchment}`` and ``{year}`` left to fill."""
    base = request.url_for("analysis_map", analysis_id=analysis_id).path
    query = urlencode({"indicator": indicator}) + "&year={year}"
    return f"{base}/catchments/{{catchment}}?{query}" + (f"&lang={lang}" if lang != "en" else "")


@router.get(
    "/maps/analyses/{analysis_id}",
    response_class=HTMLResponse,
    summary="Result map of an analysis",
    name="analysis_map",
    responses={**PAGE_CONTENT, **problems(400, 404)},
)
def analysis_map_page(
    analysis_id: str,
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    _: TextDep,
    indicator: IndicatorQuery = None,
    year: YearQuery = None,
    layer: LayerQuery = "classes",
    catchments: CatchmentsQuery = True,
    scheme: SchemeQuery = "quantiles",
    k: KQuery = DEFAULT_K,
    embed: EmbedQuery = False,
    f: FormatQuery = "html",
) -> Any:
    """Classes, indicator and catchments as layers, every year on a time slider, popups,
    legend, summary with the Moran scatterplot; a progress page while it runs."""
    record = store.analysis(analysis_id)
    if record.status != DONE:
        return progress_page(request, record, _)
    ind, yr = pick_series(record, indicator, record.params["years"][-1] if year is None else year)
    if f in ("geojson", "csv"):
        regions, _c, _s = series_layers(settings, record, ind, yr)
        frame = regions.assign(indicator=ind, year=yr)
        return data_response(frame, f, f"{analysis_id}-{ind}-{yr}", settings.geojson_precision)
    view = result_view(settings, store, record, ind, yr)
    tiles = urlencode({"indicator": ind, "year": yr})
    opts = map_options(
        request,
        settings,
        _,
        f=f,
        embed=embed,
        layer=layer,
        show_catchments=catchments,
        scheme=scheme,
        k=k,
        catchment_url=catchment_template(request, analysis_id, ind, _.lang),
        vector_tiles=collection_tiles(request, f"analysis-{analysis_id}-regions", tiles),
        outline_vector_tiles=collection_tiles(request, f"nuts-{settings.nuts_year}-level-0"),
    )
    surface = request.url_for("analysis_surface_file", analysis_id=analysis_id).path
    cog = Link("GeoTIFF (COG)", f"{surface}?{tiles}", download=True)
    opts = dataclasses.replace(opts, downloads=[*opts.downloads, cog])
    name = f"alpclusters-{analysis_id}-{ind}-{yr}"
    return page(analysis_map(view, opts, _), f, request, name, _)


@router.get(
    "/maps/analyses/{analysis_id}/catchments/{catchment_id}",
    response_class=HTMLResponse,
    summary="A cluster catchment: zoomed map, member table and downloads",
    name="catchment_page",
    responses={**PAGE_CONTENT, **problems(400, 404, 409)},
)
def catchment_page(
    analysis_id: str,
    catchment_id: str,
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    _: TextDep,
    indicator: IndicatorQuery = None,
    year: YearQuery = None,
    embed: EmbedQuery = False,
    f: FormatQuery = "html",
) -> Any:
    """One catchment of one year: its members on the map and in a table."""
    record = store.analysis(analysis_id)
    ind, yr = pick_series(record, indicator, year)
    regions, catch, _s = series_layers(settings, record, ind, yr)
    row = catch[catch["catchment"] == catchment_id]
    if not len(row):
        raise UnknownCatchmentError(
            f"analysis {analysis_id} has no catchment {catchment_id!r} for {ind} in {yr}; "
            f"its catchments: {catch['catchment'].tolist() or 'none'}"
        )
    members = regions[regions["catchment"] == catchment_id]
    if f in ("geojson", "csv"):
        frame = members.assign(indicator=ind, year=yr)
        name = f"{analysis_id}-{ind}-{yr}-{catchment_id}"
        return data_response(frame, f, name, settings.geojson_precision)
    view = dataclasses.replace(result_view(settings, store, record, ind, yr), years=[yr])
    panel = member_panel(members, row.iloc[0], record.params["method"], p_column(record.params), _)
    opts = map_options(
        request,
        settings,
        _,
        f=f,
        embed=embed,
        focus=row.geometry.iloc[0],
        catchment_url=catchment_template(request, analysis_id, ind, _.lang),
        extra_html=panel,
        fine_layer_regions=10**9,
    )
    return page(
        analysis_map(view, opts, _), f, request, f"alpclusters-{analysis_id}-{catchment_id}", _
    )


@router.get(
    "/maps/datasets/{dataset_id}",
    response_class=HTMLResponse,
    summary="Indicator map: a choropleth of one indicator",
    name="indicator_map",
    responses={**PAGE_CONTENT, **problems(400, 404)},
)
def indicator_map_page(
    dataset_id: str,
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    _: TextDep,
    indicator: IndicatorQuery = None,
    year: YearQuery = None,
    level: LevelQuery = 3,
    area: AreaQuery = "alpine-space",
    scheme: SchemeQuery = "quantiles",
    k: KQuery = DEFAULT_K,
    embed: EmbedQuery = False,
    f: FormatQuery = "html",
) -> Any:
    """Classes by a mapclassify scheme, a colour-blind-safe palette, "no data" in grey."""
    data = indicator_slice(settings, store, dataset_id, indicator=indicator, level=level, area=area)
    yr = year if year is not None else data.years[-1]
    if yr not in data.years:
        raise InvalidParameterError(
            f"indicator {data.indicator.code!r} has no value in {yr} here; years: {data.years}"
        )
    name = f"{dataset_id}-{data.indicator.code}-{yr}"
    if f in ("geojson", "csv"):
        frame = data.year_frame(yr).assign(indicator=data.indicator.code, year=yr)
        return data_response(frame, f, name, settings.geojson_precision)
    opts = map_options(request, settings, _, f=f, embed=embed, scheme=scheme, k=k)
    return page(indicator_map(data, yr, opts, _), f, request, f"alpclusters-{name}", _)
