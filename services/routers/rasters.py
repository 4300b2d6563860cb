"""Rasters in and out: GeoTIFF uploads, zonal statistics stored as datasets, and analyses as
Cloud-Optimized GeoTIFFs (:mod:`geo.raster_store`, :mod:`geo.rasters`, :mod:`geo.surfaces`)."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from geo.errors import InvalidParameterError
from geo.raster_store import (
    ZonalSpec,
    dataset_from_raster,
    raster_record,
    store_raster,
)
from geo.uploads import UploadRequest
from services.auth import Uploader
from services.dependencies import SeriesDep, SettingsDep, StoreDep
from services.forms import SpoolDep, dataset_slug
from services.routers.datasets import on_behalf_of, upload_answer
from services.schemas import UploadAnswer, problems

router = APIRouter(tags=["rasters"])
COG = "image/tiff; application=geotiff; profile=cloud-optimized"
MAX_SURFACE_PIXELS = 50_000_000


class Raster(BaseModel):
    id: str
    file_name: str
    sha256: str
    uploader: str
    created_at: str
    info: dict[str, Any]


@router.post(
    "/rasters",
    response_model=Raster,
    status_code=201,
    summary="Upload a GeoTIFF (or COG)",
    responses=problems(403, 413, 422),
)
async def post_raster(
    path: SpoolDep,
    settings: SettingsDep,
    who: Uploader,
    file: Annotated[UploadFile, File(description="A GeoTIFF with a CRS.")],
) -> Raster:
    """Validate and keep a raster: a GeoTIFF with a CRS, within the size limits; its nodata
    value, bands, resolution and whether it is Cloud-Optimized are reported."""
    try:
        record = await run_in_threadpool(
            store_raster, settings, path, file.filename or "raster.tif", who.name
        )
    finally:
        path.unlink(missing_ok=True)
    return Raster(**dataclasses.asdict(record))


@router.get(
    "/rasters/{raster_id}",
    response_model=Raster,
    summary="One uploaded raster",
    responses=problems(404),
)
def get_raster(raster_id: str, settings: SettingsDep) -> Raster:
    return Raster(**dataclasses.asdict(raster_record(settings, raster_id)))


@router.post(
    "/datasets/from-raster",
    response_model=UploadAnswer,
    status_code=201,
    summary="Zonal statistics of a raster, stored as a dataset",
    responses={200: {"model": UploadAnswer}, **problems(400, 403, 404, 413, 422)},
)
async def post_dataset_from_raster(
    spec: ZonalSpec, settings: SettingsDep, store: StoreDep, who: Uploader
) -> Any:
    """Mean, sum, min, max, count of valid pixels, the share of the area above or below
    thresholds, per NUTS region of an area; pixels crossing a border count by the share of
    their area inside (``mode=fraction``) or by their centre (``mode=centre``). The regions
    are reprojected to the raster's CRS, never the pixels. Stored as the next version of the
    dataset ``name``, with the raster's name, hash, CRS and the statistics as its lineage."""
    request = on_behalf_of(UploadRequest(dataset_id=dataset_slug(spec.name)), who)
    outcome = await run_in_threadpool(dataset_from_raster, settings, store, spec, request)
    return upload_answer(outcome)


@router.get(
    "/analyses/{analysis_id}/surface.tif",
    response_class=FileResponse,
    summary="An analysis as a Cloud-Optimized GeoTIFF",
    responses={200: {"content": {COG: {}}}, **problems(400, 404, 409)},
)
def analysis_surface_file(
    series: SeriesDep,
    kind: Annotated[
        Literal["classes", "kde"],
        Query(description="classes: bands Gi* z, class, catchment; kde: smoothed intensity."),
    ] = "classes",
    resolution_m: Annotated[
        float, Query(ge=100, le=50_000, description="Pixel size in metres (EPSG:3035).")
    ] = 1000.0,
    bandwidth_m: Annotated[
        float, Query(ge=1000, le=500_000, description="kde: the kernel's standard deviation.")
    ] = 25_000.0,
) -> FileResponse:
    """The series' regions rasterised in EPSG:3035 as a COG (internal tiles, overviews):
    ``classes`` gives the z-score, the class (Gi* bin or LISA cluster) and the catchment
    number (its name in the band's tags); ``kde`` a Gaussian kernel density of the z-scores
    at the regions' centroids."""
    from geo.surfaces import analysis_surface, kde_surface

    regions = series.regions
    _check_size(regions, resolution_m)
    folder = Path(tempfile.mkdtemp(prefix="alpclusters-cog-"))
    name = f"{series.record.id}-{series.indicator}-{series.year}-{kind}.tif"
    path = folder / name
    try:
        if kind == "kde":
            kde_surface(regions, path, bandwidth_m=bandwidth_m, resolution_m=resolution_m)
        else:
            klass = "bin" if "bin" in regions.columns else "cluster"
            analysis_surface(regions, path, resolution_m=resolution_m, klass=klass)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        path,
        media_type=COG,
        filename=name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


def _check_size(regions: Any, resolution_m: float) -> None:
    xmin, ymin, xmax, ymax = regions.to_crs(3035).total_bounds
    pixels = (xmax - xmin) / resolution_m * (ymax - ymin) / resolution_m
    if pixels > MAX_SURFACE_PIXELS:
        raise InvalidParameterError(
            f"{pixels:,.0f} pixels at {resolution_m:g} m; at most {MAX_SURFACE_PIXELS:,}: "
            "choose a coarser resolution"
        )
