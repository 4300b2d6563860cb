"""The indicator and analysis store: SQLAlchemy 2 over SQLite (embedded default) or
PostgreSQL/PostGIS (several service workers sharing one database).

The schema is built by Alembic migrations (:mod:`geo.migrations`), the same on both. A new
dataset version is written in one transaction, so a crash leaves the complete version or
none of it; identical content is stored once (the same version comes back).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from geo.accounts import Accounts
from geo.errors import UnknownAnalysisError, UnknownDatasetError, closest
from geo.packing import pack, unpack
from geo.records import (
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    AnalysisRecord,
    DatasetInfo,
    IndicatorInfo,
    UploadRecord,
    VersionInfo,
)
from geo.schema import analyses, dataset_versions, datasets, slices, uploads, version_indicators

__all__ = [
    "DONE",
    "FAILED",
    "QUEUED",
    "RUNNING",
    "AnalysisRecord",
    "DatasetInfo",
    "IndicatorInfo",
    "Store",
    "UploadRecord",
    "VersionInfo",
    "canonical_json",
]

_MIGRATING = threading.Lock()
MIGRATION_LOCK = 7_314_221  # pg_advisory_lock key: one migrating service worker at a time
SQLITE_BUSY_TIMEOUT_S = 120  # a writer waits this long for another's transaction
# A process that has not renewed the heartbeat of its work for this long is taken as gone
# (for owners on other hosts; those on this host are looked up in /proc).
LEASE_S = 120.0


def make_engine(url: str) -> Engine:
    """Create the engine, making the SQLite file's directory when needed."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


def migrate(engine: Engine) -> None:
    """Bring the database to the latest schema with Alembic.

    A store made before migrations existed (the foundation's tables, no
    ``alembic_version``) is stamped as revision 0001 first, then upgraded.
    """
    from alembic import command
    from alembic.config import Config

    with _MIGRATING:  # Alembic's environment is process-global: one migration at a time
        _migrate(engine, command, Config)


def _migrate(engine: Engine, command: Any, config_class: Any) -> None:
    config = config_class()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":  # tables are rebuilt: no cascades meanwhile
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
            conn.commit()
        try:
            config.attributes["connection"] = conn
            tables = set(sa.inspect(conn).get_table_names())
            if "datasets" in tables and "alembic_version" not in tables:
                command.stamp(config, "0001")
            command.upgrade(config, "head")
            conn.commit()
        finally:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            else:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                conn.commit()


class Store:
    """Versioned datasets of indicator observations, stored analyses and uploads."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        migrate(self.engine)
        self.accounts = Accounts(self.engine)

    @property
    def owner(self) -> str:
        """This process as the owner of the work it runs (see :func:`process_owner`)."""
        return process_owner()

    # -- datasets and versions ---------------------------------------------------------

    def put_version(
        self,
        meta: Mapping[str, Any],
        version: Mapping[str, Any],
        labels: Mapping[str, tuple[str, str]],
        table: pd.DataFrame,
    ) -> tuple[DatasetInfo, bool]:
        """Store ``table`` as a new version of dataset ``meta["id"]``, in one transaction.

        Parameters
        ----------
        meta
            ``id`` and ``title``, optionally ``description``, ``source``, ``licence`` and
            ``owner``. They create the dataset, or update it when given (non-empty).
        version
            ``content_hash``, ``nuts_year`` and optionally ``uploader``, ``file_name``,
            ``format``, ``source_nuts_year`` and ``report`` (JSON).
        labels
            Indicator code -> ``(label, unit)``, in the order to list them.
        table
            ``indicator, geo, time, value, flag``.

        Returns
        -------
        The dataset at the stored version, and whether the version is new: identical
        content (the same ``content_hash``) returns the existing version instead.
        """
        with self.engine.begin() as conn:
            self._upsert_dataset(conn, meta)
            existing = conn.execute(
                sa.select(dataset_versions.c.version).where(
                    dataset_versions.c.dataset_id == meta["id"],
                    dataset_versions.c.content_hash == version["content_hash"],
                )
            ).scalar()
            if existing is not None:
                return self.dataset(meta["id"], existing, conn=conn), False
            number = 1 + (
                conn.execute(
                    sa.select(sa.func.max(dataset_versions.c.version)).where(
                        dataset_versions.c.dataset_id == meta["id"]
                    )
                ).scalar()
                or 0
            )
            version_id = self._insert_version(conn, meta["id"], number, version, len(table))
            conn.execute(
                sa.insert(version_indicators),
                [
                    {"version_id": version_id, "code": c, "label": lab, "unit": u, "position": i}
                    for i, (c, (lab, u)) in enumerate(labels.items())
                ],
            )
            _write_slices(conn, version_id, table)
            return self.dataset(meta["id"], number, conn=conn), True

    def _upsert_dataset(self, conn: sa.Connection, meta: Mapping[str, Any]) -> None:
        """Create the dataset row or update its descriptive fields; lock it until commit,
        so that concurrent uploads to one dataset number their versions one by one."""
        insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        described = {
            k: meta[k] for k in ("title", "description", "source", "licence") if meta.get(k)
        }
        row = {"description": "", "source": "", "licence": "", "owner": "", **described}
        row |= {"id": meta["id"], "title": meta.get("title") or meta["id"]}
        row |= {"owner": meta.get("owner") or "", "created_at": dt.datetime.now(dt.UTC)}
        conn.execute(insert(datasets).values(row).on_conflict_do_nothing())
        if described:
            conn.execute(sa.update(datasets).where(datasets.c.id == meta["id"]).values(described))
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.select(datasets.c.id).where(datasets.c.id == meta["id"]).with_for_update()
            )

    @staticmethod
    def _insert_version(
        conn: sa.Connection, dataset_id: str, number: int, version: Mapping[str, Any], rows: int
    ) -> int:
        values = {
            "dataset_id": dataset_id,
            "version": number,
            "content_hash": version["content_hash"],
            "uploader": version.get("uploader") or "",
            "created_at": dt.datetime.now(dt.UTC),
            "n_rows": rows,
            "nuts_year": version["nuts_year"],
            "source_nuts_year": version.get("source_nuts_year"),
            "file_name": version.get("file_name") or "",
            "format": version.get("format") or "",
            "report": version.get("report"),
        }
        query = sa.insert(dataset_versions).values(values).returning(dataset_versions.c.id)
        return int(conn.execute(query).scalar_one())

    def dataset_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(datasets.c.id).order_by(datasets.c.id)))

    def datasets(self) -> list[DatasetInfo]:
        return [self.dataset(i) for i in self.dataset_ids()]

    def dataset(
        self, dataset_id: str, version: int | None = None, conn: sa.Connection | None = None
    ) -> DatasetInfo:
        """A dataset at ``version`` (default: the latest), or :class:`UnknownDatasetError`
        naming the valid ids (or versions)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.dataset(dataset_id, version, own)
        row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
        if row is None:
            raise _unknown_dataset(dataset_id, self.dataset_ids())
        numbers = list(
            conn.scalars(
                sa.select(dataset_versions.c.version)
                .where(dataset_versions.c.dataset_id == dataset_id)
                .order_by(dataset_versions.c.version)
            )
        )
        if version is None and numbers:
            version = numbers[-1]
        if version is None or version not in numbers:
            raise UnknownDatasetError(
                f"dataset {dataset_id!r} has no version {version}; versions: {numbers}"
            )
        info = self._version(conn, dataset_id, version)
        fields = row._asdict()
        return DatasetInfo(
            **{k: fields[k] for k in ("id", "title", "description", "source", "licence")},
            owner=fields["owner"],
            created_at=_utc(fields["created_at"]),
            version=info.version,
            versions=len(numbers),
            content_hash=info.content_hash,
            n_rows=info.n_rows,
            nuts_year=info.nuts_year,
            updated_at=info.created_at,
            indicators=info.indicators,
        )

    def versions(self, dataset_id: str) -> list[VersionInfo]:
        """Every version of a dataset, oldest first."""
        info = self.dataset(dataset_id)
        with self.engine.connect() as conn:
            return [self._version(conn, dataset_id, v) for v in range(1, info.version + 1)]

    def version(self, dataset_id: str, version: int) -> VersionInfo:
        self.dataset(dataset_id, version)  # names the valid versions when it is unknown
        with self.engine.connect() as conn:
            return self._version(conn, dataset_id, version)

    def _version(self, conn: sa.Connection, dataset_id: str, version: int) -> VersionInfo:
        row = conn.execute(
            sa.select(dataset_versions).where(
                dataset_versions.c.dataset_id == dataset_id,
                dataset_versions.c.version == version,
            )
        ).one()
        coverage = conn.execute(
            sa.select(slices.c.indicator, slices.c.time, slices.c.n_values).where(
                slices.c.version_id == row.id
            )
        ).all()
        inds = conn.execute(
            sa.select(version_indicators)
            .where(version_indicators.c.version_id == row.id)
            .order_by(version_indicators.c.position)
        ).all()
        indicators = []
        for ind in inds:
            counts = {t: n for code, t, n in coverage if code == ind.code and n}
            indicators.append(
                IndicatorInfo(
                    ind.code, ind.label, ind.unit, sorted(counts), max(counts.values(), default=0)
                )
            )
        fields = {k: v for k, v in row._asdict().items() if k != "id"}
        fields["created_at"] = _utc(fields["created_at"])
        return VersionInfo(**fields, indicators=indicators)

    def _version_id(self, conn: sa.Connection, dataset_id: str, version: int | None) -> int:
        info = self.dataset(dataset_id, version, conn=conn)
        return int(
            conn.execute(
                sa.select(dataset_versions.c.id).where(
                    dataset_versions.c.dataset_id == dataset_id,
                    dataset_versions.c.version == info.version,
                )
            ).scalar_one()
        )

    def observations(
        self,
        dataset_id: str,
        indicators_: Iterable[str] | None = None,
        years: Iterable[int] | None = None,
        geos: Iterable[str] | None = None,
        version: int | None = None,
    ) -> pd.DataFrame:
        """Observations as ``indicator, geo, time, value, flag`` (all, or some indicators,
        years and regions) of a dataset version (default: the latest)."""
        with self.engine.connect() as conn:
            query = sa.select(
                *(slices.c[c] for c in ("indicator", "time", "geos", "vals", "flags"))
            )
            query = query.where(slices.c.version_id == self._version_id(conn, dataset_id, version))
            if indicators_ is not None:
                query = query.where(slices.c.indicator.in_(list(indicators_)))
            if years is not None:
                query = query.where(slices.c.time.in_([int(y) for y in years]))
            query = query.order_by(slices.c.indicator, slices.c.time)
            frame = unpack(row._asdict() for row in conn.execute(query))
        if geos is not None:
            frame = frame[frame["geo"].isin(list(geos))].reset_index(drop=True)
        return frame

    def version_frames(
        self, dataset_id: str, version: int, batch: int = 256
    ) -> Iterator[pd.DataFrame]:
        """The observations of a version, a few slices at a time (for downloads)."""
        with self.engine.connect() as conn:
            vid = self._version_id(conn, dataset_id, version)
            query = (
                sa.select(*(slices.c[c] for c in ("indicator", "time", "geos", "vals", "flags")))
                .where(slices.c.version_id == vid)
                .order_by(slices.c.indicator, slices.c.time)
            )
            rows = conn.execution_options(yield_per=batch).execute(query)
            for part in rows.partitions(batch):
                yield unpack(row._asdict() for row in part)

    # -- analyses -----------------------------------------------------------------------

    def put_analysis(self, record: AnalysisRecord, owner: str | None = None) -> None:
        """Insert or replace an analysis with its result tables.

        ``owner`` is the process that will run a queued or running analysis (see
        :meth:`claim_analysis`); without one, :meth:`fail_unfinished` takes it as orphaned.
        """
        with self.engine.begin() as conn:
            conn.execute(sa.delete(analyses).where(analyses.c.id == record.id))
            conn.execute(sa.insert(analyses), [_analysis_row(record, owner)])

    def claim_analysis(self, record: AnalysisRecord, owner: str) -> bool:
        """Store a new analysis (normally queued) as run by ``owner``, unless another
        process has stored it first; a failed one is replaced. Whether it is ours.

        Two service processes receiving the same request at once: one stores and runs it,
        the other answers with the stored record.
        """
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(analyses).where(analyses.c.id == record.id, analyses.c.status == FAILED)
            )
            query = insert(analyses).values(_analysis_row(record, owner)).on_conflict_do_nothing()
            return bool(conn.execute(query).rowcount)

    def set_progress(self, analysis_id: str, status: str, progress: float) -> None:
        """Record the state of a running analysis."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(analyses)
                .where(analyses.c.id == analysis_id)
                .values(status=status, progress=progress)
            )

    def fail_unfinished(self, reason: str, lease_s: float = LEASE_S) -> list[str]:
        """Mark the queued and running analyses and uploads of processes that are gone as
        failed with ``reason`` (at a start, and now and then); return the analyses' ids.

        Work of live processes (other workers of this service, on this host or another)
        is left alone: an owner on this host is looked up among its processes, one on
        another host is gone when its heartbeat is older than ``lease_s`` seconds, and work
        without an owner belongs to no process.
        """
        now = _now()
        failed: dict[str, list[str]] = {}
        with self.engine.begin() as conn:
            for table in (analyses, uploads):
                unfinished = table.c.status.in_([QUEUED, RUNNING])
                rows = conn.execute(
                    sa.select(table.c.id, table.c.owner, table.c.heartbeat_at).where(unfinished)
                ).all()
                gone = [r.id for r in rows if owner_gone(r.owner, r.heartbeat_at, now, lease_s)]
                failed[table.name] = gone
                if not gone:
                    continue
                error: Any = reason if table is analyses else {"detail": reason}
                changes: dict[str, Any] = {"status": FAILED, "error": error}
                if table is uploads:
                    changes["updated_at"] = now
                conn.execute(
                    sa.update(table).where(unfinished, table.c.id.in_(gone)).values(changes)
                )
        return failed["analyses"]

    def heartbeat(self) -> int:
        """Renew the heartbeat of this process's queued and running work; how many rows."""
        renewed = 0
        with self.engine.begin() as conn:
            for table in (analyses, uploads):
                mine = sa.and_(table.c.owner == self.owner, table.c.status.in_([QUEUED, RUNNING]))
                if conn.execute(sa.select(sa.func.count()).where(mine)).scalar():
                    query = sa.update(table).where(mine).values(heartbeat_at=_now())
                    renewed += conn.execute(query).rowcount
        return renewed

    def analysis(self, analysis_id: str, with_tables: bool = True) -> AnalysisRecord:
        skip = {"owner", "heartbeat_at"} | (set() if with_tables else {"regions", "catchments"})
        cols = [c for c in analyses.c if c.name not in skip]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*cols).where(analyses.c.id == analysis_id)).first()
        if row is None:
            raise UnknownAnalysisError(f"unknown analysis {analysis_id!r}")
        data = row._asdict()
        data["created_at"] = _utc(data["created_at"])
        data["progress"] = data.get("progress") or 0.0
        regions = data.pop("regions", None)
        catch = data.pop("catchments", None)
        return AnalysisRecord(
            **data,
            regions=pd.read_parquet(io.BytesIO(regions)) if regions else None,
            catchments=gpd.read_parquet(io.BytesIO(catch)) if catch else None,
        )

    def find_analysis(self, analysis_id: str) -> AnalysisRecord | None:
        """The analysis without its tables, or None when it is not stored."""
        try:
            return self.analysis(analysis_id, with_tables=False)
        except UnknownAnalysisError:
            return None

    def analyses(self, limit: int = 50) -> list[AnalysisRecord]:
        with self.engine.connect() as conn:
            ids = list(
                conn.scalars(
                    sa.select(analyses.c.id).order_by(analyses.c.created_at.desc()).limit(limit)
                )
            )
        return [self.analysis(i, with_tables=False) for i in ids]

    # -- uploads ------------------------------------------------------------------------

    def put_upload(self, record: UploadRecord) -> None:
        """Record a new background upload, run by this process."""
        values = {k: getattr(record, k) for k in (c.name for c in uploads.c) if hasattr(record, k)}
        values |= {"owner": self.owner, "heartbeat_at": _now()}
        with self.engine.begin() as conn:
            conn.execute(sa.insert(uploads), [values])

    def set_upload(self, upload_id: str, **changes: Any) -> None:
        """Update an upload's ``status``, ``progress``, ``error`` or ``result``."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(uploads)
                .where(uploads.c.id == upload_id)
                .values(**changes, updated_at=_now())
            )

    def upload(self, upload_id: str) -> UploadRecord:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(uploads).where(uploads.c.id == upload_id)).first()
        if row is None:
            raise UnknownDatasetError(f"unknown upload {upload_id!r}")
        data = row._asdict()
        del data["owner"], data["heartbeat_at"]
        data["created_at"], data["updated_at"] = map(_utc, (data["created_at"], data["updated_at"]))
        return UploadRecord(**data)


def _analysis_row(record: AnalysisRecord, owner: str | None) -> dict[str, Any]:
    return {
        "id": record.id,
        "dataset_id": record.dataset_id,
        "dataset_version": record.dataset_version,
        "params": record.params,
        "status": record.status,
        "error": record.error,
        "summary": record.summary,
        "duration_s": record.duration_s,
        "created_at": record.created_at,
        "regions": _to_parquet(record.regions),
        "catchments": _to_parquet(record.catchments),
        "progress": record.progress,
        "owner": owner,
        "heartbeat_at": _now() if owner else None,
    }


# -- job ownership: which process runs a queued or running analysis or upload ----------------


_PROC = Path("/proc/self/stat")


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return ""


def _started(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot ("" without /proc; None when
    the process is gone or a zombie)."""
    if not _PROC.exists():
        return ""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    fields = stat[stat.rindex(")") + 2 :].split()
    return None if fields[0] in ("Z", "X") else fields[19]


def process_owner(pid: int | None = None) -> str:
    """A process as an owner of work (default: this one): ``host/boot/pid/start``; the boot
    id and start time tell a reused pid, or a rebooted host, from the recorded process."""
    own = pid is None or pid == os.getpid()
    pid = os.getpid() if pid is None else pid
    if own and pid in _OWN:  # looked up once per process (a forked child is another)
        return _OWN[pid]
    owner = f"{socket.gethostname()}/{_boot_id()}/{pid}/{_started(pid) or ''}"
    if own:
        _OWN[pid] = owner
    return owner


_OWN: dict[int, str] = {}


def owner_gone(
    owner: str | None, heartbeat_at: dt.datetime | None, now: dt.datetime, lease_s: float
) -> bool:
    """Whether the process that recorded ``owner`` no longer runs its work."""
    if not owner:
        return True
    host, _, rest = owner.partition("/")
    boot, _, rest = rest.partition("/")
    pid, _, start = rest.partition("/")
    if host != socket.gethostname():
        return heartbeat_at is None or (now - _utc(heartbeat_at)).total_seconds() > lease_s
    if boot != _boot_id() or not pid.isdigit():
        return True
    running = _started(int(pid))
    if running == "":  # no /proc: ask the kernel whether the pid exists at all
        return not _pid_exists(int(pid))
    return running is None or (bool(start) and running != start)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_slices(conn: sa.Connection, version_id: int, table: pd.DataFrame) -> None:
    """The slices of a version: COPY on PostgreSQL, one executemany on SQLite."""
    rows = ({"version_id": version_id, **piece} for piece in pack(table))
    columns = [c.name for c in slices.c]
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        statement = f"COPY slices ({', '.join(columns)}) FROM STDIN"
        with raw.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row([row[c] for c in columns])
        return
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= 1000:
            conn.execute(sa.insert(slices), batch)
            batch = []
    if batch:
        conn.execute(sa.insert(slices), batch)


def _unknown_dataset(dataset_id: str, valid: list[str]) -> UnknownDatasetError:
    hint = closest(dataset_id, valid)
    return UnknownDatasetError(
        f"unknown dataset {dataset_id!r}"
        + (f" (did you mean {', '.join(hint)}?)" if hint else "")
        + f"; valid datasets: {valid}"
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(stamp: dt.datetime) -> dt.datetime:
    """SQLite keeps no time zone; every stamp is written in UTC."""
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)


def _to_parquet(frame: pd.DataFrame | None) -> bytes | None:
    if frame is None:
        return None
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def canonical_json(obj: Any) -> str:
    """Stable JSON used for hashing parameters."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
