"""RFC 7946 GeoJSON: WGS 84 longitude/latitude, right-hand rule, rounded coordinates."""

from __future__ import annotations

import json
import math
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely


def feature_collection(
    gdf: gpd.GeoDataFrame, id_column: str | None = None, precision: int = 5
) -> dict[str, Any]:
    """A FeatureCollection with ids from ``id_column`` (default: the index).

    Exterior rings are counter-clockwise, coordinates are rounded to ``precision`` decimal
    places, geometries are valid, and there is no ``crs`` member. Non-finite numbers become
    ``null``.
    """
    gdf = gdf.to_crs(4326) if gdf.crs is not None and not gdf.crs.equals(4326) else gdf
    geoms = shapely.set_precision(gdf.geometry.values, 10.0**-precision, mode="pointwise")
    geoms = shapely.make_valid(geoms)
    geoms = shapely.orient_polygons(geoms, exterior_cw=False)
    props = gdf.drop(columns=gdf.geometry.name)
    ids = props[id_column] if id_column else pd.Series(gdf.index, index=gdf.index)
    records = json.loads(props.to_json(orient="records", date_format="iso", double_precision=10))
    features = [
        {"type": "Feature", "id": str(fid), "geometry": _geometry(geom), "properties": _clean(rec)}
        for fid, geom, rec in zip(ids, geoms, records, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def _geometry(geom: shapely.Geometry | None) -> dict[str, Any] | None:
    if geom is None or geom.is_empty:
        return None
    return shapely.geometry.mapping(geom)


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value
