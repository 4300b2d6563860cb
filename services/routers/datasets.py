"""Indicator datasets: listing, uploads (new versions), dry-run validation, versions and
downloads."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from geo.accounts import Account
from geo.records import DatasetInfo, VersionInfo
from geo.upload_jobs import outcome_json
from geo.uploads import UploadOutcome, UploadRequest, upload
from services.auth import Uploader
from services.dependencies import SettingsDep, StoreDep, UploadRunnerDep
from services.downloads import version_csv, version_parquet
from services.forms import RequestDep, SpoolDep, dataset_slug
from services.schemas import Dataset, Upload, UploadAnswer, Version, problems

router = APIRouter(tags=["datasets"])


def on_behalf_of(form: UploadRequest, who: Account) -> UploadRequest:
    """The upload as the account may make it: within its NUTS scope, recorded under its name
    in the audit log (and as uploader, unless the form names one)."""
    scope = None if who.role == "admin" else who.scope
    return dataclasses.replace(
        form, uploader=form.uploader or who.name, actor=who.name, scope=scope
    )


def upload_answer(outcome: UploadOutcome) -> JSONResponse:
    """A stored version: 201 when new, 200 when identical content was stored already."""
    return JSONResponse(outcome_json(outcome), status_code=201 if outcome.created else 200)


def dataset_out(info: DatasetInfo, request: Request) -> Dataset:
    fields = dataclasses.asdict(info)
    fields.pop("content_hash")
    return Dataset(
        **fields,
        links={
            "self": str(request.url_for("get_dataset", dataset_id=info.id)),
            "versions": str(request.url_for("list_versions", dataset_id=info.id)),
        },
    )


def version_out(info: VersionInfo, request: Request) -> Version:
    link = request.url_for("download_version", dataset_id=info.dataset_id, version=info.version)
    return Version(**dataclasses.asdict(info), links={"download": str(link)})


@router.get("/datasets", response_model=list[Dataset], summary="List datasets")
def list_datasets(store: StoreDep, request: Request) -> list[Dataset]:
    """Every dataset at its latest version, with its indicators, years and units."""
    return [dataset_out(d, request) for d in store.datasets()]


@router.get(
    "/datasets/{dataset_id}",
    response_model=Dataset,
    summary="One dataset",
    responses=problems(404),
)
def get_dataset(dataset_id: str, store: StoreDep, request: Request) -> Dataset:
    """A dataset's latest version: indicators, years, units, source and licence."""
    return dataset_out(store.dataset(dataset_id), request)


@router.post(
    "/datasets",
    response_model=UploadAnswer,
    status_code=201,
    summary="Upload a table: a new dataset, or a new version of one",
    responses={
        202: {"model": Upload, "description": "Accepted: checked in the background."},
        **problems(400, 403, 413),
        422: {"description": "The table was refused: every problem, and the report."},
    },
)
async def post_dataset(
    form: RequestDep,
    path: SpoolDep,
    settings: SettingsDep,
    store: StoreDep,
    uploads: UploadRunnerDep,
    request: Request,
    who: Uploader,
) -> Any:
    """Check the file and store it as the next version of the dataset ``name``.

    Files larger than the background limit answer 202 with a status URL (``GET
    /uploads/{id}``); an identical re-upload answers 200 with the existing version."""
    form = on_behalf_of(form, who)
    if path.stat().st_size > settings.upload_background_bytes:
        record = uploads.submit(path, form)
        location = str(request.url_for("get_upload", upload_id=record.id))
        body = Upload.from_record(record, location).model_dump(mode="json")
        return JSONResponse(body, status_code=202, headers={"Location": location})
    try:
        outcome = await run_in_threadpool(upload, settings, store, path, form)
    finally:
        path.unlink(missing_ok=True)
    return upload_answer(outcome)


@router.post(
    "/datasets/{dataset_id}/validate",
    response_model=UploadAnswer,
    summary="Check a table without storing it",
    responses=problems(400, 403, 413, 422),
)
async def validate_dataset(
    dataset_id: str,
    form: RequestDep,
    path: SpoolDep,
    settings: SettingsDep,
    store: StoreDep,
    who: Uploader,
) -> Any:
    """A dry run of ``POST /datasets``: the validation report, nothing stored."""
    request = dataclasses.replace(on_behalf_of(form, who), dataset_id=dataset_slug(dataset_id))
    try:
        outcome = await run_in_threadpool(upload, settings, store, path, request, dry_run=True)
    finally:
        path.unlink(missing_ok=True)
    return outcome_json(outcome)


@router.get(
    "/datasets/{dataset_id}/versions",
    response_model=list[Version],
    summary="Versions",
    responses=problems(404),
)
def list_versions(dataset_id: str, store: StoreDep, request: Request) -> list[Version]:
    """Every version with its provenance: hash, uploader, time, rows, NUTS version,
    indicators, years, units and the validation report."""
    return [version_out(v, request) for v in store.versions(dataset_id)]


@router.get(
    "/datasets/{dataset_id}/versions/{version}/download",
    summary="Download a version as stored",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}, "application/vnd.apache.parquet": {}}},
        **problems(404),
    },
)
def download_version(
    dataset_id: str,
    version: int,
    store: StoreDep,
    f: Annotated[Literal["csv", "parquet"], Query(description="csv or parquet.")] = "csv",
) -> Response:
    """The observations of one version: ``indicator, geo, time, value, flag, unit``."""
    info = store.version(dataset_id, version)
    name = f"{dataset_id}-v{version}"
    if f == "parquet":
        return Response(
            version_parquet(store, info),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": f'attachment; filename="{name}.parquet"'},
        )
    return StreamingResponse(
        version_csv(store, info),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
