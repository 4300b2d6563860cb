"""Shared fixtures: settings on the local data mirror, a store with the demo data, the app.

The mirror is found through the project's own mechanism (``ALPCLUSTERS_DATA_MIRROR``,
which the Makefile sets to ../shared/data); tests never read the mirror by any other path.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from geo.settings import REPO_ROOT, Settings
from geo.store import Store
from tests.pgserver import Server, throwaway_postgres

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
def admin_key() -> str:
    """This run's bootstrap admin key (ALPCLUSTERS_ADMIN_KEY of the test settings)."""
    from geo.accounts import new_key

    return new_key()[0]


@pytest.fixture(scope="session")
def admin_headers(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory, mirror: Path, admin_key: str) -> Settings:
    """Settings on the mirror with downloads off, a throwaway SQLite store and a bootstrap
    admin key.

    The boundary cache stays in data/nuts/cache (shared by runs, like a developer's).
    """
    db = tmp_path_factory.mktemp("store") / "alpclusters.db"
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_mirror=mirror,
        allow_download=False,
        database_url=f"sqlite:///{db}",
        admin_key=admin_key,
        rate_limit_per_minute=0,  # the suite is one client; tests/test_guards.py sets its own
    )


@pytest.fixture(scope="session")
def demo_store(settings: Settings) -> Store:
    """A store holding the demo datasets (GDP per head, population, density)."""
    from geo.indicators import load_demo

    store = Store(settings.database_url)
    load_demo(settings, store)
    return store


@pytest.fixture(scope="session")
def client(
    settings: Settings, demo_store: Store, admin_headers: dict[str, str]
) -> Iterator[TestClient]:
    """The service on the demo store, lifespan included, sending the admin key."""
    from services.app import create_app

    with TestClient(create_app(settings), headers=admin_headers) as c:
        yield c


@pytest.fixture(scope="session")
def postgres() -> Iterator[Server]:
    """This run's own PostgreSQL 15 + PostGIS (tests/pgserver.py), started on first request."""
    with throwaway_postgres() as server:
        yield server


def fresh_postgres_database(server: Server) -> Iterator[str]:
    """A new database from the PostGIS template; dropped afterwards, open connections too."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def postgres_url(postgres: Server) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL/PostGIS database (for PostgreSQL-only tests)."""
    yield from fresh_postgres_database(postgres)


@pytest.fixture(params=["sqlite", "postgresql"], ids=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty store database: a SQLite file, then a PostgreSQL/PostGIS one.

    The server starts only when a ``postgresql`` case runs (``-k sqlite`` needs none).
    """
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alpclusters.db'}"
    else:
        yield from fresh_postgres_database(request.getfixturevalue("postgres"))
