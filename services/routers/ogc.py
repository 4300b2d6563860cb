"""OGC API – Features, Part 1 (core, GeoJSON, HTML, OpenAPI 3.0) and Part 2 (CRS) at /ogc.

Every collection of :mod:`geo.collections` is served from :class:`geo.ogc.Catalogue`, which
keeps each layer's GeoJSON pieces: a page is a join of cached bytes. Errors are RFC 9457
problems; invalid parameters answer 400 (OGC's status, not FastAPI's 422).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal
from urllib.parse import quote

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.routing import APIRoute

from geo.crs import CRS84, canonical, crs_info
from geo.errors import InvalidParameterError
from geo.exports import FORMATS as EXPORTS
from geo.ogc import (
    CONFORMANCE,
    GEOJSON,
    Catalogue,
    CollectionInfo,
    FeatureLayer,
    collection_document,
    feature_collection,
    queryables,
)
from geo.ogc_query import (
    ITEMS_PARAMETERS,
    LIMIT_DEFAULT,
    LIMIT_MAX,
    ItemQuery,
    check_parameters,
    clamp_limit,
    parse_bbox,
    parse_datetime,
    parse_properties,
)
from services import ogc_schemas as schemas
from services.ogc_web import (
    HTML,
    JSON,
    collection_path,
    crumbs,
    href,
    link,
    output_format,
    page,
    self_links,
)
from services.responses import GeoJSONResponse
from services.schemas import problems

TILE_TEMPLATE = "/tiles/WebMercatorQuad/{tileMatrix}/{tileRow}/{tileCol}"
_catalogue_lock = threading.Lock()


class OgcRoute(APIRoute):
    """Answers invalid parameter values with 400 (/req/core/query-param-invalid)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                detail = "; ".join(
                    f"{e['loc'][-1]}={e.get('input')!r}: {e['msg']}" for e in exc.errors()
                )
                raise InvalidParameterError(detail) from None

        return route


router = APIRouter(prefix="/ogc", tags=["OGC API – Features"], route_class=OgcRoute)
# f=html (or an Accept header preferring HTML) answers an HTML page
OR_HTML: dict[int | str, dict[str, Any]] = {
    200: {"content": {HTML: {"schema": {"type": "string"}}}}
}
OF_COLLECTION = problems(400, 404)  # bad parameter; unknown collection or feature


def get_catalogue(request: Request) -> Catalogue:
    """The app's catalogue of collections, made on first use."""
    state = request.app.state
    with _catalogue_lock:
        if getattr(state, "ogc_catalogue", None) is None:
            state.ogc_catalogue = Catalogue(state.settings, state.store)
    catalogue: Catalogue = state.ogc_catalogue
    return catalogue


class SchemaJSONResponse(JSONResponse):
    """A JSON Schema document (the queryables)."""

    media_type = "application/schema+json"


CatalogueDep = Annotated[Catalogue, Depends(get_catalogue)]
FormatQuery = Annotated[
    Literal["json", "html"] | None,
    Query(description="Output format; by default chosen from the Accept header (JSON)."),
]
CollectionId = Annotated[str, Path(alias="collectionId", description="Collection id.")]
FeatureId = Annotated[str, Path(alias="featureId", description="Feature id.")]


def collection_links(request: Request, info: CollectionInfo, fmt: str) -> list[dict[str, Any]]:
    """self/alternate, items (GeoJSON, HTML), queryables, downloads, tilesets and the tile
    template, licence."""
    base = collection_path(info.id)
    return [
        *self_links(request, base, fmt),
        link(href(request, base + "/items", [("f", "json")]), "items", GEOJSON, "Features"),
        link(href(request, base + "/items", [("f", "html")]), "items", HTML, "Features (HTML)"),
        link(
            href(request, base + "/queryables"),
            "http://www.opengis.net/def/rel/ogc/1.0/queryables",
            "application/schema+json",
            "Queryable properties",
        ),
        *(
            link(href(request, base + "/export", [("f", k)]), "enclosure", e.media_type, e.title)
            for k, e in EXPORTS.items()
        ),
        link(
            href(request, base + "/tiles"),
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            JSON,
            "Vector tilesets",
        ),
        link(
            href(request, base) + TILE_TEMPLATE,
            "item",
            "application/vnd.mapbox-vector-tile",
            "Vector tiles (WebMercatorQuad), URL template",
            templated=True,
        ),
        link(href(request, base + "/license"), "license", "text/plain", info.attribution),
    ]


# -- landing page, conformance, collections -------------------------------------------------


@router.get(
    "",
    summary="Landing page",
    response_model=schemas.LandingPage,
    responses={**OR_HTML, **problems(400)},
)
def landing(request: Request, f: FormatQuery = None) -> Response:
    """Links to the API definition, the conformance classes and the collections."""
    check_parameters(request.query_params, ["f"])
    fmt = output_format(request, f)
    body = {
        "title": "AlpClusters – OGC API – Features",
        "description": "NUTS regions, regional indicators and hot-spot analyses of the Alps, "
        "for GIS clients (QGIS, ArcGIS Pro, GDAL).",
        "links": [
            *self_links(request, "/ogc", fmt),
            link(
                href(request, "/openapi.json"),
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "The API definition",
            ),
            link(href(request, "/docs"), "service-doc", HTML, "The API documentation"),
            link(href(request, "/ogc/conformance"), "conformance", JSON, "Conformance classes"),
            link(href(request, "/ogc/collections"), "data", JSON, "Collections"),
        ],
    }
    if fmt == "json":
        return JSONResponse(body)
    return page(
        request,
        "landing.html",
        title=body["title"],
        body=body,
        links=body["links"],
        crumbs=crumbs(request),
        collections_url=href(request, "/ogc/collections", [("f", "html")]),
        conformance_url=href(request, "/ogc/conformance", [("f", "html")]),
        root_url=href(request, "/ogc"),
    )


@router.get(
    "/conformance",
    summary="Conformance classes",
    response_model=schemas.Conformance,
    responses={**OR_HTML, **problems(400)},
)
def conformance(request: Request, f: FormatQuery = None) -> Response:
    """OGC API – Features Part 1 core, GeoJSON, HTML, OpenAPI 3.0 and Part 2 CRS."""
    check_parameters(request.query_params, ["f"])
    fmt = output_format(request, f)
    body = {"conformsTo": list(CONFORMANCE)}
    if fmt == "json":
        return JSONResponse(body)
    links = self_links(request, "/ogc/conformance", fmt)
    return page(
        request,
        "conformance.html",
        title="Conformance classes",
        body=body,
        links=links,
        crumbs=crumbs(request),
    )


@router.get(
    "/collections",
    summary="Feature collections",
    response_model=schemas.Collections,
    responses={**OR_HTML, **problems(400)},
)
def collections(request: Request, catalogue: CatalogueDep, f: FormatQuery = None) -> Response:
    """NUTS levels, dataset versions by NUTS level, and finished analyses."""
    check_parameters(request.query_params, ["f"])
    fmt = output_format(request, f)
    docs = []
    for cid in catalogue.ids():
        info = catalogue.info(cid)
        docs.append(collection_document(info, collection_links(request, info, fmt)))
    body = {"links": self_links(request, "/ogc/collections", fmt), "collections": docs}
    if fmt == "json":
        return JSONResponse(body)
    for doc in docs:
        base = collection_path(doc["id"])
        doc["html"] = href(request, base, [("f", "html")])
        doc["items_html"] = href(request, base + "/items", [("f", "html")])
        doc["items_json"] = href(request, base + "/items", [("f", "json")])
    return page(
        request,
        "collections.html",
        title="Collections",
        body=body,
        links=body["links"],
        crumbs=crumbs(request),
    )


@router.get(
    "/collections/{collectionId}",
    summary="A feature collection",
    response_model=schemas.Collection,
    responses={**OR_HTML, **OF_COLLECTION},
)
def collection(
    request: Request, collection_id: CollectionId, catalogue: CatalogueDep, f: FormatQuery = None
) -> Response:
    """Title, description, extents, CRSs, queryables and links of one collection."""
    check_parameters(request.query_params, ["f"])
    fmt = output_format(request, f)
    info = catalogue.info(collection_id)
    body = collection_document(info, collection_links(request, info, fmt))
    if fmt == "json":
        return JSONResponse(body)
    return page(
        request,
        "collection.html",
        title=info.title,
        body=body,
        links=body["links"],
        queryables=info.queryables,
        items_html=href(request, collection_path(info.id) + "/items", [("f", "html")]),
        crumbs=crumbs(request, ("Collections", href(request, "/ogc/collections"))),
    )


@router.get(
    "/collections/{collectionId}/queryables",
    summary="Queryable properties (JSON Schema)",
    response_class=SchemaJSONResponse,
    responses=OF_COLLECTION,
)
def get_queryables(
    request: Request,
    collection_id: CollectionId,
    catalogue: CatalogueDep,
    f: Annotated[Literal["json"] | None, Query(description="Output format.")] = None,
) -> Response:
    """The properties that ``/items`` filters on by equality (``?CNTR_CODE=AT``)."""
    check_parameters(request.query_params, ["f"])
    layer = catalogue.layer(collection_id)
    url = href(request, collection_path(collection_id) + "/queryables")
    return SchemaJSONResponse(queryables(layer, url))


@router.get(
    "/collections/{collectionId}/license",
    summary="Licence and attribution",
    response_class=PlainTextResponse,
    responses=OF_COLLECTION,
)
def license_text(
    request: Request, collection_id: CollectionId, catalogue: CatalogueDep
) -> Response:
    """The attribution that every use of the collection must carry."""
    check_parameters(request.query_params, [])
    return PlainTextResponse(catalogue.info(collection_id).attribution + "\n")


# -- features -------------------------------------------------------------------------------

LimitQuery = Annotated[
    int,
    Query(
        description=f"Features per page, 1 to {LIMIT_MAX} (larger values are served as "
        f"{LIMIT_MAX}). Follow the `next` link for the following page.",
    ),
]
OffsetQuery = Annotated[int, Query(ge=0, description="Features to skip (set by `next` links).")]
BboxQuery = Annotated[
    str | None,
    Query(
        description="minx,miny,maxx,maxy (or 6 numbers with heights, which are ignored) in the "
        "axis order of `bbox-crs` (CRS84: longitude first; EPSG:4326: latitude first).",
    ),
]
BboxCrsQuery = Annotated[
    str | None, Query(alias="bbox-crs", description="CRS of `bbox` (default CRS84).")
]
DatetimeQuery = Annotated[
    str | None,
    Query(
        alias="datetime",
        description="RFC 3339 instant (2019-01-01T00:00:00Z, or 2019-01-01, or 2019) or "
        "interval (2015/2019, ../2019, 2015/..). Features of collections without time "
        "always match.",
    ),
]
CrsQuery = Annotated[
    str | None,
    Query(description="Output CRS (default CRS84), one of the collection's `crs` list."),
]
PropertiesQuery = Annotated[
    str | None, Query(description="Comma-separated properties to return (default: all).")
]


def item_query(
    layer: FeatureLayer,
    request: Request,
    crs: str | None,
    bbox: str | None = None,
    bbox_crs: str | None = None,
    when: str | None = None,
    properties: str | None = None,
) -> ItemQuery:
    """The query of ``/items`` (or one item) from its parameters."""
    queryable = layer.info.queryables
    equals: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in queryable:
            equals.setdefault(key, []).append(value)
    if bbox_crs is not None and bbox is None:
        raise InvalidParameterError("bbox-crs needs a bbox")
    return ItemQuery(
        crs=crs_info(canonical(crs) if crs else CRS84),
        area=parse_bbox(bbox, bbox_crs) if bbox is not None else None,
        time=parse_datetime(when) if when is not None else None,
        equals=tuple((k, tuple(v)) for k, v in equals.items()),
        properties=None
        if properties is None
        else parse_properties(properties, layer.properties.columns),
    )


def page_links(
    request: Request, collection_id: str, fmt: str, limit: int, offset: int, counts: tuple[int, int]
) -> list[dict[str, Any]]:
    """self/alternate, next (absent on the last page) and prev, every other parameter kept."""
    matched, returned = counts
    path = collection_path(collection_id) + "/items"
    params = request.query_params.multi_items()
    kept = [(k, v) for k, v in params if k not in ("f", "limit", "offset")]
    at = [*kept, ("limit", limit), ("offset", offset)]
    links = self_links(request, path, fmt, GEOJSON, at)
    kind = GEOJSON if fmt == "json" else HTML
    if offset + returned < matched:
        nxt = [*kept, ("limit", limit), ("offset", offset + returned), ("f", fmt)]
        links.append(link(href(request, path, nxt), "next", kind, "next page"))
    if offset > 0:
        prv = [*kept, ("limit", limit), ("offset", max(0, offset - limit)), ("f", fmt)]
        links.append(link(href(request, path, prv), "prev", kind, "previous page"))
    collection = href(request, collection_path(collection_id))
    return [*links, link(collection, "collection", JSON, "The collection")]


@router.get(
    "/collections/{collectionId}/items",
    summary="Features of a collection",
    response_class=GeoJSONResponse,
    responses={200: {"content": {HTML: {}}, "model": schemas.FeatureCollection}, **OF_COLLECTION},
)
def items(
    request: Request,
    collection_id: CollectionId,
    catalogue: CatalogueDep,
    f: FormatQuery = None,
    limit: LimitQuery = LIMIT_DEFAULT,
    offset: OffsetQuery = 0,
    bbox: BboxQuery = None,
    bbox_crs: BboxCrsQuery = None,
    when: DatetimeQuery = None,
    crs: CrsQuery = None,
    properties: PropertiesQuery = None,
) -> Response:
    """A page of features as GeoJSON (`Content-Crs` names the CRS), filtered by `bbox`,
    `datetime` and equality on the queryable properties (`?CNTR_CODE=AT`)."""
    layer = catalogue.layer(collection_id)
    check_parameters(request.query_params, [*ITEMS_PARAMETERS, *layer.info.queryables])
    fmt = output_format(request, f)
    query = item_query(layer, request, crs, bbox, bbox_crs, when, properties)
    limit = clamp_limit(limit)
    rows = layer.select(query)
    chosen = rows[offset : offset + limit]
    counts = (len(rows), len(chosen))
    links = page_links(request, layer.info.id, fmt, limit, offset, counts)
    if fmt == "html":
        return items_page(request, layer, query, chosen, links, offset, len(rows))
    body = feature_collection(layer.features(chosen, query), len(rows), len(chosen), links)
    return Response(body, media_type=GEOJSON, headers={"Content-Crs": query.crs.header})


def items_page(
    request: Request,
    layer: FeatureLayer,
    query: ItemQuery,
    chosen: np.ndarray,
    links: list[dict[str, Any]],
    offset: int,
    matched: int,
) -> HTMLResponse:
    """The page as an HTML table, one row per feature."""
    columns = list(layer.properties.columns if query.properties is None else query.properties)
    frame = layer.properties.iloc[chosen][columns].astype(object)
    frame = frame.where(frame.notna(), "")
    base = collection_path(layer.info.id) + "/items/"
    rows = [
        {"id": fid, "href": href(request, base + quote(fid, safe=""), [("f", "html")]), "values": v}
        for fid, v in zip(layer.ids[chosen], frame.itertuples(index=False), strict=True)
    ]
    rel = {lk["rel"]: lk["href"] for lk in links}
    return page(
        request,
        "items.html",
        title=f"{layer.info.title}: features",
        links=links,
        columns=columns,
        rows=rows,
        matched=matched,
        first=offset + 1 if len(chosen) else 0,
        last=offset + len(chosen),
        next=rel.get("next"),
        prev=rel.get("prev"),
        crumbs=crumbs(
            request,
            ("Collections", href(request, "/ogc/collections", [("f", "html")])),
            (layer.info.id, href(request, collection_path(layer.info.id), [("f", "html")])),
        ),
    )


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature",
    response_class=GeoJSONResponse,
    responses={200: {"content": {HTML: {}}, "model": schemas.Feature}, **OF_COLLECTION},
)
def item(
    request: Request,
    collection_id: CollectionId,
    feature_id: FeatureId,
    catalogue: CatalogueDep,
    f: FormatQuery = None,
    crs: CrsQuery = None,
    properties: PropertiesQuery = None,
) -> Response:
    """One feature by its id (the NUTS code, or the collection's id scheme)."""
    layer = catalogue.layer(collection_id)
    check_parameters(request.query_params, ["f", "crs", "properties"])
    row = layer.position(feature_id)
    fmt = output_format(request, f)
    query = item_query(layer, request, crs, properties=properties)
    path = collection_path(layer.info.id) + "/items/" + quote(feature_id, safe="")
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "f"]
    links = [
        *self_links(request, path, fmt, GEOJSON, kept),
        link(href(request, collection_path(layer.info.id)), "collection", JSON, "The collection"),
    ]
    if fmt == "json":
        body = layer.feature(row, query, links)
        return Response(body, media_type=GEOJSON, headers={"Content-Crs": query.crs.header})
    names = layer.properties.columns if query.properties is None else query.properties
    values = layer.properties.iloc[row][list(names)]
    return page(
        request,
        "item.html",
        title=f"{layer.info.id}: {feature_id}",
        links=links,
        properties=[(k, "" if pd.isna(v) else v) for k, v in values.items()],
        geometry_type=getattr(layer.geometries[layer.codes[row]], "geom_type", "none"),
        geojson=href(request, path, [("f", "json")]),
        crumbs=crumbs(
            request,
            ("Collections", href(request, "/ogc/collections", [("f", "html")])),
            (layer.info.id, href(request, collection_path(layer.info.id), [("f", "html")])),
        ),
    )
