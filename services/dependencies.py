"""Small typed dependencies shared by the routers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import geopandas as gpd
from fastapi import Depends, Query, Request

from geo.analysis import pick_series, series_layers
from geo.jobs import AnalysisRunner
from geo.settings import Settings
from geo.store import AnalysisRecord, Store
from geo.upload_jobs import UploadRunner


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def get_upload_runner(request: Request) -> UploadRunner:
    runner: UploadRunner = request.app.state.uploads
    return runner


def get_runner(request: Request) -> AnalysisRunner:
    runner: AnalysisRunner = request.app.state.runner
    return runner


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RunnerDep = Annotated[AnalysisRunner, Depends(get_runner)]
UploadRunnerDep = Annotated[UploadRunner, Depends(get_upload_runner)]

LevelQuery = Annotated[int, Query(ge=0, le=3, description="NUTS level, 0 (countries) to 3.")]
AreaQuery = Annotated[
    str,
    Query(
        description="Named area (alpine-space, austria, switzerland, germany, france, "
        "italy, liechtenstein, slovenia) or comma-separated NUTS codes.",
        min_length=1,
        max_length=2000,
    ),
]
IndicatorQuery = Annotated[
    str | None, Query(description="Indicator code; default: the analysis's first.")
]
YearQuery = Annotated[
    int | None, Query(ge=1900, le=2100, description="Year; default: the analysis's first.")
]


@dataclass(frozen=True)
class Series:
    """One (indicator, year) series of a stored analysis, with its layers."""

    record: AnalysisRecord
    indicator: str
    year: int
    regions: gpd.GeoDataFrame
    catchments: gpd.GeoDataFrame
    summary: dict[str, Any]


def get_series(
    analysis_id: str,
    settings: SettingsDep,
    store: StoreDep,
    indicator: IndicatorQuery = None,
    year: YearQuery = None,
) -> Series:
    """The series named by the query (the analysis's first by default)."""
    record = store.analysis(analysis_id)
    ind, yr = pick_series(record, indicator, year)
    regions, catchments, summary = series_layers(settings, record, ind, yr)
    return Series(record, ind, yr, regions, catchments, summary)


SeriesDep = Annotated[Series, Depends(get_series)]
