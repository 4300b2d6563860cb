"""Indicator datasets."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request

from geo.store import DatasetInfo
from services.dependencies import StoreDep
from services.schemas import Dataset

router = APIRouter(tags=["datasets"])


def dataset_out(info: DatasetInfo, request: Request) -> Dataset:
    fields = dataclasses.asdict(info)
    fields.pop("content_hash")
    return Dataset(
        **fields,
        links={
            "self": str(request.url_for("get_dataset", dataset_id=info.id)),
        },
    )


@router.get("/datasets", response_model=list[Dataset], summary="List datasets")
def list_datasets(store: StoreDep, request: Request) -> list[Dataset]:
    """Every dataset with its indicators, years and units."""
    return [dataset_out(d, request) for d in store.datasets()]


@router.get("/datasets/{dataset_id}", response_model=Dataset, summary="One dataset")
def get_dataset(dataset_id: str, store: StoreDep, request: Request) -> Dataset:
    """A dataset's indicators, years, units, source and licence."""
    return dataset_out(store.dataset(dataset_id), request)
