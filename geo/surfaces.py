"""Rasters out: an analysis as a Cloud-Optimized GeoTIFF, and a smoothed hot-spot surface.

:func:`analysis_surface` burns the regions of one analysed series into a grid in the
equal-area EPSG:3035 (a pixel takes the region its centre lies in) and writes a COG with
three bands:

1. ``gi_z``: the Gi* z-score (NaN where the region has none),
2. ``class``: the hot/cold class (``bin``: -3 … 3; 0 not significant),
3. ``catchment``: the catchment number (``C1`` -> 1, …; 0 outside any catchment); the
   lookup is in the band's tags (``CATCHMENT_1=C1``) and in the dataset tag
   ``CATCHMENTS`` (JSON ``{"1": "C1", …}``).

A GeoTIFF holds one sample type for all its bands, so all three are ``float32``: class
and catchment numbers are small integers, exact in ``float32``. Outside every region
each band is nodata (``NODATA`` = -9999). The file is written by GDAL's ``COG`` driver
(GDAL >= 3.1): 512 x 512 tiles, DEFLATE, nearest-neighbour overviews down to one tile.

:func:`kde_surface` writes the Gaussian kernel density of z-scores placed at region
centroids, ``f(p) = sum_i z_i / (2 pi h^2) * exp(-|p - c_i|^2 / (2 h^2))``, in z per km²,
as a one-band COG on the same kind of grid.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from geo.errors import InvalidParameterError

if TYPE_CHECKING:
    import geopandas as gpd

    from geo.records import AnalysisRecord
    from geo.settings import Settings

SURFACE_CRS = "EPSG:3035"
NODATA = -9999.0
BLOCKSIZE = 512
BANDS = ("gi_z", "class", "catchment")
_MAX_PIXELS = 400_000_000
_KDE_BLOCK = 4_000_000  # pixel x point products per block of kde_surface


@dataclass(frozen=True)
class Surface:
    """A written surface: where, on which grid, and the catchment lookup."""

    path: Path
    bounds: tuple[float, float, float, float]  # EPSG:3035 xmin, ymin, xmax, ymax
    shape: tuple[int, int]  # rows, columns
    resolution_m: float
    catchments: dict[int, str]  # band-3 value -> catchment id


def grid_for(
    bounds: tuple[float, float, float, float], resolution_m: float
) -> tuple[Any, tuple[int, int], tuple[float, float, float, float]]:
    """A north-up grid covering ``bounds``, snapped outward to multiples of the resolution.

    Returns the affine transform, the shape (rows, columns) and the snapped bounds.
    """
    from affine import Affine

    if not resolution_m > 0:
        raise InvalidParameterError(f"resolution_m must be positive, not {resolution_m!r}")
    r = float(resolution_m)
    xmin, ymin = np.floor(bounds[0] / r) * r, np.floor(bounds[1] / r) * r
    xmax, ymax = np.ceil(bounds[2] / r) * r, np.ceil(bounds[3] / r) * r
    shape = (max(1, round((ymax - ymin) / r)), max(1, round((xmax - xmin) / r)))
    if shape[0] * shape[1] > _MAX_PIXELS:
        raise InvalidParameterError(
            f"a {resolution_m} m grid over these bounds has {shape[0] * shape[1]:,} pixels, "
            f"more than {_MAX_PIXELS:,}; choose a coarser resolution_m"
        )
    transform = Affine(r, 0.0, xmin, 0.0, -r, ymax)
    return transform, shape, (float(xmin), float(ymin), float(xmax), float(ymax))


def _catchment_numbers(labels: Any) -> dict[str, int]:
    """``{"C1": 1, "C2": 2, …}`` in natural order; empty/NaN labels are left out."""
    names = sorted(
        {str(v) for v in labels if isinstance(v, str) and v},
        key=lambda s: (int(m.group()) if (m := re.search(r"\d+", s)) else 0, s),
    )
    return {name: k for k, name in enumerate(names, start=1)}


def _burn(geoms: Any, values: np.ndarray, transform: Any, shape: tuple[int, int]) -> np.ndarray:
    from rasterio.features import rasterize

    pairs = [(g, float(v)) for g, v in zip(geoms, values, strict=True) if np.isfinite(v)]
    if not pairs:
        return np.full(shape, NODATA, dtype=np.float32)
    out = rasterize(pairs, out_shape=shape, transform=transform, fill=NODATA, dtype="float32")
    return np.asarray(out, dtype=np.float32)


def _band_values(frame: gpd.GeoDataFrame, z: str, klass: str, catchment: str) -> list[Any]:
    numbers = _catchment_numbers(frame[catchment])
    zs = frame[z].to_numpy(dtype=float)
    classes = frame[klass].to_numpy(dtype=float)
    catch = np.array([numbers.get(str(v), 0) for v in frame[catchment]], dtype=float)
    return [zs, classes, catch, numbers]


def write_cog(
    path: str | Path,
    bands: list[np.ndarray],
    transform: Any,
    *,
    descriptions: tuple[str, ...],
    band_tags: list[dict[str, str]] | None = None,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write float32 ``bands`` as a COG in EPSG:3035 (512 tiles, DEFLATE, overviews)."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = bands[0].shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": len(bands),
        "dtype": "float32",
        "crs": SURFACE_CRS,
        "transform": transform,
        "nodata": NODATA,
    }
    with MemoryFile() as mem, mem.open(**profile) as tmp:
        for k, data in enumerate(bands, start=1):
            tmp.write(data.astype(np.float32), k)
            tmp.set_band_description(k, descriptions[k - 1])
            tmp.update_tags(k, **((band_tags or [])[k - 1] if band_tags else {}))
        tmp.update_tags(**(tags or {}))
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
            rasterio.shutil.copy(
                tmp,
                path,
                driver="COG",
                BLOCKSIZE=BLOCKSIZE,
                COMPRESS="DEFLATE",
                PREDICTOR="YES",
                OVERVIEWS="IGNORE_EXISTING",
                OVERVIEW_RESAMPLING="NEAREST",
            )
    return path


def analysis_surface(
    regions: gpd.GeoDataFrame,
    path: str | Path,
    *,
    resolution_m: float = 1000.0,
    bounds: tuple[float, float, float, float] | None = None,
    z: str = "z",
    klass: str = "bin",
    catchment: str = "catchment",
) -> Surface:
    """Write the Gi* z, class and catchment of each region as a 3-band COG in EPSG:3035.

    Parameters
    ----------
    regions
        One row per region with a CRS and the columns ``z``, ``klass`` and ``catchment``
        (catchment ids such as ``"C1"``; ``""`` or NaN outside any) — the regions frame of
        :func:`geo.analysis.series_layers` as it is.
    path
        The ``.tif`` to write (overwritten).
    resolution_m
        Pixel size in metres.
    bounds
        EPSG:3035 bounds; default: the regions' total bounds (snapped outward).

    Returns
    -------
    Surface
    """
    missing = [c for c in (z, klass, catchment) if c not in regions.columns]
    if missing:
        raise InvalidParameterError(
            f"the regions lack the column(s) {missing}; they have {list(regions.columns)}"
        )
    frame = regions.to_crs(SURFACE_CRS)
    transform, shape, snapped = grid_for(bounds or tuple(frame.total_bounds), resolution_m)
    zs, classes, catch, numbers = _band_values(frame, z, klass, catchment)
    geoms = frame.geometry.values
    bands = [_burn(geoms, v, transform, shape) for v in (zs, classes, catch)]
    lookup = {k: name for name, k in numbers.items()}
    catch_tags = {f"CATCHMENT_{k}": name for k, name in lookup.items()}
    write_cog(
        path,
        bands,
        transform,
        descriptions=BANDS,
        band_tags=[{"STATISTIC": "Gi* z-score"}, {"CLASSES": "-3..3 (bin)"}, catch_tags],
        tags={"CATCHMENTS": json.dumps({str(k): v for k, v in lookup.items()})},
    )
    return Surface(Path(path), snapped, shape, float(resolution_m), lookup)


def analysis_surface_of(
    settings: Settings,
    record: AnalysisRecord,
    path: str | Path,
    *,
    indicator: str | None = None,
    year: int | None = None,
    resolution_m: float = 1000.0,
) -> Surface:
    """:func:`analysis_surface` of one series of a stored analysis (``store.analysis(id)``);
    the series defaults to the analysis' first indicator and year."""
    from geo.analysis import pick_series, series_layers

    ind, yr = pick_series(record, indicator, year)
    regions, _catchments, _summary = series_layers(settings, record, ind, yr)
    return analysis_surface(regions, path, resolution_m=resolution_m)


def kde_values(
    xy: np.ndarray, weights: np.ndarray, px: np.ndarray, py: np.ndarray, bandwidth_m: float
) -> np.ndarray:
    """Gaussian kernel density of ``weights`` at ``xy`` on the grid ``py`` x ``px``, per km²."""
    h2 = float(bandwidth_m) ** 2
    norm = 1e6 / (2.0 * np.pi * h2)
    out = np.empty((len(py), len(px)))
    rows = max(1, _KDE_BLOCK // max(1, len(px) * len(xy)))
    dx2 = (px[None, :] - xy[:, 0:1]) ** 2  # (n, W)
    for r0 in range(0, len(py), rows):
        dy2 = (py[r0 : r0 + rows, None] - xy[None, :, 1]) ** 2  # (R, n)
        kern = np.exp(-(dy2[:, :, None] + dx2[None, :, :]) / (2.0 * h2))  # (R, n, W)
        out[r0 : r0 + rows] = norm * np.einsum("rnw,n->rw", kern, weights)
    return out


def kde_surface(
    points: gpd.GeoDataFrame,
    path: str | Path,
    *,
    bandwidth_m: float = 25_000.0,
    resolution_m: float = 1000.0,
    bounds: tuple[float, float, float, float] | None = None,
    z: str = "z",
) -> Surface:
    """Write the Gaussian kernel density of ``z`` at the points (polygons: their centroids,
    taken in EPSG:3035) as a one-band COG (``kde_z``, z per km²).

    Parameters
    ----------
    points
        Points or polygons with a CRS and a column ``z``; rows with NaN z are left out.
    bandwidth_m
        The kernel's standard deviation ``h`` in metres.
    resolution_m, bounds
        As :func:`analysis_surface`; the default bounds are the points' bounds widened by
        three bandwidths.
    """
    if not bandwidth_m > 0:
        raise InvalidParameterError(f"bandwidth_m must be positive, not {bandwidth_m!r}")
    frame = points.to_crs(SURFACE_CRS)
    keep = np.isfinite(frame[z].to_numpy(dtype=float))
    centres = frame.geometry[keep].centroid
    xy = np.column_stack([centres.x, centres.y])
    if not len(xy):
        raise InvalidParameterError(f"no point has a finite {z!r}")
    pad = 3.0 * bandwidth_m
    box = bounds or (
        xy[:, 0].min() - pad,
        xy[:, 1].min() - pad,
        xy[:, 0].max() + pad,
        xy[:, 1].max() + pad,
    )
    transform, shape, snapped = grid_for(box, resolution_m)
    px = transform.c + transform.a * (np.arange(shape[1]) + 0.5)
    py = transform.f + transform.e * (np.arange(shape[0]) + 0.5)
    weights = frame[z].to_numpy(dtype=float)[keep]
    values = kde_values(xy, weights, px, py, bandwidth_m).astype(np.float32)
    tags = {"BANDWIDTH_M": f"{bandwidth_m:g}", "KERNEL": "gaussian", "UNITS": "z per km2"}
    write_cog(path, [values], transform, descriptions=("kde_z",), tags=tags)
    return Surface(Path(path), snapped, shape, float(resolution_m), {})
