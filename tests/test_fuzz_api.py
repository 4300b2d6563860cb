"""Fuzzing the HTTP API against its own OpenAPI document: no request, however malformed, gets
a server error or an answer the document does not describe.

Reference: Schemathesis, which reads the served ``/openapi.json`` and generates requests from
it (valid ones, and with negative generation ones that break the schema), sent in-process over
its ASGI transport. Every operation of the document is fuzzed without a credential and with
the bootstrap admin key, with path parameters generated or drawn from real resources of the
demo store (datasets, a finished analysis, its catchments, the OGC collections, features and
tiles), and each answer is checked by Schemathesis's own checks: not a 5xx, the status code
documented, the content type documented, the body valid against the documented schema, the
documented headers present and valid. The app runs on a store of this module, so fuzzed
uploads and analyses do not reach other tests. Hypothesis is derandomized: every CI run sends
the same requests.
"""

from __future__ import annotations

import collections
import contextlib
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from geo.settings import Settings
from geo.store import Store
from tests.auth import headers

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
CREDENTIALS = ("anonymous", "admin")
MIN_CASES = 1_000  # per credential: 2,000 in all
GENERATED = 15  # examples per operation and generation mode, path parameters generated
ON_REAL = 12  # examples per operation and generation mode on real resources
# Pages that render a whole folium map or write a whole file: fewer examples
HEAVY = {
    "GET /maps/analyses/{analysis_id}": 4,
    "GET /maps/analyses/{analysis_id}/catchments/{catchment_id}": 4,
    "GET /maps/datasets/{dataset_id}": 4,
    "GET /ogc/collections/{collectionId}/export": 4,
    "POST /maps/analyses": 5,
    "POST /analyses": 6,
    "POST /datasets/derived": 6,
    "GET /maps/datasets/{dataset_id}/emerging": 4,
    "GET /maps/regions/{code}/similar": 4,
    "GET /datasets/{dataset_id}/emerging": 6,
    "GET /analyses/{analysis_id}/surface.tif": 4,
    "POST /datasets/from-raster": 6,
    "POST /rasters": 6,
}
MAX_PERMUTATIONS = 99  # analyses asked for on a real dataset are bounded to this
ALPS = (11.0, 46.5)  # lon, lat: tiles over the Alps


@dataclass
class Target:
    """The app under test, its schema, and the real resources to aim at."""

    schema: Any
    real: dict[str, list[Any]]
    credentials: dict[str, dict[str, str]]


@dataclass
class Tally:
    """What one credential's run sent and got back."""

    cases: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: collections.Counter[str] = field(default_factory=collections.Counter)
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def fail(self, label: str, kind: str, case: Case, message: str) -> None:
        self.failures.setdefault((label, kind), f"{case.as_curl_command()}\n{message[:1500]}")


def slippy(z: int, lon: float, lat: float) -> tuple[int, int, int]:
    """The WebMercatorQuad tile (z, y, x) holding lon/lat."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, y, x


def real_resources(client: Any, auth: dict[str, str], store: Store) -> dict[str, list[Any]]:
    """Ids of real datasets, a finished analysis, its catchments, collections and features."""
    body = {"dataset": "nama_10r_3gdp", "years": [2018], "permutations": 99, "seed": 7}
    answer = client.post("/analyses", json=body, headers=auth)
    assert answer.status_code in (200, 201), answer.text
    analysis = answer.json()
    catchments = [
        c["catchment"]
        for c in client.get(f"/analyses/{analysis['id']}/catchments.geojson").json()["features"]
        for c in [c["properties"]]
    ]
    collections_ = [c["id"] for c in client.get("/ogc/collections").json()["collections"]]
    features = [
        f["id"]
        for cid in ("nuts-2021-level-3", f"analysis-{analysis['id']}-catchments")
        for f in client.get(f"/ogc/collections/{cid}/items", params={"limit": 5}).json()["features"]
    ]
    tiles = [slippy(z, *ALPS) for z in (0, 4, 7, 9)]
    datasets = [d.id for d in store.datasets()]
    return {
        "dataset_id": datasets,
        "version": [1],
        "analysis_id": [analysis["id"]],
        "catchment_id": catchments or ["C1"],
        "collectionId": collections_,
        "collection_id": collections_,
        "featureId": features,
        "tile": tiles,
        "code": ["ITC20", "ITH20", "AT332"],  # NUTS-3 regions with data: the similar regions
    }


@pytest.fixture(scope="module")
def target(
    settings: Settings, demo_store: Store, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The service on a store of this module (demo data, rate limit off), its schema as
    Schemathesis loads it, and the real resources."""
    from geo.indicators import load_demo
    from services.app import create_app

    tmp = tmp_path_factory.mktemp("fuzz-api")
    update: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'store.db'}",
        "upload_dir": tmp / "uploads",
    }
    if "rate_limit_per_minute" in Settings.model_fields:
        update["rate_limit_per_minute"] = 0
    local = settings.model_copy(update=update)
    store = Store(local.database_url)
    load_demo(local, store)
    app = create_app(local)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    credentials = {"anonymous": {}, "admin": headers(local)}
    try:
        with asgi.get_client(app) as client:  # starts the app's lifespan
            real = real_resources(client, credentials["admin"], store)
        yield Target(schema, real, credentials)
    finally:
        asgi.shutdown_lifespans()


def operations(schema: Any) -> list[APIOperation]:
    found = [result.ok() for result in schema.get_all_operations()]
    assert found, "the document has operations"
    return found


def path_choices(operation: APIOperation, real: dict[str, list[Any]]) -> st.SearchStrategy[Any]:
    """Path parameters drawn from the real resources (the others are generated)."""
    names = [p.name for p in operation.path_parameters]
    fixed: dict[str, st.SearchStrategy[Any]] = {
        name: st.sampled_from(real[name]) for name in names if name in real
    }
    if {"z", "y", "x"} <= set(names):
        tile = st.sampled_from(real["tile"])
        return st.tuples(st.fixed_dictionaries(fixed), tile).map(
            lambda pair: {**pair[0], "z": pair[1][0], "y": pair[1][1], "x": pair[1][2]}
        )
    return st.fixed_dictionaries(fixed)


def on_real_data(case: Case, real: dict[str, list[Any]], pick: int) -> None:
    """Aim a generated analysis at a real dataset, with few permutations (bounded work)."""
    if case.operation.label not in AIMED_BODIES:
        return
    if not isinstance(case.body, dict):
        return
    case.body["dataset"] = real["dataset_id"][pick % len(real["dataset_id"])]
    permutations = case.body.get("permutations")
    form = case.operation.label.startswith("POST /maps")
    if form or not isinstance(permutations, int) or permutations > MAX_PERMUTATIONS:
        case.body["permutations"] = str(MAX_PERMUTATIONS) if form else MAX_PERMUTATIONS


AIMED_BODIES = ("POST /analyses", "POST /maps/analyses")


def strategies(
    operation: APIOperation, real: dict[str, list[Any]]
) -> Iterator[tuple[st.SearchStrategy[Case], bool]]:
    """Generated requests, then (when there is something to aim) requests on real data; in
    both generation modes."""
    aim = operation.label in AIMED_BODIES or any(p.name in real for p in operation.path_parameters)
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        yield operation.as_strategy(generation_mode=mode), False
        if not aim:
            continue
        aimed = path_choices(operation, real).flatmap(
            lambda fixed, mode=mode: operation.as_strategy(
                generation_mode=mode, path_parameters=fixed
            )
        )
        yield aimed, True


def fuzz(
    operation: APIOperation,
    strategy: st.SearchStrategy[Case],
    examples: int,
    send: Callable[[Case, int], None],
) -> None:
    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(case=strategy, pick=st.integers(0, 1_000))
    def run(case: Case, pick: int) -> None:
        send(case, pick)

    with contextlib.suppress(Unsatisfiable):  # nothing to negate: no parameters
        run()


def exercise(target: Target, who: str) -> Tally:
    tally = Tally()
    auth = target.credentials[who]

    def sender(label: str, aimed: bool) -> Callable[[Case, int], None]:
        def send(case: Case, pick: int) -> None:
            if aimed:
                on_real_data(case, target.real, pick)
            tally.cases[label] += 1
            try:
                response = case.call(headers=auth)
            except Exception as exc:  # the app raised through the transport: a 500
                tally.statuses[500] += 1
                tally.fail(label, type(exc).__name__, case, repr(exc))
                return
            tally.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=auth)
            except BaseException as exc:  # a FailureGroup of every failed check
                if isinstance(exc, KeyboardInterrupt):
                    raise
                for failure in getattr(exc, "exceptions", [exc]):
                    title = str(failure).strip().splitlines()[0]
                    tally.fail(label, title, case, str(exc))

        return send

    for operation in operations(target.schema):
        examples = HEAVY.get(operation.label)
        for strategy, aimed in strategies(operation, target.real):
            n = examples or (ON_REAL if aimed else GENERATED)
            start = time.perf_counter()
            fuzz(operation, strategy, n, sender(operation.label, aimed))
            tally.seconds[operation.label] += time.perf_counter() - start
    return tally


@pytest.mark.timeout(600)
@pytest.mark.parametrize("who", CREDENTIALS)
def test_every_operation_survives_fuzzing(target: Target, who: str) -> None:
    """Every operation, valid and invalid requests: no 5xx, no answer off the document."""
    tally = exercise(target, who)
    labels = {op.label for op in operations(target.schema)}
    print(f"{who}: {sum(tally.cases.values())} cases, statuses {dict(tally.statuses)}")
    print("slowest:", [(op, round(s, 1)) for op, s in tally.seconds.most_common(6)])
    assert set(tally.cases) == labels, f"not exercised: {sorted(labels - set(tally.cases))}"
    report = "\n\n".join(f"{op} — {kind}\n{text}" for (op, kind), text in tally.failures.items())
    assert not [s for s in tally.statuses if s >= 500], report
    assert not tally.failures, f"{len(tally.failures)} distinct failures:\n\n{report}"
    assert sum(tally.cases.values()) >= MIN_CASES, tally.cases
