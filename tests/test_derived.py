"""Derived datasets over HTTP: location quotients, shares, shift-share and ratios of stored
datasets, stored with their lineage.

References: the Eurostat employment tables read straight from the mirror and recomputed
here in plain pandas (groupby sums, no call into :mod:`geo.specialisation`), the GDP and
population tables of the demo store multiplied back together, and the store's own record
of each input's version and content hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.indicators import LQ_MANUFACTURING, load_eurostat
from geo.settings import Settings
from geo.store import Store
from tests.auth import headers


@pytest.fixture(scope="module")
def service(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, Store, Settings]]:
    """The service on the demo store, as an analyst."""
    from services.app import create_app

    with TestClient(create_app(settings)) as client:
        _, key = demo_store.accounts.add("derive-analyst", "analyst")
        client.headers["Authorization"] = f"Bearer {key}"
        yield client, demo_store, settings


@pytest.fixture(scope="module")
def employment(settings: Settings) -> pd.DataFrame:
    """Both employment tables as published (thousand persons, NUTS 2024 codes)."""
    years = [load_eurostat(settings, f"nama_10r_3empers_{y}")[0] for y in (2013, 2018)]
    table = pd.concat(years, ignore_index=True)
    return table[table["unit"] == "THS"][["nace_r2", "geo", "time", "value"]].astype(
        {"time": int, "value": float}
    )


def alpine_nuts3(settings: Settings) -> list[str]:
    return resolve(settings, load_boundaries(settings), "alpine-space", 3)


def stored(store: Store, dataset: str, indicator: str) -> pd.Series:
    obs = store.observations(dataset, [indicator])
    return obs.set_index(["geo", "time"])["value"]


def post(client: TestClient, body: dict[str, Any], expected: int = 201) -> dict[str, Any]:
    resp = client.post("/datasets/derived", json=body)
    assert resp.status_code == expected, resp.text
    answer: dict[str, Any] = resp.json()
    return answer


def test_manufacturing_lq_against_pandas(
    service: Any, settings: Settings, employment: pd.DataFrame
) -> None:  # the mirror's 2024 codes are the 2021 ones in the Alps
    """The demo's LQ of C (NUTS 3, Alpine Space, 2018, the area as reference) equals
    (E_rC / E_r) / (sum E_C / sum E) over the same regions, from the mirror's table."""
    _, store, _ = service
    lq = stored(store, LQ_MANUFACTURING, "LQ_C").xs(2018, level="time")
    raw = employment[employment["time"] == 2018].pivot_table(
        index="geo", columns="nace_r2", values="value", aggfunc="first"
    )
    regions = [r for r in alpine_nuts3(settings) if r in raw.index]
    assert sorted(lq.index) == sorted(regions)  # every Alpine NUTS-3 region with data
    sub = raw.loc[regions]
    expected = (sub["C"] / sub["TOTAL"]) / (sub["C"].sum() / sub["TOTAL"].sum())
    np.testing.assert_allclose(lq.loc[regions], expected, rtol=1e-12)


def test_lineage_names_the_inputs(service: Any) -> None:
    client, store, _ = service
    versions = client.get(f"/datasets/{LQ_MANUFACTURING}/versions").json()
    lineage = versions[-1]["report"]["lineage"]
    assert versions[-1]["format"] == "derived"
    source = store.dataset("nama_10r_3empers")
    assert lineage["operation"] == "lq"
    assert lineage["inputs"] == [
        {"dataset": source.id, "version": source.version, "content_hash": source.content_hash}
    ]
    assert lineage["parameters"]["sectors"] == ["C"]
    assert lineage["parameters"]["area"] == "alpine-space"


def test_share_and_eu_reference(service: Any) -> None:
    """LQ of B-E at NUTS 3 against the EU-27's regions: E_s and E are the sums over the
    stored NUTS-3 regions of the 27 member states (each sum over the regions that have
    it), recomputed here with pandas."""
    client, store, _ = service
    body = {
        "name": "lq_industry_eu",
        "kind": "lq",
        "source": {"dataset": "nama_10r_3empers"},
        "sectors": ["B-E"],
        "level": 3,
        "years": [2018],
        "reference": "eu",
    }
    answer = post(client, body)
    assert answer["created"] and answer["dataset"] == "lq_industry_eu"
    lq = stored(store, "lq_industry_eu", "LQ_B-E").xs(2018, level="time")
    emp = store.observations("nama_10r_3empers", ["B-E", "TOTAL"], [2018])
    wide = emp.pivot_table(index="geo", columns="indicator", values="value", aggfunc="first")
    from geo.derived import EU27

    eu = wide[wide.index.str[:2].isin(EU27)]
    share_eu = eu["B-E"].sum() / eu["TOTAL"].sum()
    expected = (wide["B-E"] / wide["TOTAL"] / share_eu).dropna()
    assert len(expected) > 1000
    assert set(lq.dropna().index) == set(expected.index)
    np.testing.assert_allclose(lq.loc[expected.index], expected, rtol=1e-12)

    share = post(
        client,
        {
            "name": "manufacturing_share",
            "kind": "share",
            "source": {"dataset": "nama_10r_3empers", "indicator": "C"},
            "denominator": {"dataset": "nama_10r_3empers", "indicator": "TOTAL"},
        },
    )
    got = stored(store, share["dataset"], "C_SHARE")
    c = stored(store, "nama_10r_3empers", "C")
    total = stored(store, "nama_10r_3empers", "TOTAL")
    np.testing.assert_allclose(got, (c / total).dropna().loc[got.index], rtol=1e-12)


def test_shift_share_adds_up(service: Any) -> None:
    """NS + IM + RS is the change 2013 -> 2018 of every Italian NUTS-3 region's sector,
    with the national reference; NS is E_2013 x the national growth, recomputed here."""
    client, store, _ = service
    answer = post(
        client,
        {
            "name": "shift_share_it",
            "kind": "shift_share",
            "source": {"dataset": "nama_10r_3empers"},
            "sectors": ["C", "F", "J"],
            "area": "IT",
            "level": 3,
            "reference": "national",
        },
    )
    obs = store.observations(answer["dataset"])
    obs = obs.assign(part=obs["indicator"].str[:2], sector=obs["indicator"].str[3:])
    parts = obs.pivot_table(index=["geo", "sector"], columns="part", values="value")
    emp = store.observations("nama_10r_3empers", ["C", "F", "J", "TOTAL"], [2013, 2018])
    wide = emp.pivot_table(index=["geo", "indicator"], columns="time", values="value")
    it = wide[wide.index.get_level_values("geo").str.startswith("IT")]
    change = (it[2018] - it[2013]).rename_axis(["geo", "sector"])
    joined = parts.join(change.rename("change"), how="inner").dropna()
    assert len(joined) > 250
    np.testing.assert_allclose(joined[["NS", "IM", "RS"]].sum(axis=1), joined["change"])
    totals = emp[emp["geo"].str.startswith("IT") & (emp["indicator"] == "TOTAL")]
    by_year = totals.groupby("time")["value"].sum()  # the national total over the regions
    growth = by_year[2018] / by_year[2013] - 1
    start = it[2013].rename_axis(["geo", "sector"]).loc[joined.index]
    np.testing.assert_allclose(joined["NS"], start * growth, rtol=1e-9)


def test_ratio_per_capita_undoes_gdp_per_head(service: Any) -> None:
    """GDP per head x population / population: the ratio endpoint divides stored datasets
    by region and year (both in the NUTS version of the boundaries)."""
    client, store, _ = service
    gdp = stored(store, "nama_10r_3gdp", "EUR_HAB")
    pop = stored(store, "demo_r_pjanaggr3", "NR")
    joined = pd.concat([gdp.rename("gdp"), pop.rename("pop")], axis=1, join="inner").dropna()
    answer = post(
        client,
        {
            "name": "population_per_thousand",
            "kind": "ratio",
            "source": {"dataset": "demo_r_pjanaggr3"},
            "denominator": {"dataset": "demo_r_pjanaggr3"},
            "scale": 1000,
        },
    )
    got = stored(store, answer["dataset"], "NR_PER_NR")
    assert np.allclose(got.loc[joined.index], 1000.0)


def test_who_may_derive_and_bad_specs(service: Any, settings: Settings) -> None:
    client, store, _ = service
    body = {"name": "x", "kind": "lq", "source": {"dataset": "nama_10r_3empers"}}
    anonymous = client.post("/datasets/derived", json=body, headers={"Authorization": ""})
    assert anonymous.status_code == 401
    _, viewer = store.accounts.add("derive-viewer", "viewer")
    as_viewer = {"Authorization": "", "X-API-Key": viewer}
    denied = client.post("/datasets/derived", json=body, headers=as_viewer)
    assert denied.status_code == 403
    admin = headers(settings)
    unknown = client.post(
        "/datasets/derived", json={**body, "source": {"dataset": "nope"}}, headers=admin
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    bad = {**body, "source": {"dataset": "nama_10r_3empers", "indicator": "ZZ"}}
    assert client.post("/datasets/derived", json=bad, headers=admin).status_code == 400
    assert client.post("/datasets/derived", json={**body, "kind": "magic"}).status_code == 422
    ratio = {**body, "kind": "ratio"}
    assert client.post("/datasets/derived", json=ratio).status_code == 400  # no denominator


def test_flags_follow_their_rules(service: Any) -> None:
    """Strong clusters and stars of C, F and J across the Italian NUTS-3 regions (2018, the
    EU as reference), checked against their rules with numpy quantiles over the regions."""
    client, store, _ = service
    common = {
        "source": {"dataset": "nama_10r_3empers"},
        "sectors": ["C", "F", "J"],
        "area": "IT",
        "level": 3,
        "years": [2018],
        "reference": "eu",
    }
    post(client, {**common, "name": "lq_it", "kind": "lq"})
    post(client, {**common, "name": "strong_it", "kind": "strong"})
    post(client, {**common, "name": "stars_it", "kind": "stars"})
    emp = store.observations("nama_10r_3empers", ["C", "F", "J", "TOTAL"], [2018])
    emp = emp[emp["geo"].str.startswith("IT")].pivot(index="geo", columns="indicator")["value"]
    for sector in ("C", "F", "J"):
        lq = stored(store, "lq_it", f"LQ_{sector}").droplevel("time")
        value, share = emp[sector].loc[lq.index], (emp[sector] / emp["TOTAL"]).loc[lq.index]
        strong = (lq >= 1) & (lq >= np.quantile(lq, 0.75)) & (value > np.quantile(value, 0.25))
        got = stored(store, "strong_it", f"STRONG_{sector}").droplevel("time").loc[lq.index]
        assert (got == strong.astype(float)).all() and 0 < strong.sum() < len(lq)
        stars = (
            (value >= np.quantile(value, 0.9)).astype(int)
            + (lq >= 2).astype(int)
            + (share >= np.quantile(share, 0.9)).astype(int)
        )
        got = stored(store, "stars_it", f"STARS_{sector}").droplevel("time").loc[lq.index]
        assert (got == stars).all() and stars.max() >= 2
