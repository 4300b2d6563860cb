"""OGC API – Features: tiles (being built)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ogc", tags=["ogc"])
