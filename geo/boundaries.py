"""GISCO NUTS region layers ("RG"), levels 0 to 3, in EPSG:4326."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from geo.errors import InvalidParameterError
from geo.settings import Settings
from geo.sources import locate, source

log = logging.getLogger(__name__)

COLUMNS = [
    "NUTS_ID",
    "LEVL_CODE",
    "CNTR_CODE",
    "NAME_LATN",
    "NUTS_NAME",
    "MOUNT_TYPE",
    "URBN_TYPE",
    "COAST_TYPE",
]
EQUAL_AREA_CRS = "EPSG:3035"
LEVELS = (0, 1, 2, 3)
NUTS_YEARS = (2003, 2006, 2010, 2013, 2016, 2021, 2024)
SCALES = ("01M", "03M", "10M", "20M", "60M")

_memo: dict[tuple[Path, float], gpd.GeoDataFrame] = {}
_lock = threading.Lock()


def layer_key(settings: Settings, year: int | None = None, scale: str | None = None) -> str:
    """Manifest key of the boundary layer, e.g. ``"2021-03M"``."""
    return f"{year or settings.nuts_year}-{scale or settings.nuts_scale}"


def load_boundaries(
    settings: Settings, year: int | None = None, scale: str | None = None
) -> gpd.GeoDataFrame:
    """Load the NUTS regions of one version and scale, all levels, indexed by ``NUTS_ID``.

    The layer comes from the mirror or the official download (see :mod:`geo.sources`) and
    is cached as GeoParquet under ``data/nuts/cache``. Invalid geometries are repaired
    with ``make_valid``.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns :data:`COLUMNS` (``NUTS_ID`` as index) and ``geometry``, in EPSG:4326.
    """
    key = layer_key(settings, year, scale)
    cached = settings.cache_dir / f"nuts-{key}.parquet"
    if not cached.is_file():
        build_cache(settings, key, cached)
    stamp = (cached, cached.stat().st_mtime)
    with _lock:
        if stamp not in _memo:
            _memo[stamp] = gpd.read_parquet(cached).set_index("NUTS_ID", drop=False)
        return _memo[stamp]


def build_cache(settings: Settings, key: str, cached: Path) -> None:
    """Read the source layer, normalise it and write the GeoParquet cache atomically."""
    src = source(settings, "boundaries", key)
    path = locate(settings, src)
    raw = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    gdf = normalise(raw)
    _write_cache(gdf, cached)
    log.info("cached %d NUTS %s regions in %s", len(gdf), key, cached)


def _write_cache(gdf: gpd.GeoDataFrame, cached: Path) -> None:
    """Write GeoParquet atomically, so a reader never sees half a file."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    gdf.to_parquet(tmp)
    tmp.replace(cached)


def normalise(raw: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Keep the GISCO attribute columns, EPSG:4326 and valid geometries."""
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise InvalidParameterError(f"boundary layer lacks the GISCO columns {missing}")
    gdf = raw[[*COLUMNS, "geometry"]].copy()
    gdf = gdf.to_crs(4326) if gdf.crs is not None else gdf.set_crs(4326)
    gdf["LEVL_CODE"] = gdf["LEVL_CODE"].astype("int8")
    for col in ("MOUNT_TYPE", "URBN_TYPE", "COAST_TYPE"):
        gdf[col] = pd.to_numeric(gdf[col], errors="coerce").astype("Int64")
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.info("repairing %d invalid GISCO geometries", int(invalid.sum()))
        gdf.loc[invalid, "geometry"] = shapely.make_valid(gdf.geometry[invalid].values)
    return gdf.sort_values(["LEVL_CODE", "NUTS_ID"]).reset_index(drop=True)


def regions(
    settings: Settings, level: int, codes: list[str] | None = None, year: int | None = None
) -> gpd.GeoDataFrame:
    """Regions of one level, optionally restricted to ``codes``, in the given order."""
    if level not in LEVELS:
        raise InvalidParameterError(f"level must be one of {list(LEVELS)}, not {level!r}")
    gdf = load_boundaries(settings, year)
    layer = gdf[gdf["LEVL_CODE"] == level]
    if not len(layer):
        raise InvalidParameterError(
            f"the NUTS {layer_key(settings, year)} layer has no level-{level} regions; "
            f"available levels: {sorted(gdf['LEVL_CODE'].unique().tolist())}"
        )
    return layer if codes is None else layer.loc[codes]


def area_km2(gdf: gpd.GeoDataFrame) -> pd.Series:
    """Area of each geometry in km², measured in the equal-area EPSG:3035."""
    return gdf.geometry.to_crs(EQUAL_AREA_CRS).area / 1e6


def import_layer(settings: Settings, path: Path, year: int, scale: str) -> gpd.GeoDataFrame:
    """Import a GISCO NUTS "RG" file obtained by hand into the cache as ``year``-``scale``."""
    if not path.is_file():
        raise InvalidParameterError(f"{path}: no such file")
    if year not in NUTS_YEARS or scale not in SCALES:
        raise InvalidParameterError(
            f"NUTS {year} {scale} is not a GISCO release; years {list(NUTS_YEARS)}, "
            f"scales {list(SCALES)}"
        )
    raw = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    gdf = normalise(raw)
    _write_cache(gdf, settings.cache_dir / f"nuts-{layer_key(settings, year, scale)}.parquet")
    return gdf
