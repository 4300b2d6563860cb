"""Background uploads: their state and outcome."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.dependencies import StoreDep
from services.schemas import Upload, problems

router = APIRouter(tags=["datasets"])


@router.get(
    "/uploads/{upload_id}",
    response_model=Upload,
    summary="A background upload",
    responses=problems(404),
)
def get_upload(upload_id: str, store: StoreDep, request: Request) -> Upload:
    """``queued``, ``running`` with percent done, ``done`` with the stored version and the
    report, or ``failed`` with the problems."""
    record = store.upload(upload_id)
    return Upload.from_record(record, str(request.url))
