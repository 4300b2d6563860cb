"""The versioned store on SQLite and on a throwaway PostgreSQL/PostGIS (``database_url``).

References: the real Eurostat GDP table as read from the mirror (what goes in must come
back), Alembic's own comparison of the migrated database with the table definitions, and
a foundation-era store built by the foundation's migration.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from geo.errors import UnknownDatasetError
from geo.indicators import load_eurostat
from geo.schema import metadata
from geo.settings import Settings
from geo.store import Store, make_engine

MIGRATIONS = Path(__file__).resolve().parents[1] / "geo" / "migrations"


@pytest.fixture(scope="module")
def gdp(settings: Settings) -> pd.DataFrame:
    """Real GDP per head (EUR_HAB) of the NUTS-3 regions of AT, SI and CH, as stored."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    table = table[(table["unit"] == "EUR_HAB") & (table["geo"].str.len() == 5)]
    table = table[table["geo"].str[:2].isin(["AT", "SI", "CH"])]
    out = pd.DataFrame(
        {
            "indicator": "EUR_HAB",
            "geo": table["geo"].to_numpy(),
            "time": table["time"].astype(int).to_numpy(),
            "value": pd.to_numeric(table["value"], errors="coerce").to_numpy(),
            "flag": table["flag"].replace("", None).to_numpy() if "flag" in table else None,
        }
    )
    return out.sort_values(["indicator", "time", "geo"]).reset_index(drop=True)


def content_hash(table: pd.DataFrame) -> str:
    """A stand-in content hash (the store only needs it equal for equal content)."""
    ordered = table.sort_values(["indicator", "geo", "time"]).reset_index(drop=True)
    return hashlib.sha256(ordered.to_csv(index=False).encode()).hexdigest()


def meta(dataset_id: str = "gdp") -> dict[str, str]:
    return {"id": dataset_id, "title": "GDP per head", "source": "Eurostat nama_10r_3gdp"}


def version(table: pd.DataFrame, **extra: object) -> dict[str, object]:
    return {"content_hash": content_hash(table), "nuts_year": 2021, **extra}


LABELS = {"EUR_HAB": ("GDP per inhabitant", "EUR_HAB")}


def stored(store: Store, dataset_id: str, version_: int | None = None) -> pd.DataFrame:
    out = store.observations(dataset_id, version=version_)
    return out.sort_values(["indicator", "time", "geo"]).reset_index(drop=True)


def assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Same observations: codes, years, values (NaN = missing) and flags."""
    assert list(got["geo"]) == list(want["geo"])
    assert list(got["time"]) == list(want["time"])
    np.testing.assert_array_equal(got["value"].to_numpy(), want["value"].to_numpy())
    assert [f or None for f in got["flag"]] == [f or None for f in want["flag"]]


def test_migrated_schema_matches_the_table_definitions(database_url: str) -> None:
    """Alembic's autogenerate comparison finds nothing to change after the migrations."""
    store = Store(database_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = {t.name for t in metadata.sorted_tables}
    relevant = [d for d in diff if _table_of(d) in ours]
    assert relevant == []


def _table_of(diff: object) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:] if isinstance(item, tuple) else ():
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if name is not None:
            return str(name)
        if isinstance(part, str):
            return part
    return None


def test_versions_round_trip_and_stay_immutable(database_url: str, gdp: pd.DataFrame) -> None:
    """Each upload is a new version; old versions keep their exact observations."""
    store = Store(database_url)
    first = gdp[gdp["time"] <= 2015]
    info1, new1 = store.put_version(meta(), version(first, uploader="anna"), LABELS, first)
    info2, new2 = store.put_version(meta(), version(gdp, uploader="ben"), LABELS, gdp)
    assert (info1.version, new1, info2.version, new2) == (1, True, 2, True)
    assert_same(stored(store, "gdp", 1), first.reset_index(drop=True))
    assert_same(stored(store, "gdp"), gdp)
    versions = store.versions("gdp")
    assert [v.version for v in versions] == [1, 2]
    assert [v.uploader for v in versions] == ["anna", "ben"]
    assert [v.n_rows for v in versions] == [len(first), len(gdp)]
    assert versions[1].indicators[0].years == sorted(gdp.dropna(subset=["value"])["time"].unique())
    assert store.dataset("gdp").versions == 2 and store.dataset("gdp", 1).n_rows == len(first)
    with pytest.raises(UnknownDatasetError, match=r"versions: \[1, 2\]"):
        store.dataset("gdp", 3)


def test_identical_content_is_stored_once(database_url: str, gdp: pd.DataFrame) -> None:
    """Re-uploading the same content (in any row order) returns the existing version."""
    store = Store(database_url)
    store.put_version(meta(), version(gdp), LABELS, gdp)
    shuffled = gdp.sample(frac=1.0, random_state=3)
    info, created = store.put_version(meta(), version(shuffled), LABELS, shuffled)
    assert (info.version, created, store.dataset("gdp").versions) == (1, False, 1)
    with store.engine.connect() as conn:
        n_slices = conn.execute(sa.text("SELECT count(*) FROM slices")).scalar()
    assert n_slices == gdp.groupby(["indicator", "time"]).ngroups


def test_concurrent_uploads_give_two_consistent_versions(
    database_url: str, gdp: pd.DataFrame
) -> None:
    """Two uploads to one dataset at the same time: versions 1 and 2, each complete."""
    tables = {"early": gdp[gdp["time"] < 2012], "late": gdp[gdp["time"] >= 2012]}
    Store(database_url)  # migrated once, before the race
    barrier = threading.Barrier(2, timeout=120)  # a thread that failed must not hang the other
    errors: list[BaseException] = []

    def upload(name: str) -> None:
        try:
            store = Store(database_url)
            barrier.wait()
            table = tables[name]
            store.put_version(meta(), version(table, uploader=name), LABELS, table)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=upload, args=(n,)) for n in tables]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = Store(database_url)
    versions = store.versions("gdp")
    assert sorted(v.version for v in versions) == [1, 2]
    for v in versions:
        want = tables[v.uploader].sort_values(["indicator", "time", "geo"])
        assert_same(stored(store, "gdp", v.version), want.reset_index(drop=True))
        assert v.content_hash == content_hash(tables[v.uploader])


def test_foundation_store_is_migrated_without_loss(database_url: str, gdp: pd.DataFrame) -> None:
    """A store written by the foundation (revision 0001, no Alembic table at all) upgrades
    to versioned datasets: its data become version 1, its analyses point at it."""
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(sa.text("DROP TABLE alembic_version"))  # as create_all left it
        now = pd.Timestamp.now(tz="UTC").to_pydatetime()
        conn.execute(
            sa.text(
                "INSERT INTO datasets VALUES ('gdp', 'GDP', '', 'Eurostat', 'CC BY 4.0', 2021, "
                ":hash, :n, :now)"
            ),
            {"hash": content_hash(gdp), "n": len(gdp), "now": now},
        )
        conn.execute(
            sa.text("INSERT INTO indicators VALUES ('gdp', 'EUR_HAB', 'GDP per head', 'EUR', 0)")
        )
        rows = gdp.assign(dataset_id="gdp").astype(object)
        rows = rows.where(rows.notna(), None)
        conn.execute(
            sa.text(
                "INSERT INTO observations (dataset_id, indicator, geo, time, value, flag) "
                "VALUES (:dataset_id, :indicator, :geo, :time, :value, :flag)"
            ),
            rows.to_dict("records"),
        )
        conn.execute(
            sa.text(
                "INSERT INTO analyses (id, dataset_id, params, status, created_at, progress) "
                "VALUES ('a1', 'gdp', '{}', 'done', :now, 100)"
            ),
            {"now": now},
        )
    engine.dispose()
    store = Store(database_url)
    info = store.dataset("gdp")
    assert (info.version, info.versions, info.n_rows) == (1, 1, len(gdp))
    assert info.content_hash == content_hash(gdp) and info.licence == "CC BY 4.0"
    assert_same(stored(store, "gdp"), gdp)
    assert store.analysis("a1", with_tables=False).dataset_version == 1
    info2, created = store.put_version(meta(), version(gdp.iloc[:10]), LABELS, gdp.iloc[:10])
    assert (info2.version, created) == (2, True)


def test_stores_opened_at_once_all_migrate(database_url: str) -> None:
    """Several threads opening one store at the same time (service workers' threads, the
    upload and analysis runners) all succeed: migrations run one at a time."""
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(database_url)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [] and not any(t.is_alive() for t in threads)
