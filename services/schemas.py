"""Response models of the JSON API."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from geo.analysis import AnalysisParams

PROBLEM = "application/problem+json"
PROBLEM_REASONS = {
    400: "Invalid parameter: the detail names the value and the allowed ones.",
    401: "No API key where one is needed, or a key that is unknown, revoked or expired.",
    403: "The account's role or NUTS scope does not allow this.",
    404: "No such resource.",
    409: "The analysis is not done yet.",
    413: "The input is over a configured limit.",
    422: "Invalid request, or (uploads) a table that was refused, with every problem.",
    429: "Too many requests; retry after the number of seconds in Retry-After.",
    503: "The database cannot be reached; retry after the seconds in Retry-After.",
}


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


class Problem(BaseModel):
    """An RFC 9457 problem: the body of every error answer."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable machine-readable code, the last part of ``type``.")
    instance: str | None = Field(default=None, description="The path that was asked for.")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="Invalid requests: location, reason, value; refused uploads: file, row, "
        "column, value, rule and reason of every problem.",
    )
    report: dict[str, Any] | None = Field(default=None, description="Refused uploads' report.")
    regions: list[str] | None = Field(default=None, description="Regions outside the scope.")


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of error answers (problem+json) with these statuses."""
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {s: {"description": PROBLEM_REASONS[s], "content": content} for s in statuses}
