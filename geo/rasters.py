"""Rasters in: validation of uploaded GeoTIFFs and zonal statistics over NUTS regions.

:func:`validate_raster` checks a file before anything reads it (GeoTIFF, a CRS, size
limits, a readable last block) and describes it as a :class:`RasterInfo`.
:func:`zonal_stats` summarises one band per region. The raster is read as a dask-backed
:class:`xarray.DataArray` (:func:`open_raster`), one window per block, so memory stays
bounded by a few blocks whatever the raster's size; the regions are reprojected to the
raster's CRS (the pixels never are).

Two ways of counting a pixel against a region (``mode``):

``"fraction"`` (default, exact-extract style)
    Every pixel carries a weight ``c``, the fraction of its area covered by the region
    polygon (0 < c <= 1), computed exactly per block by the ``exactextract`` engine.
    Coverage-weighted are ``count`` (sum of c over valid pixels, in pixel units),
    ``sum`` (sum of c*x), ``mean`` (sum of c*x / sum of c), ``area_km2`` and the
    ``above_*``/``below_*`` shares; ``min`` and ``max`` are taken over the pixels with
    c > 0, unweighted.
``"centre"`` (``all_touched=False`` style, as ``rasterio.mask.mask`` or rasterstats)
    A pixel belongs to a region when its centre lies inside (c = 1, else 0).

Area weights: ``area_km2`` and the threshold shares weight each pixel by its ground
area ``a`` as well: ``above_T = sum(c*a*[x > T]) / sum(c*a)`` and
``below_T = sum(c*a*[x < T]) / sum(c*a)`` over valid (non-nodata) pixels, i.e. the share
of the region's *valid* area strictly above or below ``T``. In a geographic CRS ``a`` is
the geodesic area of the pixel row (WGS84 ellipsoid); in a projected CRS it is the planar
pixel area (for a non-equal-area projection such as Robinson, the projected area).
``mean`` and ``sum`` are *not* area-weighted (as exactextract's).

:func:`zonal_dataset_frame` turns a result into the tidy table (indicator, geo, time,
value), indicator labels and the lineage that :func:`geo.indicators.upload_frame` stores.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from geo.errors import IngestError, InvalidParameterError, TooLargeError

if TYPE_CHECKING:
    import geopandas as gpd
    import xarray as xr

    from geo.settings import Settings

Mode = Literal["fraction", "centre"]
STATS = ("count", "sum", "mean", "min", "max", "area", "above", "below")
DEFAULT_STATS = ("count", "mean", "min", "max")
MODES = ("fraction", "centre")
DEFAULT_CHUNK = 2048
# Columns of the per-block partial table: weights, weighted sum, min, max, weighted area.
_W, _WX, _MIN, _MAX, _WA = range(5)
_BASE = 5


@dataclass(frozen=True)
class RasterLimits:
    """Limits an input raster must respect (see :meth:`from_settings`)."""

    max_bytes: int = 1 << 30
    max_pixels: int = 1_000_000_000  # width x height x bands
    max_bands: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> RasterLimits:
        """The limits of ``settings``: ``max_upload_bytes`` and, when the settings define
        them, ``max_raster_pixels`` and ``max_raster_bands``."""
        return cls(
            max_bytes=int(settings.max_upload_bytes),
            max_pixels=int(getattr(settings, "max_raster_pixels", cls.max_pixels)),
            max_bands=int(getattr(settings, "max_raster_bands", cls.max_bands)),
        )


@dataclass(frozen=True)
class RasterInfo:
    """What :func:`validate_raster` found out about a raster file."""

    file: str  # the file's name (no directory)
    path: Path
    driver: str
    crs: str  # "EPSG:4326", "ESRI:54030", or WKT when there is no authority code
    crs_wkt: str
    width: int
    height: int
    count: int  # bands
    dtypes: tuple[str, ...]
    nodata: float | None  # the declared nodata value (NaN for a NaN nodata)
    nan_nodata: bool  # float bands: NaN is treated as nodata too
    resolution: tuple[float, float]
    bounds: tuple[float, float, float, float]
    tiled: bool
    block_shape: tuple[int, int]
    overviews: tuple[int, ...]
    is_cog: bool
    size_bytes: int

    @property
    def geographic(self) -> bool:
        import pyproj

        return bool(pyproj.CRS.from_wkt(self.crs_wkt).is_geographic)


def _problem(path: Path, reason: str, **extra: object) -> list[dict[str, object]]:
    return [{"file": path.name, "reason": reason, **extra}]


def _check_file(path: Path, limits: RasterLimits) -> int:
    if not path.is_file():
        raise IngestError(path.name, _problem(path, "no such file"))
    size = path.stat().st_size
    if size > limits.max_bytes:
        reason = f"the file has {size:,} bytes, more than the limit of {limits.max_bytes:,}"
        raise TooLargeError(path.name, _problem(path, reason, value=size))
    return size


def _open(path: Path) -> Any:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        reason = f"not a readable raster (truncated, corrupt or not a GeoTIFF): {exc}"
        raise IngestError(path.name, _problem(path, reason)) from exc


def _check_dataset(path: Path, ds: Any, limits: RasterLimits) -> None:
    if ds.driver != "GTiff":
        reason = f"the raster is {ds.driver}; accepted: GeoTIFF (GTiff, including COG)"
        raise IngestError(path.name, _problem(path, reason, value=ds.driver))
    if ds.crs is None:
        reason = "the raster has no coordinate reference system (CRS); write one, e.g. EPSG:3035"
        raise IngestError(path.name, _problem(path, reason))
    if ds.count > limits.max_bands:
        reason = f"the raster has {ds.count} bands, more than the limit of {limits.max_bands}"
        raise TooLargeError(path.name, _problem(path, reason, value=ds.count))
    pixels = ds.width * ds.height * ds.count
    if pixels > limits.max_pixels:
        reason = (
            f"the raster has {ds.width:,} x {ds.height:,} x {ds.count} = {pixels:,} pixels, "
            f"more than the limit of {limits.max_pixels:,}"
        )
        raise TooLargeError(path.name, _problem(path, reason, value=pixels))


def _check_readable(path: Path, ds: Any) -> None:
    """Read the first and the last block of every band: a truncated file fails here."""
    from rasterio.errors import RasterioIOError
    from rasterio.windows import Window

    bh, bw = ds.block_shapes[0]
    col, row = (ds.width - 1) // bw * bw, (ds.height - 1) // bh * bh
    last = Window(col, row, ds.width - col, ds.height - row)
    try:
        for band in range(1, ds.count + 1):
            ds.read(band, window=Window(0, 0, min(bw, ds.width), min(bh, ds.height)))
            ds.read(band, window=last)
    except RasterioIOError as exc:
        reason = f"the raster's pixels cannot be read (truncated or corrupt file): {exc}"
        raise IngestError(path.name, _problem(path, reason)) from exc


def _is_cog(path: Path) -> bool:
    from rio_cogeo.cogeo import cog_validate

    valid, errors, _warnings = cog_validate(str(path), quiet=True)
    return bool(valid and not errors)


def crs_name(crs: Any) -> str:
    """``AUTHORITY:CODE`` of a rasterio/pyproj CRS when it has one, else its WKT."""
    import pyproj

    pcrs = pyproj.CRS.from_user_input(crs)
    auth = pcrs.to_authority(min_confidence=70)
    return f"{auth[0]}:{auth[1]}" if auth else pcrs.to_wkt()


def validate_raster(path: str | Path, limits: RasterLimits | Settings | None = None) -> RasterInfo:
    """Check a raster file and describe it.

    Parameters
    ----------
    path
        A GeoTIFF (or Cloud-Optimized GeoTIFF) file.
    limits
        :class:`RasterLimits`, or settings to take them from
        (:meth:`RasterLimits.from_settings`); default :class:`RasterLimits()`.

    Returns
    -------
    RasterInfo

    Raises
    ------
    geo.errors.TooLargeError
        Over a byte, pixel or band limit (an :class:`~geo.errors.IngestError`).
    geo.errors.IngestError
        Missing, unreadable or truncated file, not a GeoTIFF, or no CRS. The error's
        ``file`` and its problems name the file and the reason.
    """
    path = Path(path)
    if limits is None:
        limits = RasterLimits()
    elif not isinstance(limits, RasterLimits):
        limits = RasterLimits.from_settings(limits)
    size = _check_file(path, limits)
    with _open(path) as ds:
        _check_dataset(path, ds, limits)
        _check_readable(path, ds)
        nodata = ds.nodata
        info = RasterInfo(
            file=path.name,
            path=path,
            driver=ds.driver,
            crs=crs_name(ds.crs),
            crs_wkt=ds.crs.to_wkt(),
            width=ds.width,
            height=ds.height,
            count=ds.count,
            dtypes=tuple(ds.dtypes),
            nodata=None if nodata is None else float(nodata),
            nan_nodata=any(np.issubdtype(np.dtype(d), np.floating) for d in ds.dtypes),
            resolution=(abs(ds.transform.a), abs(ds.transform.e)),
            bounds=tuple(ds.bounds),
            tiled=bool(ds.profile.get("tiled", False)),
            block_shape=tuple(ds.block_shapes[0]),
            overviews=tuple(ds.overviews(1)),
            is_cog=False,
            size_bytes=size,
        )
    return _with_cog(info)


def _with_cog(info: RasterInfo) -> RasterInfo:
    from dataclasses import replace

    return replace(info, is_cog=_is_cog(info.path)) if info.tiled else info


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB pieces."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


# --- reading -------------------------------------------------------------------------


def _read_window(path: str, band: int, row: int, col: int, h: int, w: int) -> np.ndarray:
    """One window as float64 with every nodata pixel (declared value or NaN) as NaN."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(path) as ds:
        data = ds.read(band, window=Window(col, row, w, h)).astype(np.float64)
        nodata = ds.nodatavals[band - 1]
    if nodata is not None and not math.isnan(nodata):
        data[data == nodata] = np.nan
    return data


def _starts(size: int, chunk: int) -> list[int]:
    return list(range(0, size, chunk))


def open_raster(path: str | Path, band: int = 1, chunk: int = DEFAULT_CHUNK) -> xr.DataArray:
    """One band as a lazy, dask-backed :class:`xarray.DataArray` of float64 (nodata as NaN).

    Each ``chunk`` x ``chunk`` block is a separate windowed read (its own rasterio
    handle, so the threaded scheduler may read blocks in parallel); nothing is read
    before ``.compute()``. Coordinates ``y`` and ``x`` are pixel centres; ``attrs`` holds
    ``transform`` (affine, 6 numbers), ``crs`` (WKT) and ``file``.
    """
    import dask
    import dask.array as da
    import rasterio
    import xarray as xr

    with rasterio.open(path) as ds:
        height, width, transform, crs = ds.height, ds.width, ds.transform, ds.crs
    read = dask.delayed(_read_window, pure=True)
    rows = []
    for r in _starts(height, chunk):
        h = min(chunk, height - r)
        row = [
            da.from_delayed(
                read(str(path), band, r, c, h, min(chunk, width - c)),
                (h, min(chunk, width - c)),
                np.float64,
            )
            for c in _starts(width, chunk)
        ]
        rows.append(row)
    data = da.block(rows)
    xs = transform.c + transform.a * (np.arange(width) + 0.5)
    ys = transform.f + transform.e * (np.arange(height) + 0.5)
    attrs = {"transform": tuple(transform)[:6], "crs": crs.to_wkt(), "file": Path(path).name}
    return xr.DataArray(data, dims=("y", "x"), coords={"y": ys, "x": xs}, attrs=attrs)


def pixel_areas_km2(transform: Any, crs_wkt: str, height: int) -> np.ndarray:
    """Ground area of one pixel of each row, km² (geodesic rows in a geographic CRS)."""
    import pyproj

    crs = pyproj.CRS.from_wkt(crs_wkt)
    if not crs.is_geographic:
        return np.full(height, abs(transform.a * transform.e) / 1e6)
    geod = crs.get_geod() or pyproj.Geod(ellps="WGS84")
    top = transform.f + transform.e * np.arange(height)
    bottom = top + transform.e
    lon0, lon1 = 0.0, abs(transform.a)
    areas = [
        abs(geod.polygon_area_perimeter([lon0, lon1, lon1, lon0], [t, t, b, b])[0])
        for t, b in zip(top, bottom, strict=True)
    ]
    return np.asarray(areas) / 1e6


# --- zonal statistics ----------------------------------------------------------------


@dataclass(frozen=True)
class _Grid:
    """What every block task needs: the raster grid and the regions in its CRS."""

    transform: Any
    crs_wkt: str
    row_area_km2: np.ndarray
    geoms: np.ndarray  # shapely geometries in the raster CRS, one per region
    tree: Any  # shapely.STRtree of geoms
    thresholds: tuple[float, ...]
    mode: Mode

    @property
    def width(self) -> int:
        return _BASE + 2 * len(self.thresholds)


def _empty_partial(n: int, width: int) -> np.ndarray:
    part = np.zeros((n, width))
    part[:, _MIN] = np.inf
    part[:, _MAX] = -np.inf
    return part


def _block_bounds(grid: _Grid, row: int, col: int, shape: tuple[int, int]) -> Any:
    import shapely

    t = grid.transform
    x0, y0 = t.c + t.a * col, t.f + t.e * row
    x1, y1 = x0 + t.a * shape[1], y0 + t.e * shape[0]
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _accumulate(
    part: np.ndarray, grid: _Grid, i: int, c: np.ndarray, x: np.ndarray, a: np.ndarray
) -> None:
    """Add the pixels of region ``i`` (coverage ``c``, values ``x``, areas ``a``)."""
    if not len(x):
        return
    ca = c * a
    part[i, _W] += c.sum()
    part[i, _WX] += (c * x).sum()
    part[i, _MIN] = min(part[i, _MIN], x.min())
    part[i, _MAX] = max(part[i, _MAX], x.max())
    part[i, _WA] += ca.sum()
    for k, t in enumerate(grid.thresholds):
        part[i, _BASE + 2 * k] += ca[x > t].sum()
        part[i, _BASE + 2 * k + 1] += ca[x < t].sum()


def _centre_block(
    part: np.ndarray, grid: _Grid, block: np.ndarray, row: int, col: int, hits: np.ndarray
) -> None:
    from affine import Affine
    from rasterio.features import rasterize

    t = grid.transform
    window_t = Affine(t.a, t.b, t.c + t.a * col, t.d, t.e, t.f + t.e * row)
    shapes = ((grid.geoms[i], k + 1) for k, i in enumerate(hits))
    labels = rasterize(shapes, out_shape=block.shape, transform=window_t, fill=0, dtype="int32")
    valid = np.isfinite(block) & (labels > 0)
    area = np.broadcast_to(grid.row_area_km2[row : row + block.shape[0], None], block.shape)
    lab, x, a = labels[valid], block[valid], area[valid]
    order = np.argsort(lab, kind="stable")
    lab, x, a = lab[order], x[order], a[order]
    cuts = np.searchsorted(lab, np.arange(1, len(hits) + 2))
    for k, i in enumerate(hits):
        lo, hi = cuts[k], cuts[k + 1]
        _accumulate(part, grid, int(i), np.ones(hi - lo), x[lo:hi], a[lo:hi])


def _fraction_block(
    part: np.ndarray, grid: _Grid, block: np.ndarray, row: int, col: int, hits: np.ndarray
) -> None:
    import geopandas as gpd
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    box = _block_bounds(grid, row, col, block.shape)
    xmin, ymin, xmax, ymax = box.bounds
    source = NumPyRasterSource(block, xmin, ymin, xmax, ymax, srs_wkt=grid.crs_wkt)
    frame = gpd.GeoDataFrame({"i": hits}, geometry=grid.geoms[hits], crs=grid.crs_wkt)
    out = exact_extract(
        source, frame, ["coverage", "values", "cell_id"], include_cols=["i"], output="pandas"
    )
    area = grid.row_area_km2[row : row + block.shape[0]]
    for i, c, x, cell in zip(out["i"], out["coverage"], out["values"], out["cell_id"], strict=True):
        keep = np.isfinite(x)
        a = area[np.asarray(cell, dtype=np.int64)[keep] // block.shape[1]]
        _accumulate(part, grid, int(i), np.asarray(c)[keep], np.asarray(x)[keep], a)


def _partial(block: np.ndarray, grid: _Grid, row: int, col: int) -> np.ndarray:
    """Partial sums of one block for every region (rows of regions it misses stay empty)."""
    part = _empty_partial(len(grid.geoms), grid.width)
    hits = np.sort(grid.tree.query(_block_bounds(grid, row, col, block.shape)))
    if len(hits) and np.isfinite(block).any():
        step = _centre_block if grid.mode == "centre" else _fraction_block
        step(part, grid, block, row, col, hits)
    return part


def _combine(parts: Sequence[np.ndarray]) -> np.ndarray:
    stack = np.stack(parts)
    total = stack.sum(axis=0)
    total[:, _MIN] = stack[:, :, _MIN].min(axis=0)
    total[:, _MAX] = stack[:, :, _MAX].max(axis=0)
    return total


def _label(t: float) -> str:
    return f"{t:g}".replace("-", "m").replace(".", "_").replace("+", "")


def _frame(total: np.ndarray, grid: _Grid, stats: Sequence[str], index: pd.Index) -> pd.DataFrame:
    w, wa = total[:, _W], total[:, _WA]
    some = w > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        columns: dict[str, np.ndarray] = {
            "count": w,
            "sum": np.where(some, total[:, _WX], np.nan),
            "mean": np.where(some, total[:, _WX] / w, np.nan),
            "min": np.where(some, total[:, _MIN], np.nan),
            "max": np.where(some, total[:, _MAX], np.nan),
            "area_km2": wa,
        }
        for k, t in enumerate(grid.thresholds):
            columns[f"above_{_label(t)}"] = np.where(some, total[:, _BASE + 2 * k] / wa, np.nan)
            columns[f"below_{_label(t)}"] = np.where(some, total[:, _BASE + 2 * k + 1] / wa, np.nan)
    wanted = [_column_of(s) for s in stats if s not in ("above", "below")]
    wanted += [c for c in columns if c.startswith(tuple(s + "_" for s in stats))]
    return pd.DataFrame({c: columns[c] for c in wanted}, index=index)


def _column_of(stat: str) -> str:
    return "area_km2" if stat == "area" else stat


def _check_options(stats: Sequence[str], thresholds: Sequence[float], mode: str) -> None:
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise InvalidParameterError(f"unknown statistic(s) {unknown}; choose from {list(STATS)}")
    if mode not in MODES:
        raise InvalidParameterError(f"mode must be one of {list(MODES)}, not {mode!r}")
    if {"above", "below"} & set(stats) and not thresholds:
        raise InvalidParameterError("the statistics 'above' and 'below' need thresholds=[...]")
    if not all(math.isfinite(t) for t in thresholds):
        raise InvalidParameterError(f"thresholds must be finite numbers, not {list(thresholds)}")


def _grid(
    arr: xr.DataArray, regions: gpd.GeoDataFrame, thresholds: Iterable[float], mode: Mode
) -> _Grid:
    import shapely
    from affine import Affine

    transform = Affine(*arr.attrs["transform"])
    crs_wkt = arr.attrs["crs"]
    geoms = np.asarray(regions.geometry.to_crs(crs_wkt).values, dtype=object)
    return _Grid(
        transform=transform,
        crs_wkt=crs_wkt,
        row_area_km2=pixel_areas_km2(transform, crs_wkt, arr.shape[0]),
        geoms=geoms,
        tree=shapely.STRtree(geoms),
        thresholds=tuple(float(t) for t in thresholds),
        mode=mode,
    )


def zonal_stats(
    raster: str | Path,
    regions: gpd.GeoDataFrame,
    stats: Sequence[str] = DEFAULT_STATS,
    thresholds: Sequence[float] = (),
    *,
    mode: Mode = "fraction",
    band: int = 1,
    chunk: int = DEFAULT_CHUNK,
    scheduler: Any = "threads",
) -> pd.DataFrame:
    """Statistics of one raster band per region.

    Parameters
    ----------
    raster
        A raster file (validate it first with :func:`validate_raster`).
    regions
        Polygons with a CRS, indexed by region id (e.g. ``NUTS_ID``); reprojected to the
        raster's CRS.
    stats
        Any of :data:`STATS`: ``count``, ``sum``, ``mean``, ``min``, ``max``, ``area``
        (``area_km2``: the valid area covered), ``above``/``below`` (one column
        ``above_T``/``below_T`` per threshold: shares of the valid area; ``1500.5``
        is labelled ``1500_5``, ``-3`` is ``m3``).
    thresholds
        Thresholds of the ``above``/``below`` shares, in the raster's units.
    mode
        ``"fraction"``: coverage-weighted (exact pixel coverage); ``"centre"``: a pixel
        counts fully when its centre is inside. See the module docstring for which
        statistic is weighted how.
    band
        1-based band number.
    chunk
        Block side in pixels; memory is a few blocks of ``chunk**2`` float64 per thread.
    scheduler
        A dask scheduler (``"threads"``, ``"sync"``, a ``distributed.Client``).

    Returns
    -------
    pandas.DataFrame
        One row per region (``regions.index``), one column per statistic; NaN (count 0)
        for a region with no valid pixel.
    """
    import dask

    _check_options(stats, thresholds, mode)
    if regions.crs is None:
        raise InvalidParameterError("the regions have no CRS; set one (e.g. EPSG:4326)")
    arr = open_raster(raster, band, chunk)
    grid = _grid(arr, regions, thresholds, mode)
    blocks = arr.data.to_delayed()
    task = dask.delayed(_partial, pure=True)
    parts = [
        task(blocks[i, j], grid, i * chunk, j * chunk)
        for i in range(blocks.shape[0])
        for j in range(blocks.shape[1])
    ]
    total = dask.delayed(_combine)(parts).compute(scheduler=scheduler)
    return _frame(total, grid, stats, regions.index)


# --- storing results as an indicator dataset -----------------------------------------


@dataclass(frozen=True)
class ZonalDataset:
    """A zonal result as the upload pipeline takes it."""

    frame: pd.DataFrame  # indicator, geo, time, value
    labels: dict[str, tuple[str, str]]  # indicator -> (label, unit)
    lineage: dict[str, Any]


def zonal_dataset_frame(
    raster: str | Path,
    zonal: pd.DataFrame,
    *,
    year: int,
    prefix: str,
    unit: str = "",
    mode: Mode = "fraction",
    thresholds: Sequence[float] = (),
    band: int = 1,
) -> ZonalDataset:
    """The tidy table, labels and lineage of a :func:`zonal_stats` result.

    Each column of ``zonal`` becomes an indicator ``PREFIX_COLUMN`` (upper case, e.g.
    ``ELEV_MEAN``, ``ELEV_ABOVE_1500``). Store it with
    ``geo.indicators.upload_frame(settings, store, ds.frame,
    UploadRequest(dataset_id=..., labels=ds.labels, lineage=ds.lineage, ...))``.

    Returns
    -------
    ZonalDataset
        ``lineage`` holds ``operation`` (``"zonal_stats"``), the raster's file name,
        ``sha256``, ``crs``, ``resolution``, ``band``, ``mode``, ``stats`` and
        ``thresholds``.
    """
    path = Path(raster)
    info = validate_raster(path, RasterLimits(max_bytes=1 << 62, max_pixels=1 << 62))
    codes = {col: f"{prefix}_{col}".upper() for col in zonal.columns}
    long = zonal.rename(columns=codes).rename_axis("geo").reset_index()
    frame = long.melt(id_vars="geo", var_name="indicator", value_name="value")
    frame = frame.assign(time=int(year))[["indicator", "geo", "time", "value"]]
    labels = {
        code: (_describe_column(col, mode), _unit_of(col, unit)) for col, code in codes.items()
    }
    lineage = {
        "operation": "zonal_stats",
        "raster": info.file,
        "sha256": file_sha256(path),
        "crs": info.crs,
        "resolution": list(info.resolution),
        "band": band,
        "mode": mode,
        "stats": list(zonal.columns),
        "thresholds": [float(t) for t in thresholds],
    }
    return ZonalDataset(frame.reset_index(drop=True), labels, lineage)


def _describe_column(column: str, mode: str) -> str:
    how = "coverage-weighted" if mode == "fraction" else "pixel centres"
    if column.startswith(("above_", "below_")):
        side, t = column.split("_", 1)
        return f"share of the area {side} {t.replace('_', '.').replace('m', '-')} ({how})"
    return f"{column} over the region ({how})"


def _unit_of(column: str, unit: str) -> str:
    if column.startswith(("above_", "below_")):
        return "share"
    return {"count": "pixels", "area_km2": "km2"}.get(column, unit)
