"""Hostile input and abuse meet limits, not the service: request and upload size, columns,
cell length, unpacked size (zip and gzip bombs, nested archives), parsing time and memory
(a child process with its own limits), the per-account rate limit, CORS and the security
headers.

Every upload file is written here from the real Eurostat GDP table of the data mirror (the
bombs pad a real table with generated filler). Each refusal is checked as a statistician
sees it: an RFC 9457 problem naming the file as uploaded, the rule and the limit, and the
store unchanged afterwards; then the same service still accepts the honest file.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo.errors import IngestError, TooLargeError
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadRequest, upload
from tests.auth import headers

LIMITS = {
    "max_upload_bytes": 4 << 20,
    "max_request_bytes": 64 << 10,
    "max_upload_columns": 50,
    "max_cell_chars": 200,
    "max_unpacked_bytes": 16 << 20,
    "upload_background_bytes": 64 << 20,  # every upload here answers in the request
}


@pytest.fixture(scope="module")
def service(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Store, Settings]]:
    """The service on its own store, with small limits."""
    from services.app import create_app

    tmp = tmp_path_factory.mktemp("guards")
    local = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp / 'store.db'}",
            "upload_dir": tmp / "uploads",
            **LIMITS,
        }
    )
    store = Store(local.database_url)
    with TestClient(create_app(local), headers=headers(local)) as client:
        yield client, store, local


@pytest.fixture(scope="module")
def gdp(demo_store: Store) -> pd.DataFrame:
    """Real GDP per head of the Austrian NUTS-3 regions, 2010-2019 (tidy)."""
    obs = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], list(range(2010, 2020)))
    return obs[obs["geo"].str.startswith("AT")][["geo", "time", "value"]].reset_index(drop=True)


def post(client: TestClient, name: str, content: bytes, dataset: str = "guarded") -> Any:
    return client.post(
        "/datasets",
        files={"file": (name, content, "application/octet-stream")},
        data={"name": dataset, "indicator": "EUR_HAB"},
    )


def assert_refused(resp: Any, status: int, rule: str, name: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert [e["rule"] for e in body["errors"]] == [rule], body
    assert body["errors"][0]["file"] == name, body  # as uploaded, never the path on disk
    assert name in body["detail"] and "uploads/" not in body["detail"]
    return body


def xlsx(frame: pd.DataFrame, extra: dict[str, bytes] | None = None) -> bytes:
    """A real workbook of ``frame`` (openpyxl), with ``extra`` members added to its ZIP."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append(list(row))
    raw = io.BytesIO()
    wb.save(raw)
    if not extra:
        return raw.getvalue()
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        for name, data in extra.items():
            dst.writestr(name, data)
    return out.getvalue()


def test_the_honest_files_pass(service: Any, gdp: pd.DataFrame) -> None:
    client, _, _ = service
    assert post(client, "gdp.csv", gdp.to_csv(index=False).encode()).status_code == 201
    assert post(client, "gdp.xlsx", xlsx(gdp), "guarded_xlsx").status_code == 201


def test_request_bodies_over_the_limit(service: Any, gdp: pd.DataFrame) -> None:
    client, _, settings = service
    big = {"dataset": "nama_10r_3gdp", "padding": "x" * settings.max_request_bytes}
    resp = client.post("/analyses", json=big)
    assert resp.status_code == 413
    assert resp.json()["code"] == "request-too-large"

    # a chunked body (no Content-Length) is cut off once it passes the limit
    def chunks() -> Iterator[bytes]:
        for _ in range(settings.max_request_bytes // 1024 + 2):
            yield b"x" * 1024

    resp = client.post("/analyses", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413

    # a file over max_upload_bytes
    rows = settings.max_upload_bytes // len(gdp.to_csv(index=False)) + 10
    content = pd.concat([gdp] * rows).to_csv(index=False).encode()
    resp = post(client, "huge.csv", content)
    assert resp.status_code == 413, resp.text


def test_too_many_columns(service: Any, gdp: pd.DataFrame) -> None:
    client, _, settings = service
    wide = gdp.pivot(index="geo", columns="time", values="value")
    wide = pd.concat([wide.add_prefix(f"v{k}_") for k in range(6)], axis=1)  # 60 columns
    assert len(wide.columns) > settings.max_upload_columns
    resp = post(client, "wide.csv", wide.reset_index().to_csv(index=False).encode())
    body = assert_refused(resp, 413, "too-many-columns", "wide.csv")
    assert int(body["errors"][0]["value"]) == len(wide.columns) + 1


def test_a_cell_too_long(service: Any, gdp: pd.DataFrame) -> None:
    client, store, settings = service
    before = store.versions("guarded")
    table = gdp.astype({"value": object})
    table.loc[17, "value"] = "9" * (settings.max_cell_chars + 1)
    resp = post(client, "long.csv", table.to_csv(index=False).encode())
    body = assert_refused(resp, 413, "cell-too-long", "long.csv")
    assert (body["errors"][0]["row"], body["errors"][0]["column"]) == (17 + 2, "value")
    assert store.versions("guarded") == before


def test_zip_bomb_workbook(service: Any, gdp: pd.DataFrame) -> None:
    """A real workbook carrying a member that unpacks to 1,000 times its packed size."""
    client, _, settings = service
    filler = b"<x/>" * (settings.max_unpacked_bytes // 4 + 1)
    content = xlsx(gdp, {"xl/media/filler.xml": filler})
    assert len(content) < settings.max_upload_bytes // 10
    body = assert_refused(
        post(client, "bomb.xlsx", content), 413, "unpacked-too-large", "bomb.xlsx"
    )
    assert int(body["errors"][0]["value"]) > settings.max_unpacked_bytes


def test_nested_archives(service: Any, gdp: pd.DataFrame) -> None:
    client, _, _ = service
    inner = xlsx(gdp)
    nested = xlsx(gdp, {"xl/embeddings/inner.xlsx": inner})
    assert_refused(post(client, "nested.xlsx", nested), 422, "nested-archive", "nested.xlsx")
    # a plain ZIP holding a workbook, posing as one
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("gdp.xlsx", inner)
    assert_refused(
        post(client, "posing.xlsx", out.getvalue()), 422, "unsupported-format", "posing.xlsx"
    )


def test_gzip_bomb(service: Any, gdp: pd.DataFrame) -> None:
    client, _, settings = service
    text = gdp.to_csv(index=False).encode() + b"\n" * (settings.max_unpacked_bytes + 1)
    content = gzip.compress(text, 9)
    assert len(content) < settings.max_upload_bytes
    assert_refused(post(client, "bomb.csv.gz", content), 413, "unpacked-too-large", "bomb.csv.gz")


def write(path: Path, frame: pd.DataFrame, copies: int) -> Path:
    """``copies`` indicators of the real table, each its own rows (a genuinely large file)."""
    parts = [frame.assign(indicator=f"EUR_HAB_{k}") for k in range(copies)]
    pd.concat(parts)[["indicator", "geo", "time", "value"]].to_csv(path, index=False)
    return path


def test_reading_runs_in_a_child_with_a_memory_budget(
    settings: Settings, demo_store: Store, tmp_path: Path
) -> None:
    """The same large real table (2 million rows): refused with a 16 MiB reading budget,
    stored with the default one."""
    gdp = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], list(range(2000, 2022)))
    path = write(tmp_path / "large.csv", gdp[["geo", "time", "value"]], 60)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    request = UploadRequest("large", file_name="large.csv")
    tight = settings.model_copy(update={"parse_memory_bytes": 16 << 20})
    with pytest.raises(
        TooLargeError, match=r"large\.csv: reading the file needed more than 16 MiB"
    ):
        upload(tight, store, path, request)
    assert store.datasets() == []
    outcome = upload(settings, store, path, request)
    assert outcome.created and outcome.dataset is not None
    assert outcome.dataset.n_rows == len(gdp) * 60


def test_reading_has_a_deadline(settings: Settings, demo_store: Store, tmp_path: Path) -> None:
    gdp = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], list(range(2000, 2022)))
    path = write(tmp_path / "slow.csv", gdp[["geo", "time", "value"]], 12)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    hurried = settings.model_copy(update={"parse_timeout_s": 0.01})
    with pytest.raises(TooLargeError, match="took longer than 0.01 s") as caught:
        upload(hurried, store, path, UploadRequest("slow", file_name="slow.csv"))
    assert caught.value.problems[0]["rule"] == "parse-timeout"
    assert store.datasets() == []


def test_a_reader_that_dies_fails_alone(
    settings: Settings, demo_store: Store, tmp_path: Path
) -> None:
    """A reader killed from outside (as the kernel's OOM killer would) is a refused file,
    and the next upload in the same process works."""
    import os
    import signal

    from geo.sandbox import isolated

    def die(progress: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(IngestError, match="its reader died"):
        isolated(die, name="doomed.csv", timeout_s=30, memory_bytes=1 << 30)
    gdp = demo_store.observations("nama_10r_3gdp", ["EUR_HAB"], [2018])
    path = tmp_path / "after.csv"
    gdp[["geo", "time", "value"]].to_csv(path, index=False)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert upload(settings, store, path, UploadRequest("after", file_name="after.csv")).created


def test_rate_limit_per_account(settings: Settings, demo_store: Store) -> None:
    from services.app import create_app

    local = settings.model_copy(update={"rate_limit_per_minute": 5})
    with TestClient(create_app(local)) as client:
        _, other = demo_store.accounts.add("rate-viewer", "viewer")
        admin = headers(local)
        answers = [client.get("/datasets", headers=admin).status_code for _ in range(6)]
        assert answers == [200] * 5 + [429]
        resp = client.get("/datasets", headers=admin)
        assert resp.headers["content-type"].startswith("application/problem+json")
        assert 1 <= int(resp.headers["retry-after"]) <= 60
        assert resp.json()["code"] == "rate-limited"
        # another account, and anonymous visitors (by address), have their own budgets
        assert client.get("/datasets", headers={"X-API-Key": other}).status_code == 200
        assert client.get("/datasets").status_code == 200
        assert client.get("/health").status_code == 200  # never limited
        # a map's vector tiles are not counted: one view of Europe fetches about a hundred
        tile = "/ogc/collections/nuts-2021-level-3/tiles/WebMercatorQuad/4/5/8"
        assert {client.get(tile, headers=admin).status_code for _ in range(20)} == {200}


def test_security_headers(client: TestClient) -> None:
    api = client.get("/datasets")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert api.headers["x-frame-options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in api.headers["content-security-policy"]
    page = client.get("/", headers={"accept": "text/html"})
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "object-src 'none'" in policy
    body = {"dataset": "nama_10r_3gdp", "years": [2018], "permutations": 99, "seed": 7}
    analysis = client.post("/analyses", json=body).json()["id"]
    embed = client.get(f"/maps/analyses/{analysis}?embed=1")
    assert embed.status_code == 200
    assert "frame-ancestors *" in embed.headers["content-security-policy"]
    assert "x-frame-options" not in embed.headers


def test_cors_is_off_by_default_and_configurable(settings: Settings, demo_store: Store) -> None:
    from services.app import create_app

    preflight = {
        "origin": "https://atlas.example.eu",
        "access-control-request-method": "GET",
        "access-control-request-headers": "authorization",
    }
    with TestClient(create_app(settings)) as client:
        resp = client.get("/datasets", headers={"origin": "https://atlas.example.eu"})
        assert "access-control-allow-origin" not in resp.headers
    local = settings.model_copy(update={"cors_origins": ["https://atlas.example.eu"]})
    with TestClient(create_app(local)) as client:
        resp = client.options("/datasets", headers=preflight)
        assert resp.status_code == 200
        assert resp.headers["access-control-allow-origin"] == "https://atlas.example.eu"
        other = client.options("/datasets", headers={**preflight, "origin": "https://evil.test"})
        assert "access-control-allow-origin" not in other.headers
