"""Uploaded rasters, zonal statistics stored as indicator datasets, and analyses exported as
Cloud-Optimized GeoTIFFs.

A raster upload is validated (:func:`geo.rasters.validate_raster`) and kept under
``settings.raster_dir`` as ``{id}.tif`` with a JSON record beside it (file name as uploaded,
SHA-256, uploader, what validation found). Ids are random hex: no user input reaches a path.
:func:`dataset_from_raster` computes zonal statistics of a stored raster over the NUTS
regions of an area and stores them through the upload pipeline with their lineage.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import shutil
import uuid
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geo.areas import resolve
from geo.boundaries import load_boundaries, regions
from geo.errors import IngestError, InvalidParameterError, NotFoundError
from geo.rasters import (
    DEFAULT_STATS,
    STATS,
    RasterInfo,
    file_sha256,
    validate_raster,
    zonal_dataset_frame,
    zonal_stats,
)
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadOutcome, UploadRequest

_ID = re.compile(r"^[0-9a-f]{32}$")


class UnknownRasterError(NotFoundError):
    code = "unknown-raster"


@dataclasses.dataclass(frozen=True)
class RasterRecord:
    """A stored raster: its id, the name it was uploaded under and what validation found."""

    id: str
    file_name: str
    sha256: str
    uploader: str
    created_at: str
    info: dict[str, Any]


def store_raster(settings: Settings, path: Path, file_name: str, uploader: str) -> RasterRecord:
    """Validate the file at ``path`` and keep it (moved) as a new stored raster."""
    shown = Path(file_name).name or "raster.tif"
    try:
        info = validate_raster(path, settings)
    except IngestError as exc:  # name the file as uploaded, never where it waits
        raise exc.renamed(str(path), shown) from None
    raster_id = uuid.uuid4().hex
    folder = settings.raster_dir
    folder.mkdir(parents=True, exist_ok=True)
    record = RasterRecord(
        id=raster_id,
        file_name=shown,
        sha256=file_sha256(path),
        uploader=uploader,
        created_at=dt.datetime.now(dt.UTC).isoformat(),
        info=_info_json(info),
    )
    partial = folder / f".{raster_id}.tif.part"  # renamed once complete: never half a file
    shutil.move(str(path), partial)
    partial.rename(folder / f"{raster_id}.tif")
    (folder / f"{raster_id}.json").write_text(json.dumps(dataclasses.asdict(record)))
    return record


def _info_json(info: RasterInfo) -> dict[str, Any]:
    out = dataclasses.asdict(info)
    out.pop("path")
    out.pop("file")
    out["nodata"] = None if info.nodata is None or info.nodata != info.nodata else info.nodata
    return out


def raster_record(settings: Settings, raster_id: str) -> RasterRecord:
    """A stored raster's record; :class:`UnknownRasterError` for an unknown id."""
    path = settings.raster_dir / f"{raster_id}.json"
    if not _ID.match(raster_id) or not path.is_file():
        raise UnknownRasterError(f"no raster {raster_id!r}")
    return RasterRecord(**json.loads(path.read_text()))


def raster_path(settings: Settings, raster_id: str) -> Path:
    raster_record(settings, raster_id)
    return settings.raster_dir / f"{raster_id}.tif"


class ZonalSpec(BaseModel):
    """Zonal statistics of a stored raster over the NUTS regions of an area."""

    model_config = ConfigDict(extra="forbid")

    raster: str = Field(description="The id answered by POST /rasters.")
    name: str = Field(min_length=1, max_length=128, description="The new dataset's id.")
    title: str = Field(default="", max_length=500)
    area: str = Field(default="alpine-space", max_length=2000)
    level: int = Field(default=3, ge=0, le=3)
    stats: list[str] = Field(default=list(DEFAULT_STATS), min_length=1, max_length=20)
    thresholds: list[float] = Field(default_factory=list, max_length=20)
    mode: Literal["fraction", "centre"] = Field(
        default="fraction",
        description="fraction: pixels weighted by the share of their area in the region "
        "(exact coverage); centre: a pixel counts when its centre lies in the region.",
    )
    band: int = Field(default=1, ge=1, le=64)
    year: int = Field(default=2020, ge=1900, le=2100, description="The time of the values.")
    prefix: str = Field(default="RASTER", pattern=r"^[A-Z][A-Z0-9_]{0,30}$")
    unit: str = Field(default="", max_length=64)


def dataset_from_raster(
    settings: Settings, store: Store, spec: ZonalSpec, request: UploadRequest
) -> UploadOutcome:
    """Zonal statistics of ``spec.raster`` stored as the dataset ``request.dataset_id``."""
    from geo.indicators import upload_frame

    unknown = sorted(set(spec.stats) - set(STATS))
    if unknown:
        raise InvalidParameterError(f"unknown statistics {unknown}; use any of {list(STATS)}")
    record = raster_record(settings, spec.raster)
    path = raster_path(settings, spec.raster)
    if spec.band > int(record.info["count"]):
        raise InvalidParameterError(f"the raster has {record.info['count']} band(s)")
    codes = resolve(settings, load_boundaries(settings), spec.area, spec.level)
    layer = regions(settings, spec.level, codes)
    zonal = zonal_stats(path, layer, spec.stats, spec.thresholds, mode=spec.mode, band=spec.band)
    data = zonal_dataset_frame(
        path,
        zonal,
        year=spec.year,
        prefix=spec.prefix,
        unit=spec.unit,
        mode=spec.mode,
        thresholds=spec.thresholds,
        band=spec.band,
    )
    lineage = {**data.lineage, "raster": record.file_name, "raster_id": record.id}
    lineage |= {"area": spec.area, "level": spec.level}
    frame = data.frame.dropna(subset=["value"])
    if frame.empty:
        raise InvalidParameterError(f"the raster covers no region of {spec.area!r}")
    stored = dataclasses.replace(
        request,
        title=request.title or spec.title or f"Zonal statistics of {record.file_name}",
        description=request.description
        or f"{', '.join(spec.stats)} of {record.file_name} (band {spec.band}, {spec.mode} "
        f"mode) per NUTS {spec.level} region of {spec.area}",
        source=request.source or f"AlpClusters, zonal statistics of {record.file_name}",
        labels=data.labels,
        lineage=lineage,
        levels=(spec.level,),
    )
    return upload_frame(settings, store, frame, stored)
