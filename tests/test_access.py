"""Who may do what over HTTP: role × endpoint × NUTS scope answers 200/201/303, 401 or 403
exactly as specified, and every write lands in the audit log with its content hash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo.settings import Settings
from geo.store import Store
from tests.auth import headers

ROLES = ("anonymous", "viewer", "statistician", "analyst", "admin", "bad-key", "revoked")
SCOPE = "ITH2"  # the statistician's: the Autonomous Province of Trento


@pytest.fixture(scope="module")
def service(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Store, dict[str, dict[str, str]]]]:
    """The service on a store of this module, with one account per role."""
    from services.app import create_app

    tmp = tmp_path_factory.mktemp("access")
    local = settings.model_copy(
        update={"database_url": f"sqlite:///{tmp / 'store.db'}", "upload_dir": tmp / "uploads"}
    )
    store = Store(local.database_url)
    from geo.indicators import load_demo

    load_demo(local, store)
    keys: dict[str, dict[str, str]] = {"anonymous": {}, "admin": headers(local)}
    for role in ("viewer", "statistician", "analyst"):
        _, key = store.accounts.add(role, role, [SCOPE] if role == "statistician" else [])
        keys[role] = {"Authorization": f"Bearer {key}"}
    _, revoked = store.accounts.add("gone", "admin")
    store.accounts.revoke("gone")
    keys["revoked"] = {"X-API-Key": revoked}
    keys["bad-key"] = {"Authorization": "Bearer alp_0123456789abcdef_" + "x" * 43}
    with TestClient(create_app(local)) as client:
        yield client, store, keys


def table(store: Store, tmp: Path, prefixes: tuple[str, ...], name: str) -> Path:
    """A tidy CSV of real GDP per head of the regions under ``prefixes``."""
    obs = store.observations("nama_10r_3gdp", ["EUR_HAB"], [2018])
    obs = obs[obs["geo"].str.startswith(prefixes)]
    path = tmp / f"{name}.csv"
    obs[["geo", "time", "value"]].to_csv(path, index=False)
    return path


def upload(client: TestClient, path: Path, who: dict[str, str], url: str = "/datasets") -> Any:
    with path.open("rb") as fh:
        return client.post(
            url,
            files={"file": (path.name, fh, "text/csv")},
            data={"name": "gdp_trento", "indicator": "EUR_HAB"},
            headers=who,
        )


READ = {role: 200 for role in ROLES} | {"bad-key": 401, "revoked": 401}
ANALYSE = {
    "anonymous": 401,
    "viewer": 403,
    "statistician": 403,
    "analyst": 201,
    "admin": 201,
    "bad-key": 401,
    "revoked": 401,
}
UPLOAD_IN_SCOPE = ANALYSE | {"statistician": 201, "analyst": 403}
UPLOAD_OUT_OF_SCOPE = UPLOAD_IN_SCOPE | {"statistician": 403}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(
    "path", ["/datasets", "/analyses", "/regions?level=2", "/ogc/collections", "/"]
)
def test_reads(service: Any, role: str, path: str) -> None:
    client, _, keys = service
    assert client.get(path, headers=keys[role]).status_code == READ[role]


@pytest.mark.parametrize("role", ROLES)
def test_running_an_analysis(service: Any, role: str) -> None:
    client, _, keys = service
    body = {"dataset": "nama_10r_3gdp", "years": [2018], "permutations": 99, "seed": 7}
    resp = client.post("/analyses", json=body, headers=keys[role])
    assert resp.status_code in ((200, 201) if ANALYSE[role] == 201 else (ANALYSE[role],))
    if resp.status_code == 401:
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("scope", ["in-scope", "out-of-scope"])
@pytest.mark.parametrize("url", ["/datasets", "/datasets/gdp_trento/validate"])
def test_uploads(service: Any, role: str, scope: str, url: str, tmp_path: Path) -> None:
    client, store, keys = service
    prefixes = (SCOPE,) if scope == "in-scope" else (SCOPE, "ITH1", "AT3")
    path = table(store, tmp_path, prefixes, scope)
    resp = upload(client, path, keys[role], url)
    expected = (UPLOAD_IN_SCOPE if scope == "in-scope" else UPLOAD_OUT_OF_SCOPE)[role]
    if expected == 201:
        assert resp.status_code in ((200, 201) if url == "/datasets" else (200,)), resp.text
    else:
        assert resp.status_code == expected, resp.text
    if role == "statistician" and scope == "out-of-scope":
        outside = sorted(
            set(pd.read_csv(path)["geo"])
            - {c for c in pd.read_csv(path)["geo"] if c.startswith(SCOPE)}
        )
        assert resp.json()["regions"] == outside
        assert all(code in resp.json()["detail"] for code in outside[:20])


@pytest.mark.parametrize(
    ("role", "status"), [("anonymous", 401), ("viewer", 403), ("analyst", 303)]
)
def test_the_start_page_form(service: Any, role: str, status: int) -> None:
    client, _, keys = service
    form = {
        "dataset": "nama_10r_3gdp",
        "indicator": "EUR_HAB",
        "years": "2018",
        "permutations": "99",
    }
    resp = client.post("/maps/analyses", data=form, headers=keys[role], follow_redirects=False)
    assert resp.status_code == status
    if status != 303:
        assert 'role="alert"' in resp.text and 'id="f-key"' in resp.text


def test_a_typed_key_is_remembered_in_an_httponly_cookie(service: Any) -> None:
    client, store, keys = service
    key = store.accounts.issue_key("analyst")
    form = {
        "dataset": "nama_10r_3gdp",
        "indicator": "EUR_HAB",
        "years": "2017",
        "key": key,
        "permutations": "99",
    }
    resp = client.post("/maps/analyses", data=form, follow_redirects=False)
    assert resp.status_code == 303
    cookie = resp.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    client.cookies.clear()


def test_reads_can_need_a_key(settings: Settings, demo_store: Store) -> None:
    from services.app import create_app

    closed = settings.model_copy(update={"anonymous_read": False})
    with TestClient(create_app(closed)) as client:
        assert client.get("/datasets").status_code == 401
        assert client.get("/health").status_code == 200
        assert client.get("/datasets", headers=headers(closed)).status_code == 200


def test_writes_are_in_the_audit_log(service: Any, tmp_path: Path) -> None:
    client, store, keys = service
    path = table(store, tmp_path, (SCOPE,), "audited")
    pd.read_csv(path).assign(value=lambda t: t["value"] + 1).to_csv(path, index=False)
    resp = upload(client, path, keys["statistician"])
    assert resp.status_code == 201, resp.text
    stored = resp.json()
    line = next(r for r in store.accounts.audit() if r["action"] == "upload")
    assert line["actor"] == "statistician"
    assert line["target"] == f"dataset {stored['dataset']} version {stored['version']}"
    assert line["content_hash"] == store.version(stored["dataset"], stored["version"]).content_hash
    analyses = [r for r in store.accounts.audit(1000) if r["action"] == "analyse"]
    assert {r["actor"] for r in analyses} >= {"analyst"}
