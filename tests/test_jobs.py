"""Analyses in the background: 202, progress, results when done, restarts, caching."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient

from geo.settings import Settings
from geo.store import RUNNING, AnalysisRecord, Store
from services.app import create_app
from services.schemas import Analysis
from tests.auth import headers


@pytest.fixture(scope="module")
def background(settings: Settings, demo_store: Store):
    """The service with a tiny background threshold: every analysis runs in the background."""
    app = create_app(settings.model_copy(update={"background_work": 1.0}))
    with TestClient(app, headers=headers(settings)) as client:
        yield client


def wait_done(client: TestClient, aid: str, timeout: float = 120) -> list[Analysis]:
    """Poll GET /analyses/{id} until it is done or failed; return every answer seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(Analysis.model_validate(client.get(f"/analyses/{aid}").json()))
        if seen[-1].status in ("done", "failed"):
            return seen
        time.sleep(0.2)
    pytest.fail(f"analysis {aid} still {seen[-1].status} after {timeout} s")


def test_long_analysis_answers_202_then_done(background: TestClient, demo_store: Store):
    """A backgrounded analysis answers 202 with a Location, reports progress, then results."""
    body = {"dataset": "nama_10r_3gdp", "years": "all", "permutations": 4999, "seed": 3}
    resp = background.post("/analyses", json=body)
    assert resp.status_code == 202, resp.text
    first = Analysis.model_validate(resp.json())
    assert first.status in ("queued", "running")
    assert resp.headers["location"].endswith(f"/analyses/{first.id}")
    if first.status != "done":
        early = background.get(f"/analyses/{first.id}/regions.geojson")
        if early.status_code != 200:  # it may already have finished
            assert early.status_code == 409
            assert early.headers["content-type"].startswith("application/problem+json")
    seen = wait_done(background, first.id)
    final = seen[-1]
    assert final.status == "done" and final.progress == 100.0
    assert [s.progress for s in seen] == sorted(s.progress for s in seen)
    years = demo_store.dataset("nama_10r_3gdp").indicators[0].years
    assert final.params.years == years
    assert len(final.series) == len(years)
    assert background.get(f"/analyses/{first.id}/regions.geojson").status_code == 200


def test_identical_request_is_served_from_the_store(background: TestClient):
    """The same parameters on the same data give the same id and the stored result."""
    body = {"dataset": "population_density", "years": [2015, 2016], "permutations": 99}
    first = background.post("/analyses", json=body).json()
    done = wait_done(background, first["id"])[-1]
    again = background.post("/analyses", json=body)
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert Analysis.model_validate(again.json()).created_at == done.created_at


def test_all_indicators_and_years(client: TestClient, demo_store: Store):
    """'all' expands to every indicator and every year with data."""
    body = {
        "dataset": "demo_r_pjanaggr3",
        "indicators": "all",
        "years": "all",
        "permutations": 9,
        "area": "slovenia",
    }
    resp = client.post("/analyses", json=body)
    assert resp.status_code in (201, 202), resp.text
    out = wait_done(client, resp.json()["id"])[-1]
    info = demo_store.dataset("demo_r_pjanaggr3")
    assert out.params.indicators == [i.code for i in info.indicators]
    assert out.params.years == info.indicators[0].years


def test_restart_marks_interrupted_analyses_failed(settings: Settings, demo_store: Store):
    """An analysis left running by a killed service is failed, with a reason, on restart."""
    record = AnalysisRecord(
        id="interrupted0001",
        dataset_id="nama_10r_3gdp",
        params={"dataset": "nama_10r_3gdp", "indicators": ["EUR_HAB"], "years": [2018]},
        status=RUNNING,
        error=None,
        summary=None,
        duration_s=None,
        created_at=dt.datetime.now(dt.UTC),
        progress=40.0,
    )
    demo_store.put_analysis(record)
    with TestClient(create_app(settings)) as client:
        out = client.get("/analyses/interrupted0001").json()
        assert out["status"] == "failed"
        assert "restart" in out["error"]
        resp = client.get("/analyses/interrupted0001/regions.geojson")
        assert resp.status_code == 409 and "restart" in resp.json()["detail"]
