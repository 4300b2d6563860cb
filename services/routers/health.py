"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from geo import __version__
from services.dependencies import StoreDep
from services.schemas import Health

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, summary="Service health")
def health(store: StoreDep) -> Health:
    """Answers 200 when the store can be read."""
    return Health(status="ok", version=__version__, datasets=len(store.dataset_ids()))
