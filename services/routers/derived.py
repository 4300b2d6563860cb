"""Derived datasets: ratios and specialisation measures of stored datasets, stored as
datasets of their own with their lineage (:mod:`geo.derived`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from geo.derived import DerivedSpec, derive
from services.auth import Analyst
from services.dependencies import SettingsDep, StoreDep
from services.forms import dataset_slug
from services.routers.datasets import upload_answer
from services.schemas import UploadAnswer, problems

router = APIRouter(tags=["datasets"])


@router.post(
    "/datasets/derived",
    response_model=UploadAnswer,
    status_code=201,
    summary="Derive a dataset: a ratio, a location quotient, a specialisation index, ...",
    responses={200: {"model": UploadAnswer}, **problems(400, 403, 404, 422)},
)
async def post_derived(
    spec: DerivedSpec, settings: SettingsDep, store: StoreDep, who: Analyst
) -> Any:
    """Compute ``spec.kind`` from stored datasets and store it as the next version of the
    dataset ``spec.name``; the version's report carries the lineage (operation, parameters,
    each input's dataset, version and content hash). Identical content answers 200 with
    the existing version. Analysts and administrators only."""
    spec = spec.model_copy(update={"name": dataset_slug(spec.name)})
    outcome = await run_in_threadpool(derive, settings, store, spec, actor=who.name)
    return upload_answer(outcome)
