"""Case 5, ingestion: one side of one ingest case, in the worker's fresh process.

* ours: ``geo.store.Store(url)`` (schema migration) and ``geo.uploads.upload``, the real
  upload pipeline: streaming read, NUTS version detection, validation of every row
  against the NUTS codes of the layer in use, one transaction of slices (COPY on
  PostgreSQL).
* pandas: ``sqlalchemy.create_engine(url)``, ``pandas.read_csv(path)`` and
  ``DataFrame.to_sql("observations", engine, index=False)``, pandas' defaults.

Each side is timed once, into a fresh database: a new SQLite file, or a new database of
the throwaway PostgreSQL whose URL the harness passes in :data:`DATABASE_ENV` (run alone,
the worker starts its own server, untimed). After the timing, ours is checked against the
generated file (row count, report, spot slices regenerated from the seed) and the
pandas table's rows are counted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from bench.cases import OURS, PANDAS, Case, Sizes
from bench.ingest_data import Generated, Spec, expected, indicator_code, load
from bench.memory import peak_rss_mb

DATABASE_ENV = "BENCH_INGEST_DATABASE_URL"  # a fresh PostgreSQL database for this side
DATASET = "bench_ingest"
TABLE = "observations"  # the pandas side's table


def spec_of(sizes: Sizes) -> Spec:
    return Spec(indicators=sizes.ingest_indicators, years=sizes.ingest_years)


def generated(sizes: Sizes, out: Path) -> Generated:
    """The generated file (``python -m bench`` writes it before the ingest runs)."""
    spec = spec_of(sizes)
    found = load(spec, out)
    if found is None:  # the worker run alone: write it now (untimed)
        from bench.ingest_data import ensure

        found = ensure(spec, out)
    return found


@contextlib.contextmanager
def fresh_database(case: Case, side: str, out: Path) -> Iterator[str]:
    """The URL of an empty database for this side; removed afterwards."""
    if case.key == "ingest-sqlite":
        folder = Path(tempfile.mkdtemp(prefix=f"db-{side}-", dir=out / "ingest"))
        try:
            yield f"sqlite:///{folder / 'store.db'}"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    elif os.environ.get(DATABASE_ENV):
        yield os.environ[DATABASE_ENV]
    else:
        from tests.pgserver import throwaway_postgres

        with throwaway_postgres() as server:
            yield server.create_database(f"bench_{side}")


def database_mb(engine: Any) -> float:
    """Size of the database on disk: the SQLite file (after a checkpoint), or PostgreSQL's."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            query = "SELECT pg_database_size(current_database())"
            return float(conn.execute(sa.text(query)).scalar_one()) / 2**20
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return Path(str(engine.url.database)).stat().st_size / 2**20


def spot_keys(spec: Spec) -> list[tuple[int, int]]:
    """(indicator, year) slices compared value by value: first, middle and last."""
    last = spec.first_year + spec.years - 1
    return [
        (0, spec.first_year),
        (spec.indicators // 2, spec.first_year + spec.years // 2),
        (spec.indicators - 1, last),
    ]


def spot_check(store: Any, data: Generated) -> dict[str, int]:
    """Regenerate a few slices from the seed; compare them with ``store.observations``."""
    compared = mismatched = 0
    for k, year in spot_keys(data.spec):
        want = expected(data.spec, list(data.regions), k, year).set_index("geo")
        stored = store.observations(DATASET, [indicator_code(k)], [year])
        got = stored.set_index("geo").reindex(want.index)
        same_value = (got["value"].to_numpy() == want["value"].to_numpy()) | (
            np.isnan(got["value"].to_numpy(dtype=float)) & np.isnan(want["value"].to_numpy())
        )
        same_flag = got["flag"].fillna("").to_numpy() == want["flag"].to_numpy()
        compared += len(want)
        mismatched += int((~(same_value & same_flag)).sum()) + abs(len(stored) - len(want))
    return {"spot_values": compared, "spot_mismatches": mismatched}


def run_ours(case: Case, data: Generated, url: str) -> dict[str, Any]:
    """``Store(url)`` + ``upload`` timed once; then the checks."""
    from geo.settings import Settings
    from geo.store import Store
    from geo.uploads import UploadRequest, upload

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        allow_download=False,
    )
    request = UploadRequest(DATASET, title="Ingestion benchmark", file_name=data.path.name)
    rss_inputs = peak_rss_mb()
    start = time.perf_counter()
    store = Store(url)
    outcome = upload(settings, store, data.path, request)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    info, report = outcome.dataset, outcome.report
    summary = report["summary"]
    fields: dict[str, Any] = {
        "stored_rows": None if info is None else info.n_rows,
        "version": None if info is None else info.version,
        "problems": len(report["problems"]) + report["more_problems"],
        "warnings": len(report["warnings"]) + report["more_warnings"],
        "rows_missing": summary.get("rows_missing"),
        "nuts_detected": report["nuts"].get("version"),
        **spot_check(store, data),
        "db_mb": database_mb(store.engine),
    }
    store.engine.dispose()
    return record(case, OURS, data, seconds, rss, rss_inputs, **fields)


def run_pandas(case: Case, data: Generated, url: str) -> dict[str, Any]:
    """``create_engine`` + ``read_csv`` + ``to_sql``, pandas' defaults, timed once."""
    import pandas as pd
    import sqlalchemy as sa

    rss_inputs = peak_rss_mb()
    start = time.perf_counter()
    engine = sa.create_engine(url)
    frame = pd.read_csv(data.path)
    read_s = time.perf_counter() - start
    frame.to_sql(TABLE, engine, index=False)
    seconds = time.perf_counter() - start
    rss = peak_rss_mb()
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    del frame
    with engine.connect() as conn:
        stored = int(conn.execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one())
    fields = {"read_s": read_s, "stored_rows": stored, "dtypes": dtypes}
    fields["db_mb"] = database_mb(engine)
    engine.dispose()
    return record(case, PANDAS, data, seconds, rss, rss_inputs, **fields)


def record(
    case: Case,
    side: str,
    data: Generated,
    seconds: float,
    rss: float,
    rss_inputs: float,
    **fields: Any,
) -> dict[str, Any]:
    """The JSON record of one side: what ran, its one timed run and its peak RSS."""
    return {
        "case": case.key,
        "side": side,
        "rows": data.rows,
        "file": str(data.path),
        "file_mb": data.bytes / 1e6,
        "time_s": seconds,
        "runs": [seconds],
        "rows_per_s": data.rows / seconds,
        "rss_mb": rss,  # peak RSS at the end of the timed call
        "rss_inputs_mb": rss_inputs,  # before it: interpreter and imports
        **fields,
    }


def run(case: Case, side: str, sizes: Sizes, out: Path) -> dict[str, Any]:
    """One side of an ingest case in this (fresh) process."""
    data = generated(sizes, out)
    with fresh_database(case, side, out) as url:
        if side == OURS:
            return run_ours(case, data, url)
        return run_pandas(case, data, url)
