"""NUTS regions as RFC 7946 GeoJSON."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.geojson import feature_collection
from services.dependencies import AreaQuery, LevelQuery, SettingsDep
from services.responses import GeoJSONResponse
from services.schemas import problems

router = APIRouter(tags=["regions"])


@router.get(
    "/regions",
    response_class=GeoJSONResponse,
    summary="NUTS regions of an area",
    responses=problems(400),
)
def regions(settings: SettingsDep, level: LevelQuery = 3, area: AreaQuery = "alpine-space") -> Any:
    """The GISCO NUTS regions of ``area`` at ``level``, ids equal to the NUTS code."""
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, area, level)
    gdf = layer.loc[ids].drop(columns="NUTS_ID")
    return GeoJSONResponse(feature_collection(gdf, precision=settings.geojson_precision))
