"""Response models of the JSON API."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from geo.analysis import AnalysisParams


class Health(BaseModel):
    status: str
    version: str
    datasets: int


class Indicator(BaseModel):
    code: str
    label: str
    unit: str
    years: list[int]
    n_regions: int = Field(description="Most regions with a value in any one year.")


class Dataset(BaseModel):
    id: str
    title: str
    description: str
    source: str
    licence: str
    nuts_year: int
    n_rows: int
    created_at: dt.datetime
    indicators: list[Indicator]
    links: dict[str, str]


class Analysis(BaseModel):
    id: str
    status: str = Field(description="queued, running, done or failed.")
    progress: float = Field(description="Percent of the computation done.")
    params: AnalysisParams
    created_at: dt.datetime
    duration_s: float | None
    error: str | None = None
    n_regions: int | None = None
    series: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Per indicator and year: global Moran's I, counts per class, missing "
        "regions, isolates and the catchments summary.",
    )
    links: dict[str, str]


class AnalysisList(BaseModel):
    analyses: list[Analysis]
