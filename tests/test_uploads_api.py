"""Statisticians' uploads through the HTTP API, on SQLite and on PostgreSQL.

Every file is built by code from the real Eurostat GDP table of the mirror; what is stored
must come back unchanged (downloads), refusals are RFC 9457 problem+json naming file, row,
column, value and rule, and analyses stay reproducible when newer versions arrive.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo.indicators import load_eurostat
from geo.nuts_versions import conversion
from geo.settings import Settings
from services.app import create_app
from tests.auth import headers

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def gdp(settings: Settings) -> pd.DataFrame:
    """Real GDP per head of the Austrian and Slovenian NUTS-3 regions, tidy."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    keep = (table["unit"] == "EUR_HAB") & (table["geo"].str.len() == 5)
    keep &= table["geo"].str[:2].isin(["AT", "SI"])
    out = table.loc[keep, ["geo", "time", "value", "flag", "unit"]].copy()
    out["time"] = out["time"].astype(int)
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out.sort_values(["time", "geo"]).reset_index(drop=True)


def app_client(settings: Settings, url: str, tmp_path: Path, **extra: object) -> TestClient:
    local = settings.model_copy(
        update={"database_url": url, "upload_dir": tmp_path / "uploads", **extra}
    )
    return TestClient(create_app(local), headers=headers(local))


@pytest.fixture
def client(settings: Settings, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with app_client(settings, database_url, tmp_path) as c:
        yield c


def csv_bytes(frame: pd.DataFrame, **kwargs: object) -> bytes:
    return frame.to_csv(index=False, **kwargs).encode(kwargs.pop("encoding", "utf-8"))  # type: ignore[arg-type]


def post(client: TestClient, content: bytes, name: str = "gdp.csv", **form: str) -> object:
    return client.post("/datasets", files={"file": (name, content)}, data=form)


def downloaded(client: TestClient, dataset: str, version: int) -> pd.DataFrame:
    answer = client.get(f"/datasets/{dataset}/versions/{version}/download")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    out = pd.read_csv(io.StringIO(answer.text), keep_default_na=False, na_values=[""])
    return out.sort_values(["time", "geo"]).reset_index(drop=True)


def assert_round_trip(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got["geo"]) == list(want["geo"])
    assert list(got["time"]) == list(want["time"])
    np.testing.assert_array_equal(got["value"].to_numpy(float), want["value"].to_numpy(float))
    flags = [f if isinstance(f, str) and f else None for f in got["flag"]]
    assert flags == [f if isinstance(f, str) and f else None for f in want["flag"]]


def test_upload_versions_and_downloads(client: TestClient, gdp: pd.DataFrame) -> None:
    """201 for new content, 200 for the same content in another order, versions listed
    with provenance, each version downloadable exactly as uploaded."""
    first = gdp[gdp["time"] <= 2015]
    answer = post(client, csv_bytes(first), name="GDP Alps.csv", uploader="anna")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["dataset"], body["version"], body["n_rows"], body["ok"]) == (
        "gdp_alps",
        1,
        len(first),
        True,
    )
    again = post(client, csv_bytes(first.sample(frac=1, random_state=1)), name="GDP Alps.csv")
    assert again.status_code == 200 and again.json()["version"] == 1
    assert again.json()["created"] is False
    newer = post(client, csv_bytes(gdp), name="GDP Alps.csv", uploader="ben")
    assert newer.status_code == 201 and newer.json()["version"] == 2
    versions = client.get("/datasets/gdp_alps/versions").json()
    assert [(v["version"], v["uploader"], v["n_rows"]) for v in versions] == [
        (1, "anna", len(first)),
        (2, "ben", len(gdp)),
    ]
    assert versions[0]["file_name"] == "GDP Alps.csv" and versions[0]["format"] == "tidy"
    assert versions[0]["indicators"][0]["code"] == "EUR_HAB"
    assert versions[0]["report"]["nuts"]["version"] == 2021
    assert_round_trip(downloaded(client, "gdp_alps", 1), first.reset_index(drop=True))
    assert_round_trip(downloaded(client, "gdp_alps", 2), gdp)
    parquet = client.get("/datasets/gdp_alps/versions/1/download?f=parquet")
    table = pd.read_parquet(io.BytesIO(parquet.content)).sort_values(["time", "geo"])
    assert_round_trip(table.reset_index(drop=True), first.reset_index(drop=True))
    dataset = client.get("/datasets/gdp_alps").json()
    assert (dataset["version"], dataset["versions"], dataset["owner"]) == (2, 2, "anna")


def test_refused_upload_is_problem_json_and_stores_nothing(
    client: TestClient, gdp: pd.DataFrame
) -> None:
    """Every problem is listed with file, row, column, value and rule; nothing is stored."""
    bad = gdp.astype({"value": object, "time": object}).copy()
    bad.loc[3, "value"] = "12,5x"
    bad.loc[7, "time"] = "20x9"
    bad.loc[9, "geo"] = bad.loc[9, "geo"][:-1] + "9"  # a code that does not exist
    answer = post(client, csv_bytes(bad), name="bad.csv")
    assert answer.status_code == 422 and answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert body["status"] == 422 and body["code"] == "invalid-table"
    found = {(e["row"], e["column"], e["value"], e["rule"]) for e in body["errors"]}
    assert (5, "value", "12,5x", "non-numeric") in found  # header is line 1: index 3 -> 5
    assert any(r == 9 and c == "time" and v == "20x9" for r, c, v, _ in found)
    assert any(r == 11 and c == "geo" and v == bad.loc[9, "geo"] for r, c, v, _ in found)
    assert all(e["file"] == "bad.csv" for e in body["errors"])
    assert client.get("/datasets").json() == []


def test_validate_is_a_dry_run(client: TestClient, gdp: pd.DataFrame) -> None:
    """POST /datasets/{id}/validate reports and stores nothing, good file or bad."""
    good = client.post(
        "/datasets/gdp_alps/validate", files={"file": ("gdp.csv", csv_bytes(gdp))}
    ).json()
    assert good["ok"] is True and good["report"]["summary"]["rows_kept"] == len(gdp)
    doubled = pd.concat([gdp, gdp.iloc[:2]])
    bad = client.post(
        "/datasets/gdp_alps/validate", files={"file": ("dup.csv", csv_bytes(doubled))}
    ).json()
    assert bad["ok"] is False
    assert {p["rule"] for p in bad["report"]["problems"]} == {"duplicate-key"}
    assert client.get("/datasets").json() == []


def test_skip_accepts_the_valid_rows_with_warnings(client: TestClient, gdp: pd.DataFrame) -> None:
    """on_problem=skip stores the valid rows; the problems come back as the report's list."""
    bad = gdp.astype({"value": object}).copy()
    bad.loc[4, "value"] = "n.a."
    answer = post(client, csv_bytes(bad), name="gdp.csv", on_problem="skip")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["n_rows"] == len(gdp) - 1 and body["ok"] is False
    assert [(p["row"], p["value"]) for p in body["report"]["problems"]] == [(6, "n.a.")]


def test_nuts_2016_codes_are_recoded_to_the_boundaries(
    client: TestClient, settings: Settings
) -> None:
    """A table written in NUTS 2016 codes (real 2021 data, recoded back by the official
    correspondence) is detected as 2016 and stored with the 2021 codes."""
    back = conversion(settings, 2021, 2016).renames
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    table = table[(table["unit"] == "EUR_HAB") & table["geo"].isin(back)]
    table = table[["geo", "time", "value", "flag"]].astype({"time": int})
    table["value"] = pd.to_numeric(table["value"], errors="coerce")
    assert len(table["geo"].unique()) >= 5, "the test needs real recoded regions"
    old = table.assign(geo=table["geo"].map(back))
    answer = post(client, csv_bytes(old), name="gdp2016.csv")
    assert answer.status_code == 201, answer.text
    nuts = answer.json()["report"]["nuts"]
    assert nuts["version"] == 2016
    assert set(nuts["recoded"]) == set(old["geo"])
    want = table.sort_values(["time", "geo"]).reset_index(drop=True)
    assert_round_trip(downloaded(client, "gdp2016", 1), want)


def test_background_upload_reports_progress_and_outcome(
    settings: Settings, gdp: pd.DataFrame, tmp_path: Path
) -> None:
    """Above the size limit POST answers 202 and GET /uploads/{id} reaches done (or failed
    with the problems)."""
    url = f"sqlite:///{tmp_path / 'bg.db'}"
    with app_client(settings, url, tmp_path, upload_background_bytes=0) as client:
        answer = post(client, csv_bytes(gdp), name="gdp.csv")
        assert answer.status_code == 202
        state = poll(client, answer.headers["location"])
        assert state["status"] == "done" and state["progress"] == 100.0
        assert state["result"]["version"] == 1 and state["result"]["n_rows"] == len(gdp)
        bad = gdp.astype({"value": object}).copy()
        bad.loc[0, "value"] = "inf"
        failed = poll(client, post(client, csv_bytes(bad)).headers["location"])
        assert failed["status"] == "failed"
        assert failed["error"]["errors"][0]["rule"] == "infinite-value"


def poll(client: TestClient, location: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(location).json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"upload {location} did not finish in {timeout} s")


def test_analyses_stay_reproducible_after_a_new_version(
    client: TestClient, gdp: pd.DataFrame
) -> None:
    """An analysis records its dataset version; a newer version neither changes it nor is
    used by it, and the default analysis then runs on the newer version."""
    assert post(client, csv_bytes(gdp), name="gdp.csv").status_code == 201
    params = {"dataset": "gdp", "area": "AT,SI", "permutations": 99, "seed": 7}
    params["years"] = [2019]
    answer = client.post("/analyses", json=params)
    assert answer.status_code == 201, answer.text
    first = answer.json()
    assert first["params"]["version"] == 1
    changed = gdp.assign(value=gdp["value"] * np.where(gdp["geo"].str.startswith("SI"), 3, 1))
    assert post(client, csv_bytes(changed), name="gdp.csv").json()["version"] == 2
    later = client.post("/analyses", json=params).json()
    assert later["params"]["version"] == 2 and later["id"] != first["id"]
    pinned = client.post("/analyses", json={**params, "version": 1}).json()
    assert pinned["id"] == first["id"]
    old = client.get(f"/analyses/{first['id']}/regions.geojson")
    newer = client.get(f"/analyses/{later['id']}/regions.geojson")
    assert old.status_code == 200 and old.json() != newer.json()
    assert client.get(f"/analyses/{first['id']}").json()["series"] == first["series"]


def test_files_of_killed_uploads_are_swept_at_start(tmp_path: Path) -> None:
    """A file received by a process that is gone is deleted; a live process's file stays."""
    import os
    import subprocess
    import sys

    from geo.upload_jobs import sweep_orphans

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead = tmp_path / f"{gone.stdout.strip()}-abc.csv"
    live = tmp_path / f"{os.getpid()}-def.csv"
    for path in (dead, live):
        path.write_text("geo,time,value\n")
    assert sweep_orphans(tmp_path) == [dead]
    assert not dead.exists() and live.exists()
