"""Hot spots and catchments of any vector file, for the command line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo.analysis import AnalysisParams, compute_hotspots
from geo.catchments import catchment_labels, catchments
from geo.errors import InvalidParameterError
from geo.exports import neutralise
from geo.weights import build_weights

OUTPUT_SUFFIXES = (".geojson", ".parquet", ".csv")
RESULT_COLUMNS = (
    "value",
    "status",
    "n_neighbors",
    "z",
    "p_norm",
    "I",
    "quadrant",
    "cluster",
    "p_sim",
    "bin",
    "significant",
    "hot",
    "catchment",
)


def read_vector(path: Path, id_column: str, value_columns: Sequence[str]) -> gpd.GeoDataFrame:
    """Read a vector file, checking that the id is unique and the values are numeric."""
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no such file")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable files
        raise InvalidParameterError(f"{path}: not a vector file GDAL can read ({exc})") from exc
    missing = [c for c in (id_column, *value_columns) if c not in gdf.columns]
    if missing:
        raise InvalidParameterError(
            f"{path}: no column {missing}; columns: {[c for c in gdf.columns if c != 'geometry']}"
        )
    dup = gdf[id_column][gdf[id_column].duplicated()]
    if len(dup):
        raise InvalidParameterError(
            f"{path}: column {id_column!r} is not unique; repeated: {dup.astype(str).tolist()[:5]}"
        )
    for col in value_columns:
        if not pd.api.types.is_numeric_dtype(gdf[col]):
            bad = pd.to_numeric(gdf[col], errors="coerce").isna() & gdf[col].notna()
            row = int(bad.to_numpy().argmax())
            raise InvalidParameterError(
                f"{path}: row {row + 1}, column {col!r}: {gdf[col].iloc[row]!r} is not a number"
            )
    if gdf.crs is None:
        raise InvalidParameterError(f"{path}: the layer has no CRS; set one (e.g. EPSG:4326)")
    return gdf.set_index(gdf[id_column].astype(str), drop=False).rename_axis(None)


def hotspots_file(
    gdf: gpd.GeoDataFrame, id_column: str, value_columns: Sequence[str], params: AnalysisParams
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Per-feature statistics (prefixed by the value column when there are several) and the
    catchments of every value column."""
    weights = build_weights(gdf, params.weights)
    out = gdf[[id_column]].copy()
    layer = gdf.to_crs(4326)
    layer = layer.assign(CNTR_CODE=layer.get("CNTR_CODE", pd.Series("", index=layer.index)))
    all_catch = []
    for col in value_columns:
        result = compute_hotspots(gdf[col].astype(float), weights, params)
        frame = result.to_frame().assign(catchment=catchment_labels(result, weights))
        frame = frame[[c for c in RESULT_COLUMNS if c in frame]].drop(columns="value")
        if len(value_columns) > 1:
            frame = frame.add_prefix(f"{col}_")
        out = out.join(frame)
        catch = catchments(result, weights, layer)
        catch.insert(0, "value_column", col)
        all_catch.append(catch)
    out = gpd.GeoDataFrame(out, geometry=gdf.geometry, crs=gdf.crs)
    catch = gpd.GeoDataFrame(pd.concat(all_catch, ignore_index=True), geometry="geometry", crs=4326)
    return out.reset_index(drop=True), catch


def write_output(gdf: gpd.GeoDataFrame, path: Path) -> None:
    """Write GeoJSON (RFC 7946, EPSG:4326), GeoParquet, or CSV without geometry."""
    suffix = path.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise InvalidParameterError(
            f"output {path}: unsupported type {suffix!r}; use {list(OUTPUT_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".geojson":
        gdf.to_crs(4326).to_file(path, driver="GeoJSON", RFC7946="YES")
    elif suffix == ".parquet":
        gdf.to_parquet(path)
    else:  # formulas neutralised, as in every CSV the service writes
        table = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        for column in table.select_dtypes(include=["object", "string"]).columns:
            table[column] = neutralise(table[column])
        table.to_csv(path, index=False)
