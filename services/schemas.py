"""Response models of the JSON API."""

from __future__ import annotations

import dataclasses
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
    owner: str
    created_at: dt.datetime
    version: int = Field(description="The latest version (the one described here).")
    versions: int = Field(description="How many versions there are.")
    n_rows: int
    nuts_year: int = Field(description="NUTS version of the codes as stored.")
    updated_at: dt.datetime = Field(description="When the latest version was stored.")
    indicators: list[Indicator]
    links: dict[str, str]


class Version(BaseModel):
    dataset_id: str
    version: int
    content_hash: str = Field(description="SHA-256 of the observations, independent of order.")
    uploader: str
    created_at: dt.datetime
    n_rows: int
    nuts_year: int = Field(description="NUTS version of the codes as stored.")
    source_nuts_year: int | None = Field(description="NUTS version detected in the upload.")
    file_name: str
    format: str
    report: dict[str, Any] | None = Field(description="The validation report of the upload.")
    indicators: list[Indicator]
    links: dict[str, str]


class UploadAnswer(BaseModel):
    dataset: str | None = None
    version: int | None = None
    n_rows: int | None = None
    created: bool = Field(description="False when identical content was already stored.")
    ok: bool = Field(description="True when the report lists no problem.")
    report: dict[str, Any]


class Upload(BaseModel):
    id: str
    dataset_id: str
    status: str = Field(description="queued, running, done or failed.")
    progress: float = Field(description="Percent done.")
    file_name: str
    uploader: str
    created_at: dt.datetime
    updated_at: dt.datetime
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    links: dict[str, str]

    @classmethod
    def from_record(cls, record: Any, url: str) -> Upload:
        return cls(**dataclasses.asdict(record), links={"self": url})


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
