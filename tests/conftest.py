"""Shared fixtures: settings on the local data mirror, a store with the demo data, the app.

The mirror is found through the project's own mechanism (``ALPCLUSTERS_DATA_MIRROR``,
which the Makefile sets to ../shared/data); tests never read the mirror by any other path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geo.settings import REPO_ROOT, Settings
from geo.store import Store

DEFAULT_MIRROR = REPO_ROOT.parent / "shared" / "data"


def mirror_dir() -> Path:
    mirror = Path(os.environ.get("ALPCLUSTERS_DATA_MIRROR") or DEFAULT_MIRROR)
    if not (mirror / "PROVENANCE.md").is_file():
        pytest.exit(f"the data mirror {mirror} is missing; set ALPCLUSTERS_DATA_MIRROR", 3)
    return mirror


@pytest.fixture(scope="session")
def mirror() -> Path:
    return mirror_dir()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, mirror: Path) -> Settings:
    """Settings on the mirror with downloads off and a throwaway SQLite store.

    The boundary cache stays in data/nuts/cache (shared by runs, like a developer's).
    """
    db = tmp_path_factory.mktemp("store") / "alpclusters.db"
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=mirror,
        allow_download=False,
        database_url=f"sqlite:///{db}",
    )


@pytest.fixture(scope="session")
def demo_store(settings: Settings) -> Store:
    """A store holding the demo datasets (GDP per head, population, density)."""
    from geo.indicators import load_demo

    store = Store(settings.database_url)
    load_demo(settings, store)
    return store


@pytest.fixture(scope="session")
def client(settings: Settings, demo_store: Store) -> Iterator[TestClient]:
    """The service on the demo store, lifespan included."""
    from services.app import create_app

    with TestClient(create_app(settings)) as c:
        yield c
