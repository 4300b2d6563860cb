"""The indicator and analysis store: SQLAlchemy 2 over SQLite (embedded default)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geo.errors import UnknownAnalysisError, UnknownDatasetError, closest

metadata = sa.MetaData()

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("source", sa.Text, nullable=False, default=""),
    sa.Column("licence", sa.Text, nullable=False, default=""),
    sa.Column("nuts_year", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

indicators = sa.Table(
    "indicators",
    metadata,
    sa.Column("dataset_id", sa.ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("code", sa.String(256), primary_key=True),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("unit", sa.String(64), nullable=False, default=""),
    sa.Column("position", sa.Integer, nullable=False),
)

observations = sa.Table(
    "observations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset_id", sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    sa.Column("indicator", sa.String(256), nullable=False),
    sa.Column("geo", sa.String(16), nullable=False),
    sa.Column("time", sa.Integer, nullable=False),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("flag", sa.String(16), nullable=True),
    sa.Index("ix_observations_series", "dataset_id", "indicator", "time"),
)

analyses = sa.Table(
    "analyses",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("dataset_id", sa.String(128), nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("summary", sa.JSON, nullable=True),
    sa.Column("regions", sa.LargeBinary, nullable=True),
    sa.Column("catchments", sa.LargeBinary, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("progress", sa.Float, nullable=False, default=0.0),
)

# Analysis states: queued -> running (with progress) -> done | failed.
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"


@dataclass(frozen=True)
class IndicatorInfo:
    code: str
    label: str
    unit: str
    years: list[int]
    n_regions: int


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    title: str
    description: str
    source: str
    licence: str
    nuts_year: int
    content_hash: str
    n_rows: int
    created_at: dt.datetime
    indicators: list[IndicatorInfo]


@dataclass(frozen=True)
class AnalysisRecord:
    id: str
    dataset_id: str
    params: dict[str, Any]
    status: str
    error: str | None
    summary: dict[str, Any] | None
    duration_s: float | None
    created_at: dt.datetime
    regions: pd.DataFrame | None = None
    catchments: gpd.GeoDataFrame | None = None
    progress: float = 0.0


def make_engine(url: str) -> Engine:
    """Create the engine, making the SQLite file's directory when needed."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


class Store:
    """Datasets of indicator observations and stored analyses."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        metadata.create_all(self.engine)
        _add_missing_columns(self.engine)

    def put_dataset(
        self, meta: dict[str, Any], labels: dict[str, tuple[str, str]], table: pd.DataFrame
    ) -> DatasetInfo:
        """Store a dataset and its observations in one transaction, replacing the old ones.

        ``table`` has the columns ``indicator, geo, time, value, flag``; ``labels`` maps
        each indicator code to ``(label, unit)``.
        """
        rows = table[["indicator", "geo", "time", "value", "flag"]].copy()
        rows["time"] = rows["time"].astype(int)
        rows["value"] = rows["value"].astype(float).astype(object).where(rows["value"].notna())
        rows["flag"] = rows["flag"].astype(object).where(rows["flag"].notna())
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(datasets).where(datasets.c.id == meta["id"]))
            conn.execute(sa.delete(observations).where(observations.c.dataset_id == meta["id"]))
            conn.execute(sa.delete(indicators).where(indicators.c.dataset_id == meta["id"]))
            conn.execute(sa.insert(datasets), [{**meta, "n_rows": len(rows), "created_at": now}])
            conn.execute(
                sa.insert(indicators),
                [
                    {
                        "dataset_id": meta["id"],
                        "code": code,
                        "label": label,
                        "unit": unit,
                        "position": pos,
                    }
                    for pos, (code, (label, unit)) in enumerate(labels.items())
                ],
            )
            records = rows.assign(dataset_id=meta["id"]).to_dict("records")
            for start in range(0, len(records), 50_000):
                conn.execute(sa.insert(observations), records[start : start + 50_000])
        return self.dataset(meta["id"])

    def dataset_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.scalars(sa.select(datasets.c.id).order_by(datasets.c.id)))

    def datasets(self) -> list[DatasetInfo]:
        return [self.dataset(i) for i in self.dataset_ids()]

    def dataset(self, dataset_id: str) -> DatasetInfo:
        """Describe one dataset, or raise :class:`UnknownDatasetError` naming the valid ids."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(datasets).where(datasets.c.id == dataset_id)).first()
            if row is None:
                valid = self.dataset_ids()
                hint = closest(dataset_id, valid)
                raise UnknownDatasetError(
                    f"unknown dataset {dataset_id!r}"
                    + (f" (did you mean {', '.join(hint)}?)" if hint else "")
                    + f"; valid datasets: {valid}"
                )
            coverage = conn.execute(
                sa.select(
                    observations.c.indicator,
                    observations.c.time,
                    sa.func.count(observations.c.value),
                )
                .where(observations.c.dataset_id == dataset_id)
                .group_by(observations.c.indicator, observations.c.time)
            ).all()
            inds = conn.execute(
                sa.select(indicators)
                .where(indicators.c.dataset_id == dataset_id)
                .order_by(indicators.c.position)
            ).all()
        info = []
        for ind in inds:
            counts = {t: c for code, t, c in coverage if code == ind.code and c}
            info.append(
                IndicatorInfo(
                    ind.code, ind.label, ind.unit, sorted(counts), max(counts.values(), default=0)
                )
            )
        fields = {k: getattr(row, k) for k in (c.name for c in datasets.c)}
        fields["created_at"] = _utc(fields["created_at"])
        return DatasetInfo(**fields, indicators=info)

    def observations(
        self,
        dataset_id: str,
        indicators_: Iterable[str],
        years: Iterable[int],
        geos: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Observations of some indicators and years as ``indicator, geo, time, value, flag``."""
        query = sa.select(
            observations.c.indicator,
            observations.c.geo,
            observations.c.time,
            observations.c.value,
            observations.c.flag,
        ).where(
            observations.c.dataset_id == dataset_id,
            observations.c.indicator.in_(list(indicators_)),
            observations.c.time.in_([int(y) for y in years]),
        )
        if geos is not None:
            query = query.where(observations.c.geo.in_(list(geos)))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(
                conn.execute(query).all(), columns=[c.name for c in query.selected_columns]
            )
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce").astype(float)
        return frame

    def put_analysis(self, record: AnalysisRecord) -> None:
        """Insert or replace an analysis with its result tables."""
        values = {
            "id": record.id,
            "dataset_id": record.dataset_id,
            "params": record.params,
            "status": record.status,
            "error": record.error,
            "summary": record.summary,
            "duration_s": record.duration_s,
            "created_at": record.created_at,
            "regions": _to_parquet(record.regions),
            "catchments": _to_parquet(record.catchments),
            "progress": record.progress,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.delete(analyses).where(analyses.c.id == record.id))
            conn.execute(sa.insert(analyses), [values])

    def set_progress(self, analysis_id: str, status: str, progress: float) -> None:
        """Record the state of a running analysis."""
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(analyses)
                .where(analyses.c.id == analysis_id)
                .values(status=status, progress=progress)
            )

    def fail_unfinished(self, reason: str) -> list[str]:
        """Mark queued and running analyses as failed (after a restart); return their ids."""
        unfinished = analyses.c.status.in_([QUEUED, RUNNING])
        with self.engine.begin() as conn:
            ids = list(conn.scalars(sa.select(analyses.c.id).where(unfinished)))
            conn.execute(sa.update(analyses).where(unfinished).values(status=FAILED, error=reason))
        return ids

    def analysis(self, analysis_id: str, with_tables: bool = True) -> AnalysisRecord:
        cols = (
            list(analyses.c)
            if with_tables
            else [c for c in analyses.c if c.name not in ("regions", "catchments")]
        )
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


def _add_missing_columns(engine: Engine) -> None:
    """Bring a store made by an earlier version up to the current columns."""
    present = {c["name"] for c in sa.inspect(engine).get_columns("analyses")}
    if "progress" not in present:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE analyses ADD COLUMN progress FLOAT DEFAULT 0"))


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
