"""Nothing lost: an upload killed at any point leaves the complete version or no trace of it.

Every case runs on SQLite and on this run's PostgreSQL (``database_url``). The uploads run in
real child processes that are killed with SIGKILL: a plain Python process running
:func:`geo.uploads.upload`, and the service itself under uvicorn. The children carry
instrumentation only: a wrapper around the real ``Validator.check`` or ``pack`` that, at a
chosen point, writes a marker file and waits (for SIGKILL or a release file), so the kill
lands deterministically while the file is parsed or while the version's rows are inside
the open transaction. The wrappers pass every chunk and slice on unchanged.

References: the real Eurostat GDP table (``nama_10r_3gdp``) read from the mirror, from which
the upload files are written here; the store's tables read row by row before and after the
kill; PostgreSQL's own ``pg_stat_activity``, ``pg_stat_progress_copy`` and SQLite's write
lock showing that the kill hit an open transaction.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import psycopg
import pytest
import sqlalchemy as sa

from geo.accounts import new_key
from geo.formats import ReadOptions
from geo.indicators import load_eurostat
from geo.schema import dataset_versions, datasets, slices, version_indicators
from geo.settings import REPO_ROOT, Settings
from geo.store import Store
from geo.uploads import UploadOutcome, UploadRequest, upload
from tests.pgserver import free_port

DATASET = "gdp"
WAIT_S = 60.0  # longest wait for a child to reach its marker, a server to start, ...
GONE_S = 15.0  # longest wait for PostgreSQL to end the backend of a killed client
# Slices yielded before the kill during the insert: more than the 1,000 rows SQLite's
# _write_slices sends per executemany, so slice rows are inside the open transaction on
# both stores (PostgreSQL's COPY sends them as they come).
SLICES_BEFORE_KILL = 1200

# The child process: installs the instrumentation its arguments ask for, then runs one
# upload, or the service under uvicorn.
CHILD = r'''
import itertools, json, os, sys, time
from pathlib import Path

import geo.store
import geo.uploads

args = json.loads(sys.argv[1])
HOLD_S = 120.0  # never outlive a parent that died


def hold(marker, release):
    """Say where we are, then wait for the release file (or SIGKILL)."""
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + HOLD_S
    while not (release and Path(release).exists()):
        if time.monotonic() > deadline:
            os._exit(3)
        time.sleep(0.02)


def after_chunks(k, marker, release=None):
    """Hold once the validator has checked the k-th chunk (the file is being parsed)."""
    real, calls = geo.uploads.Validator.check, itertools.count(1)

    def check(self, chunk):
        out = real(self, chunk)
        if next(calls) == k:
            hold(marker, release)
        return out

    geo.uploads.Validator.check = check


def after_slices(n, marker, release=None):
    """Hold once the n-th slice has been taken by the store's writer."""
    real = geo.store.pack

    def pack(table):
        for i, piece in enumerate(real(table), 1):
            yield piece
            if i == n:
                hold(marker, release)

    geo.store.pack = pack


def on_put_version(marker):
    """Say when the upload calls Store.put_version (its transaction starts)."""
    real = geo.store.Store.put_version

    def put_version(self, *a, **kw):
        Path(marker).write_text(str(os.getpid()))
        return real(self, *a, **kw)

    geo.store.Store.put_version = put_version


if "chunks" in args:
    after_chunks(**args["chunks"])
if "slices" in args:
    after_slices(**args["slices"])
if "put_version" in args:
    on_put_version(args["put_version"])

if "port" in args:
    import uvicorn

    uvicorn.run(
        "services.app:create_app", factory=True, host="127.0.0.1", port=args["port"],
        log_level="warning",
    )
    sys.exit(0)

from geo.formats import ReadOptions
from geo.settings import Settings
from geo.store import Store

settings = Settings(_env_file=None)
store = Store(settings.database_url)
spec = args["request"]
request = geo.uploads.UploadRequest(
    **{k: v for k, v in spec.items() if k not in ("indicator_from", "levels")},
    read=ReadOptions(indicator_from=spec["indicator_from"]),
    levels=tuple(spec["levels"]) if spec["levels"] else None,
)
if "start" in args:
    while not Path(args["start"]).exists():
        time.sleep(0.005)
outcome = geo.uploads.upload(settings, store, Path(args["file"]), request)
Path(args["out"]).write_text(
    json.dumps({"version": outcome.dataset.version, "created": outcome.created})
)
'''


# -- the upload files, written from the real GDP table ------------------------------------------


@dataclass(frozen=True)
class TableFile:
    """An upload file written from the GDP table, and what the store must hold for it."""

    path: Path
    expected: pd.DataFrame  # indicator, geo, time, value, flag
    indicator_from: tuple[str, ...] | None = None
    levels: tuple[int, ...] | None = None

    def request(self, uploader: str, description: str) -> UploadRequest:
        spec = self.spec(uploader, description)
        del spec["indicator_from"], spec["levels"]
        return UploadRequest(**spec, read=self.read(), levels=self.levels)

    def spec(self, uploader: str, description: str) -> dict[str, Any]:
        """The request as the child's JSON argument."""
        return {
            "dataset_id": DATASET,
            "title": f"GDP ({self.path.stem})",
            "description": description,
            "uploader": uploader,
            "file_name": self.path.name,
            "indicator_from": self.indicator_from,
            "levels": self.levels,
        }

    def read(self) -> ReadOptions:
        return ReadOptions(
            indicator_from=list(self.indicator_from) if self.indicator_from else None
        )


@pytest.fixture(scope="module")
def gdp(settings: Settings) -> pd.DataFrame:
    """The Eurostat GDP table as read from the mirror (all units and NUTS levels)."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    return table


def expected(rows: pd.DataFrame, indicator: pd.Series) -> pd.DataFrame:
    """The observations the store must give back for these source rows."""
    out = pd.DataFrame(
        {
            "indicator": indicator.to_numpy(dtype=str),
            "geo": rows["geo"].to_numpy(dtype=str),
            "time": rows["time"].astype(int).to_numpy(),
            "value": rows["value"].astype(float).to_numpy(),
            "flag": rows["flag"].astype(object).where(rows["flag"].notna(), None).to_numpy(),
        }
    )
    return out.sort_values(["indicator", "time", "geo"]).reset_index(drop=True)


def one_unit(gdp: pd.DataFrame, folder: Path, unit: str) -> TableFile:
    """NUTS-3 rows of one unit (``EUR_HAB``: 26,710 rows); the unit names the indicator."""
    rows = gdp[(gdp["unit"] == unit) & (gdp["geo"].str.len() == 5)]
    path = folder / f"gdp_{unit.lower()}_nuts3.csv"
    rows[["unit", "geo", "time", "value", "flag"]].to_csv(path, index=False)
    return TableFile(path, expected(rows, rows["unit"]))


def all_units(gdp: pd.DataFrame, folder: Path) -> TableFile:
    """The whole table (253,544 rows, 9 MB, all seven units and NUTS levels 0-3), one
    indicator per unit and country: 187,384 NUTS-3 observations in 4,701 slices."""
    path = folder / "gdp_all_units.csv"
    gdp[["unit", "cntr_code", "geo", "time", "value", "flag"]].to_csv(path, index=False)
    # levels=(3,) keeps NUTS-3; extra-regio codes (..ZZZ) are no region of the map
    rows = gdp[(gdp["geo"].str.len() == 5) & ~gdp["geo"].str.endswith("ZZZ")]
    indicator = rows["unit"].astype(str) + "." + rows["cntr_code"].astype(str)
    return TableFile(path, expected(rows, indicator), ("unit", "cntr_code"), (3,))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def small(gdp: pd.DataFrame, files: Path) -> TableFile:
    return one_unit(gdp, files, "EUR_HAB")


@pytest.fixture(scope="module")
def large(gdp: pd.DataFrame, files: Path) -> TableFile:
    return all_units(gdp, files)


@pytest.fixture(scope="module")
def other(gdp: pd.DataFrame, files: Path) -> TableFile:
    return one_unit(gdp, files, "PPS_EU27_2020_HAB")


# -- reading the store back ----------------------------------------------------------------------


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the dataset tables, read by a freshly opened store."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            return {
                t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                for t in (datasets, dataset_versions, version_indicators, slices)
            }
    finally:
        store.engine.dispose()


def assert_stored(url: str, version: int, want: pd.DataFrame) -> None:
    """The version's observations are exactly ``want``: codes, years, values and flags."""
    store = Store(url)
    try:
        got = store.observations(DATASET, version=version)
    finally:
        store.engine.dispose()
    got = got.sort_values(["indicator", "time", "geo"]).reset_index(drop=True)
    assert len(got) == len(want)
    assert list(got["indicator"]) == list(want["indicator"])
    assert list(got["geo"]) == list(want["geo"])
    assert list(got["time"]) == list(want["time"])
    np.testing.assert_array_equal(got["value"].to_numpy(), want["value"].to_numpy())
    assert [f or None for f in got["flag"]] == [f or None for f in want["flag"]]


def sqlite_integrity(url: str) -> str:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def store_first_version(settings: Settings, url: str, item: TableFile) -> None:
    """Version 1, stored by the test process itself."""
    store = Store(url)
    try:
        outcome = upload(settings, store, item.path, item.request("parent", "first"))
    finally:
        store.engine.dispose()
    assert outcome.dataset is not None
    assert (outcome.dataset.version, outcome.created) == (1, True)


def upload_within(
    settings: Settings, url: str, item: TableFile, uploader: str, timeout: float = WAIT_S
) -> UploadOutcome:
    """Upload in a thread that must finish in time (a lock left behind would block it)."""
    result: list[UploadOutcome | BaseException] = []

    def run() -> None:
        store = Store(url)
        try:
            result.append(upload(settings, store, item.path, item.request(uploader, "after")))
        except BaseException as exc:  # noqa: BLE001 (raised below)
            result.append(exc)
        finally:
            store.engine.dispose()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the upload after the kill did not finish in {timeout} s"
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


# -- child processes --------------------------------------------------------------------------


def tagged(url: str, name: str) -> str:
    """The URL with a PostgreSQL application_name, to find the child's backends."""
    return f"{url}?application_name={name}" if url.startswith("postgresql") else url


ADMIN_KEY = new_key()[0]  # the children's bootstrap admin key


def child_env(settings: Settings, url: str, upload_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPCLUSTERS_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ALPCLUSTERS_DATA_MIRROR=str(settings.data_mirror),
        ALPCLUSTERS_ALLOW_DOWNLOAD="false",
        ALPCLUSTERS_NUTS_DIR=str(settings.nuts_dir),
        ALPCLUSTERS_DATABASE_URL=url,
        ALPCLUSTERS_UPLOAD_DIR=str(upload_dir),
        ALPCLUSTERS_UPLOAD_BACKGROUND_BYTES="0",  # every upload of the service in background
        ALPCLUSTERS_ADMIN_KEY=ADMIN_KEY,
    )
    return env


class Children:
    """Starts child processes in ``tmp_path``; kills those still running at the end."""

    def __init__(self, settings: Settings, tmp_path: Path) -> None:
        self.settings = settings
        self.dir = tmp_path
        self.script = tmp_path / "child.py"
        self.script.write_text(CHILD)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, url: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = (self.dir / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, *args],
            env=child_env(self.settings, url, self.dir / "uploads"),
            cwd=self.dir,  # no .env of the developer's
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def run(self, name: str, url: str, **args: Any) -> subprocess.Popen[bytes]:
        """The child script with ``args`` (see CHILD)."""
        return self.start(name, url, [str(self.script), json.dumps(args)])

    def log(self, name: str) -> str:
        return (self.dir / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(WAIT_S) == -signal.SIGKILL

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(WAIT_S)


@pytest.fixture
def children(settings: Settings, tmp_path: Path) -> Iterator[Children]:
    kids = Children(settings, tmp_path)
    try:
        yield kids
    finally:
        kids.close()


def wait_for(
    what: str, ready: Callable[[], Any], timeout: float = WAIT_S, every: float = 0.02
) -> Any:
    """Poll ``ready`` every ``every`` seconds until it returns something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = ready()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(every)


def wait_for_marker(marker: Path, proc: subprocess.Popen[bytes], kids: Children, name: str) -> None:
    def reached() -> bool:
        assert proc.poll() is None, f"{name} exited early:\n{kids.log(name)}"
        return marker.exists()

    wait_for(f"{name} to reach {marker.name}", reached)


# -- what the database server sees of a child -----------------------------------------------------


def pg_sessions(url: str, name: str) -> list[dict[str, Any]]:
    """The child's backends: state, whether in a transaction, waits, COPY progress."""
    dsn = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT a.pid, a.state, a.xact_start IS NOT NULL, a.wait_event_type,"
            " p.tuples_processed"
            " FROM pg_stat_activity a LEFT JOIN pg_stat_progress_copy p ON p.pid = a.pid"
            " WHERE a.application_name = %s AND a.datname = current_database()",
            (name,),
        ).fetchall()
    keys = ("pid", "state", "in_transaction", "waiting_on", "copied")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def sqlite_write_locked(url: str) -> bool:
    """Whether another connection holds SQLite's write lock (an open write transaction)."""
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return True
    finally:
        conn.close()


def assert_in_transaction(url: str, name: str) -> None:
    """The held child is inside its write transaction, with slice rows sent."""
    if url.startswith("sqlite"):
        assert sqlite_write_locked(url)
        return

    def copying() -> bool:
        return any(s["in_transaction"] and (s["copied"] or 0) > 0 for s in pg_sessions(url, name))

    wait_for(f"{name}'s COPY to reach the server", copying)


def assert_no_transaction(url: str, name: str) -> None:
    """The held child has written nothing yet (uploads write only after the whole file)."""
    if url.startswith("sqlite"):
        assert not sqlite_write_locked(url)
    else:
        assert not any(s["in_transaction"] for s in pg_sessions(url, name))


def assert_backends_gone(url: str, name: str) -> None:
    """PostgreSQL noticed the dropped sockets: no session of the killed client is left."""
    if url.startswith("postgresql"):
        wait_for(f"the backends of {name} to end", lambda: not pg_sessions(url, name), GONE_S)


# -- 1 and 2: a plain upload process killed while parsing, and inside the transaction ------------


@pytest.mark.parametrize(
    "phase",
    [
        pytest.param({"chunks": {"k": 1}}, id="parsing"),
        pytest.param({"slices": {"n": SLICES_BEFORE_KILL}}, id="insert"),
    ],
)
def test_killed_upload_leaves_no_trace(
    phase: dict[str, dict[str, int]],
    database_url: str,
    settings: Settings,
    small: TableFile,
    large: TableFile,
    children: Children,
    tmp_path: Path,
) -> None:
    """SIGKILL while the file is parsed, or once 1,200 slices are inside the open transaction:
    version 1 and every table stay as they were, the dataset takes version 2 afterwards."""
    url = database_url
    store_first_version(settings, url, small)
    before = snapshot(url)
    marker = tmp_path / "held"
    hook = {key: {**value, "marker": str(marker)} for key, value in phase.items()}
    name = f"killed-{next(iter(phase))}"
    proc = children.run(
        name,
        tagged(url, name),
        **hook,
        file=str(large.path),
        request=large.spec(name, "killed"),
        out=str(tmp_path / "never.json"),
    )
    wait_for_marker(marker, proc, children, name)
    if "slices" in phase:
        assert_in_transaction(url, name)
    else:
        assert_no_transaction(url, name)
    children.kill(proc)

    assert snapshot(url) == before
    assert_stored(url, 1, small.expected)
    if url.startswith("sqlite"):
        assert sqlite_integrity(url) == "ok"
    after = upload_within(settings, url, large, "parent")
    assert after.dataset is not None
    assert (after.dataset.version, after.created) == (2, True)  # the same content: nothing kept
    assert_stored(url, 2, large.expected)
    assert_stored(url, 1, small.expected)
    assert_backends_gone(url, name)


# -- 3: the service killed by SIGKILL during a background upload ---------------------------------


def start_service(
    kids: Children, name: str, url: str, **hooks: Any
) -> tuple[subprocess.Popen[bytes], str]:
    """The service under uvicorn on a free port: through the child script when
    instrumented, else as ``python -m uvicorn --factory services.app:create_app``."""
    port = free_port()
    if hooks:
        proc = kids.run(name, url, port=port, **hooks)
    else:
        app = ["-m", "uvicorn", "--factory", "services.app:create_app", "--host", "127.0.0.1"]
        proc = kids.start(name, url, [*app, "--port", str(port), "--log-level", "warning"])
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, f"{name} exited:\n{kids.log(name)}"
        try:
            return httpx.get(f"{base}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(f"{name} to answer", up, every=0.1)
    return proc, base


def post_upload(base: str, item: TableFile, uploader: str) -> str:
    """POST /datasets as a statistician would; the id of the background upload."""
    form = {
        "name": DATASET,
        "uploader": uploader,
        "description": f"sent by {uploader}",
        "indicator_from": ",".join(item.indicator_from or ()),
        "levels": ",".join(map(str, item.levels or ())),
    }
    with item.path.open("rb") as fh:
        resp = httpx.post(
            f"{base}/datasets",
            files={"file": (item.path.name, fh, "text/csv")},
            data=form,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=WAIT_S,
        )
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def upload_state(base: str, upload_id: str) -> dict[str, Any]:
    resp = httpx.get(f"{base}/uploads/{upload_id}", timeout=WAIT_S)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(WAIT_S)


def test_service_killed_during_a_background_upload(
    database_url: str,
    settings: Settings,
    small: TableFile,
    large: TableFile,
    children: Children,
    tmp_path: Path,
) -> None:
    """SIGKILL of the service while a background upload has 1,200 slices inside its
    transaction: after a restart the upload is failed, the store holds exactly what it held
    before, and the same file uploads as version 2 through the API."""
    url = database_url
    store_first_version(settings, url, small)
    before = snapshot(url)
    marker, name = tmp_path / "held", "killed-service"
    hook = {"n": SLICES_BEFORE_KILL, "marker": str(marker)}
    proc, base = start_service(children, name, tagged(url, name), slices=hook)
    upload_id = post_upload(base, large, name)
    wait_for_marker(marker, proc, children, name)
    assert upload_state(base, upload_id)["status"] == "running"
    assert_in_transaction(url, name)
    children.kill(proc)

    proc, base = start_service(children, "service", url)
    state = upload_state(base, upload_id)
    assert state["status"] == "failed"
    assert state["error"] == {"detail": "interrupted by a service restart"}
    assert snapshot(url) == before
    versions = httpx.get(f"{base}/datasets/{DATASET}/versions", timeout=WAIT_S).json()
    assert [(v["version"], v["uploader"]) for v in versions] == [(1, "parent")]
    assert_stored(url, 1, small.expected)
    assert_backends_gone(url, name)

    again = post_upload(base, large, "after")
    done = wait_for("the new upload", lambda: finished(base, again), every=0.1)
    assert done["status"] == "done", done
    assert (done["result"]["version"], done["result"]["created"]) == (2, True)
    stop(proc)
    assert_stored(url, 2, large.expected)
    assert_stored(url, 1, small.expected)


def finished(base: str, upload_id: str) -> dict[str, Any] | None:
    state = upload_state(base, upload_id)
    return state if state["status"] in ("done", "failed") else None


# -- 4: two processes upload to one dataset at the same time -------------------------------------


def test_concurrent_uploads_from_two_processes(
    database_url: str,
    small: TableFile,
    other: TableFile,
    children: Children,
    tmp_path: Path,
) -> None:
    """Two processes, released together, upload two tables to one new dataset. The first
    to open its transaction is held there (after its first slice) until the other has
    called ``put_version`` and is seen waiting for it; then versions 1 and 2 are each
    exactly the table of the process that stored them."""
    url = database_url
    Store(url).engine.dispose()  # migrated once, before the race
    tables = {"anna": small, "ben": other}
    start, release = tmp_path / "start", tmp_path / "release"
    procs = {
        name: children.run(
            name,
            tagged(url, name),
            file=str(item.path),
            request=item.spec(name, f"uploaded by {name}"),
            out=str(tmp_path / f"{name}.json"),
            start=str(start),
            put_version=str(tmp_path / f"calling-{name}"),
            slices={"n": 1, "marker": str(tmp_path / f"inside-{name}"), "release": str(release)},
        )
        for name, item in tables.items()
    }
    start.touch()
    inside = wait_for(
        "an upload inside its transaction",
        lambda: [n for n in tables if (tmp_path / f"inside-{n}").exists()],
    )
    assert len(inside) == 1
    first, second = inside[0], next(n for n in tables if n != inside[0])
    wait_for_marker(tmp_path / f"calling-{second}", procs[second], children, second)
    assert_waiting(url, second, tmp_path / f"inside-{second}")
    release.touch()
    for name, proc in procs.items():
        assert proc.wait(WAIT_S) == 0, children.log(name)

    results = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in tables}
    assert results == {
        first: {"version": 1, "created": True},
        second: {"version": 2, "created": True},
    }
    store = Store(url)
    versions = store.versions(DATASET)
    store.engine.dispose()
    assert [(v.version, v.uploader, v.file_name) for v in versions] == [
        (1, first, tables[first].path.name),
        (2, second, tables[second].path.name),
    ]
    for v in versions:
        assert v.n_rows == len(tables[v.uploader].expected)
        assert_stored(url, v.version, tables[v.uploader].expected)


def assert_waiting(url: str, name: str, inside: Path) -> None:
    """The second upload, inside ``put_version``, waits for the first one's transaction."""
    if url.startswith("postgresql"):
        wait_for(
            f"{name} to wait for a lock",
            lambda: [s for s in pg_sessions(url, name) if s["waiting_on"] == "Lock"],
        )
    else:
        time.sleep(0.5)  # SQLite's busy handler shows nothing outside: give it time to fail
    assert not inside.exists()
