"""What the store hands out: datasets, their versions, analyses and uploads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

# Analysis and upload states: queued -> running (with progress) -> done | failed.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class IndicatorInfo:
    code: str
    label: str
    unit: str
    years: list[int]
    n_regions: int  # the most regions with a value in any one year


@dataclass(frozen=True)
class VersionInfo:
    """One immutable version of a dataset and its provenance."""

    dataset_id: str
    version: int
    content_hash: str
    uploader: str
    created_at: dt.datetime
    n_rows: int
    nuts_year: int
    source_nuts_year: int | None
    file_name: str
    format: str
    report: dict[str, Any] | None
    indicators: list[IndicatorInfo]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset as of one version (by default its latest)."""

    id: str
    title: str
    description: str
    source: str
    licence: str
    owner: str
    created_at: dt.datetime
    version: int
    versions: int
    content_hash: str
    n_rows: int
    nuts_year: int
    updated_at: dt.datetime
    indicators: list[IndicatorInfo]


@dataclass(frozen=True)
class AnalysisRecord:
    id: str
    dataset_id: str
    params: dict[str, Any]
    status: str
    error: str | None
    summary: dict[str, Any] | None
    duration_s: float | None
    created_at: dt.datetime
    regions: pd.DataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    progress: float = 0.0
    dataset_version: int | None = None


@dataclass(frozen=True)
class UploadRecord:
    """A background upload: its state, and the stored version or the refusal."""

    id: str
    dataset_id: str
    status: str
    progress: float
    file_name: str
    uploader: str
    created_at: dt.datetime
    updated_at: dt.datetime
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = field(default=None)
