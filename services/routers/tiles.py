"""OGC API - Tiles: Mapbox Vector Tiles of every collection on WebMercatorQuad.

Paths follow OGC's ``{tileMatrix}/{tileRow}/{tileCol}``, that is ``{z}/{y}/{x}`` (row from
the north, column from the west: the XYZ scheme of Leaflet). The library does the work
(:mod:`geo.tiles`); encoded tiles are cached in memory per application.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse

from geo.collections import Collection, load_collection
from geo.tiles import MAX_ZOOM, WEB_MERCATOR_CRS, WEB_MERCATOR_QUAD, TileCache, tilejson
from services.dependencies import SettingsDep, StoreDep
from services.schemas import problems

router = APIRouter(prefix="/ogc", tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"
# A collection's content never changes under its id (NUTS year, dataset version, analysis
# hash); a week, then a cheap revalidation by ETag in case the boundary scale was changed.
CACHE_CONTROL = "public, max-age=604800"
TILING_SCHEME = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_cache_lock = threading.Lock()


def get_tile_cache(request: Request) -> TileCache:
    """The application's tile cache, made on first use."""
    state = request.app.state
    with _cache_lock:
        if not hasattr(state, "tile_cache"):
            state.tile_cache = TileCache()
        cache: TileCache = state.tile_cache
        return cache


CacheDep = Annotated[TileCache, Depends(get_tile_cache)]
TILE_PATH = "/collections/{collection_id}/tiles/WebMercatorQuad"


def _loader(settings: SettingsDep, store: StoreDep, collection_id: str) -> Callable[[], Collection]:
    """Loads the collection only when the cache does not hold what is asked for."""

    def load() -> Collection:
        return load_collection(settings, store, collection_id)

    return load


LoaderDep = Annotated[Callable[[], Collection], Depends(_loader)]


def _not_modified(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match`` names this entity tag (weak comparison, or ``*``)."""
    tags = [t.strip().removeprefix("W/") for t in (header or "").split(",")]
    return "*" in tags or etag in tags


@router.get(
    TILE_PATH + "/{z}/{y}/{x}",
    name="collection_tile",
    summary="A Mapbox Vector Tile of a collection",
    response_class=Response,
    responses={
        200: {"content": {MVT: {}}, "description": "The features in the tile."},
        204: {"description": "No feature of the collection is in this tile."},
        304: {"description": "The tile named by If-None-Match is still current."},
        **problems(400, 404),
    },
)
def collection_tile(
    collection_id: str,
    z: Annotated[int, Path(description=f"Zoom level (tileMatrix), 0 to {MAX_ZOOM}.")],
    y: Annotated[int, Path(description="Row (tileRow), from the north: 0 to 2^z - 1.")],
    x: Annotated[int, Path(description="Column (tileCol), from the west: 0 to 2^z - 1.")],
    request: Request,
    cache: CacheDep,
    load: LoaderDep,
) -> Response:
    """Features of the collection in tile z/y/x, generalised for the zoom (one layer named
    after the collection). Query parameters named after the collection's queryables keep
    the features with that value, e.g. `?indicator=EUR_HAB&year=2018`."""
    where = dict(request.query_params)
    tile = cache.tile(collection_id, z, x, y, load, where)
    headers = {"Cache-Control": CACHE_CONTROL}
    if not tile.data:
        return Response(status_code=204, headers=headers)
    headers["ETag"] = tile.etag
    if _not_modified(request.headers.get("if-none-match"), tile.etag):
        return Response(status_code=304, headers=headers)
    return Response(tile.data, media_type=MVT, headers=headers)


@router.get(
    TILE_PATH,
    name="collection_tileset",
    summary="Tileset metadata (TileJSON)",
    responses=problems(400, 404),
)
def collection_tileset(
    collection_id: str, request: Request, cache: CacheDep, load: LoaderDep
) -> JSONResponse:
    """TileJSON 3.0.0 with the OGC tileset fields: the URL template, zooms, bounds, layer
    and its fields. Filters given here (queryables) are carried into the template."""
    source = cache.source(collection_id, load)
    source.matches(dict(request.query_params))  # refuses unknown filters
    base = str(request.url_for("collection_tileset", collection_id=collection_id))
    query = f"?{request.url.query}" if request.url.query else ""
    doc = tilejson(source, f"{base}/{{z}}/{{y}}/{{x}}{query}")
    doc["links"] = [
        {"rel": "self", "href": str(request.url), "type": "application/json"},
        {
            "rel": "item",
            "href": f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}{query}",
            "type": MVT,
            "templated": True,
        },
        {"rel": TILING_SCHEME, "href": WEB_MERCATOR_QUAD},
    ]
    return JSONResponse(doc, headers={"Cache-Control": CACHE_CONTROL})


@router.get(
    "/collections/{collection_id}/tiles",
    summary="Tilesets of a collection",
    responses=problems(404),
)
def collection_tilesets(
    collection_id: str, request: Request, cache: CacheDep, load: LoaderDep
) -> dict[str, Any]:
    """The collection's one tileset: vector tiles on WebMercatorQuad."""
    source = cache.source(collection_id, load)
    base = str(request.url_for("collection_tileset", collection_id=collection_id))
    tileset = {
        "title": source.collection.title,
        "dataType": "vector",
        "crs": WEB_MERCATOR_CRS,
        "tileMatrixSetURI": WEB_MERCATOR_QUAD,
        "links": [
            {"rel": "self", "href": base, "type": "application/json"},
            {
                "rel": "item",
                "href": f"{base}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}",
                "type": MVT,
                "templated": True,
            },
            {"rel": TILING_SCHEME, "href": WEB_MERCATOR_QUAD},
        ],
    }
    return {"tilesets": [tileset], "links": [{"rel": "self", "href": str(request.url)}]}
