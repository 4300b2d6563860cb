"""The throwaway PostgreSQL/PostGIS harness (tests/pgserver.py and the conftest fixtures).

The server must be this run's own (not one already running on the machine), PostGIS must
compute what GEOS and pyproj compute, per-test databases must be dropped, and servers must
disappear with their context manager, or with the next run when their owner was killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
import sqlalchemy as sa

from geo.boundaries import regions
from geo.settings import REPO_ROOT, Settings
from tests.pgserver import (
    PREFIX,
    Binaries,
    PostgresUnavailableError,
    Server,
    cleanup_stale,
    find_binaries,
    throwaway_postgres,
)

# Alpine NUTS-2 regions of all seven countries, Polygons and MultiPolygons.
CODES = ["AT33", "CH05", "DE21", "FRK2", "ITC4", "LI00", "SI04"]


@contextmanager
def engine(url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(url)
    try:
        yield eng
    finally:
        eng.dispose()


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, …); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] == "Z" else fields


def answers(server: Server) -> bool:
    try:
        with server.connect() as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


def test_server_is_this_runs_own(postgres: Server) -> None:
    root = postgres.datadir.parent
    assert root.parent == Path(tempfile.gettempdir()) and root.name.startswith(PREFIX)
    with postgres.connect() as conn:
        row = conn.execute("SELECT current_setting('data_directory'), inet_server_port()")
        datadir, port = row.fetchone() or ("", None)
    assert Path(datadir) == postgres.datadir
    assert port == postgres.port != 5432
    # The postmaster recorded in the data directory is a child of this very process.
    assert int((postgres.datadir / "postmaster.pid").read_text().split()[0]) == postgres.pid
    stat = proc_stat(postgres.pid)
    assert stat is not None and int(stat[1]) == os.getpid()
    assert Path(f"/proc/{postgres.pid}/cwd").resolve() == postgres.datadir.resolve()


def test_postgis_works(postgres_url: str) -> None:
    with engine(postgres_url) as eng, eng.connect() as conn:
        full = conn.execute(sa.text("SELECT postgis_full_version()")).scalar_one()
        point = conn.execute(sa.text("SELECT ST_AsText(ST_Point(11.4, 47.27, 4326))")).scalar()
    assert full.startswith('POSTGIS="3.')
    assert "GEOS=" in full and "PROJ=" in full
    assert point == "POINT(11.4 47.27)"


def test_postgis_area_matches_geos_and_pyproj(settings: Settings, postgres_url: str) -> None:
    """ST_Area(ST_Transform(geom, 3035)) of real NUTS-2 regions equals geopandas' area."""
    gdf = regions(settings, 2, CODES)
    expected = gdf.geometry.to_crs(3035).area.to_numpy()
    rows = [{"id": code, "wkb": geom.wkb} for code, geom in gdf.geometry.items()]
    with engine(postgres_url) as eng, eng.begin() as conn:
        conn.execute(
            sa.text("CREATE TABLE region (id text PRIMARY KEY, geom geometry(Geometry, 4326))")
        )
        conn.execute(sa.text("INSERT INTO region VALUES (:id, ST_GeomFromWKB(:wkb, 4326))"), rows)
        query = sa.text("SELECT id, ST_Area(ST_Transform(geom, 3035)) FROM region")
        areas: dict[str, float] = {id_: area for id_, area in conn.execute(query)}
    np.testing.assert_allclose([areas[code] for code in CODES], expected, rtol=1e-6)


def test_database_url_is_fresh_and_usable(database_url: str, tmp_path: Path) -> None:
    """Each backend: an empty database (PostGIS's own table aside) that stores and reads."""
    with engine(database_url) as eng:
        tables = sa.inspect(eng).get_table_names()
        with eng.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (id integer PRIMARY KEY, name text)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1, 'Tirol')"))
        with eng.connect() as conn:
            assert conn.execute(sa.text("SELECT name FROM t WHERE id = 1")).scalar() == "Tirol"
        dialect = eng.dialect.name
    if database_url.startswith("sqlite"):
        assert dialect == "sqlite" and tables == []
        assert Path(sa.make_url(database_url).database or "").parent == tmp_path
    else:
        assert dialect == "postgresql" and tables == ["spatial_ref_sys"]


@dataclass
class Watched:
    """Databases a test names, and connections it leaves open on them."""

    names: list[str] = field(default_factory=list)
    connections: list[psycopg.Connection[Any]] = field(default_factory=list)


@pytest.fixture
def dropped_afterwards(postgres: Server) -> Iterator[Watched]:
    """Requested first, torn down last: the databases a test names must then be gone."""
    watched = Watched()
    yield watched
    assert watched.names
    assert set(watched.names).isdisjoint(postgres.databases())
    for conn in watched.connections:  # terminated by the drop
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()


def libpq(url: str) -> str:
    """The libpq form of a SQLAlchemy URL, for psycopg itself."""
    return sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def test_per_test_database_is_dropped(
    dropped_afterwards: Watched, postgres_url: str, postgres: Server
) -> None:
    name = sa.make_url(postgres_url).database or ""
    assert name in postgres.databases()
    dropped_afterwards.names.append(name)
    # A connection left open must not keep the database alive (dropped WITH (FORCE)).
    leftover = psycopg.connect(libpq(postgres_url), autocommit=True)
    dropped_afterwards.connections.append(leftover)
    assert leftover.execute("SELECT current_database()").fetchone() == (name,)


def test_second_server_runs_beside_and_is_gone_after_exit(postgres: Server) -> None:
    with throwaway_postgres() as other:
        assert other.port != postgres.port and other.datadir != postgres.datadir
        assert answers(other) and answers(postgres)
        url = other.create_database("leftover")
        with psycopg.connect(libpq(url)) as conn:
            assert conn.execute("SELECT PostGIS_Lib_Version()").fetchone()
            other.drop_database("leftover")  # while this connection is still open
            assert "leftover" not in other.databases()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
        assert proc_stat(other.pid) is not None
    assert proc_stat(other.pid) is None
    assert not other.datadir.parent.exists()
    assert not answers(other)
    assert answers(postgres)


KILLED_RUN = """
import sys, time
from tests.pgserver import throwaway_postgres
with throwaway_postgres(postgis=False) as s:
    print(s.pid, s.datadir, "pytest" in sys.modules, flush=True)
    time.sleep(300)
"""


def test_server_of_a_killed_run_is_cleaned_up_next_time(postgres: Server) -> None:
    """SIGKILL the owner: its server survives, and the next start stops and deletes it."""
    owner = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        pid, datadir, imported_pytest = owner.stdout.readline().split()
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    assert imported_pytest == "False"  # the module does not need pytest (bench uses it)
    leftover = int(pid)
    assert proc_stat(leftover) is not None  # orphaned, still running

    removed = cleanup_stale()

    assert Path(datadir).parent in removed
    assert proc_stat(leftover) is None and not Path(datadir).exists()
    assert postgres.datadir.parent not in removed and answers(postgres)


def test_missing_binaries_or_postgis_say_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailableError, match="not found.*make test"):
        find_binaries([tmp_path])
    found = find_binaries()
    assert found.version == 15 and (found.bindir / "initdb").is_file()
    with pytest.raises(PostgresUnavailableError, match="PostGIS is not installed.*make test"):
        Binaries(found.bindir, tmp_path, found.version).require_postgis()
