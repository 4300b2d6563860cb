"""Proof 2 of issue 7 (trust), LOAD: under 60 s of concurrent reading and uploading, the
service answers every request and keeps every upload whole.

The service runs as a real server process, ``alpclusters serve --workers 4``, on this run's
throwaway PostgreSQL/PostGIS (``tests/pgserver.py``) holding the demo datasets and one
analysis. The load comes from locust (run headless, as a subprocess, on loopback): 200
readers fetching the GeoJSON of regions and of the analysis, OGC API Features items and the
HTML maps, and 10 uploaders posting distinct tables (``POST /datasets``, multipart, with an
API key), two uploaders to each of five datasets, so that versions are numbered under
contention. Every upload file is written here from the real Eurostat ``nama_10r_3gdp`` table
of the mirror: one unit's NUTS-3 rows of one country, less one row (a different one each
time), so each upload is new content and a new version. Rate limiting is off
(``ALPCLUSTERS_RATE_LIMIT_PER_MINUTE=0``).

Proved: no request fails (every answer is 2xx, no transport error or timeout), every upload
answered 201 and its version is afterwards listed with the content hash that the library
computes from the very bytes sent (checked here, in this process, not by the server) and
downloads as exactly the sent rows (pandas, row by row). p50/p99 latencies per endpoint kind
are printed as a table and written as JSON (``trust-load.json`` under the test's tmp dir).

References: the sent files themselves; :class:`geo.validation.Validator` run locally for the
content hash; pandas for the rows; locust's own latency statistics.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from geo.accounts import new_key
from geo.analysis import AnalysisParams
from geo.formats import ReadOptions
from geo.indicators import load_demo, load_eurostat
from geo.jobs import AnalysisRunner
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadRequest, upload
from tests.pgserver import Server, free_port

pytestmark = pytest.mark.trust

WORKERS = 4
READERS = 200
UPLOADERS = 10
RUN_S = 60
START_S = 180.0  # longest wait for the service to answer (4 workers on a busy machine)
REQUEST_TIMEOUT_S = 120.0  # a read or upload slower than this counts as an error
# Idle keep-alive connections stay open 75 s (nginx's default) rather than uvicorn's 5 s:
# with answers taking seconds on 2 shared cores, a 5 s timer closes connections just as
# clients send their next request on them (RFC 9112 section 9.3.1), which clients that do
# not retry (locust's) count as errors that are no fault of the service.
KEEP_ALIVE_S = 75
# One country per uploader (NUTS-3 regions x years: a few hundred rows each); uploaders 2k
# and 2k+1 send to dataset trust_load_k.
COUNTRIES = ("AT", "CH", "SI", "BE", "NL", "PT", "HR", "CZ", "SE", "FI")
UNITS = ("EUR_HAB", "PPS_EU27_2020_HAB", "MIO_EUR", "EUR_HAB_EU27_2020", "MIO_PPS_EU27_2020")

# The locust file: readers and uploaders; the uploaders keep every file they send and what
# the service answered. PLAN (JSON) names the URLs, the base tables and the output folder.
LOCUSTFILE = r"""
import itertools, json, os, random
from pathlib import Path

from locust import HttpUser, between, constant, events, task

PLAN = json.loads(Path(os.environ["TRUST_PLAN"]).read_text())
TIMEOUT = PLAN["timeout"]
OUT = Path(PLAN["out"])
NUMBERS = itertools.count()
SENT = []


class Reader(HttpUser):
    weight = 1
    wait_time = between(0.5, 2.0)

    def get(self, kind, url):
        self.client.get(url, name=kind, timeout=TIMEOUT)

    @task(3)
    def regions(self):
        self.get("geojson regions", PLAN["reads"]["regions"])

    @task(3)
    def analysis_regions(self):
        self.get("geojson analysis regions", PLAN["reads"]["analysis_regions"])

    @task(2)
    def analysis_catchments(self):
        self.get("geojson analysis catchments", PLAN["reads"]["analysis_catchments"])

    @task(4)
    def ogc_items(self):
        collection, n = random.choice(PLAN["reads"]["ogc"])
        offset = random.randrange(0, max(n, 1), 50)
        self.get("ogc items", f"/ogc/collections/{collection}/items?limit=50&offset={offset}")

    @task(1)
    def ogc_items_html(self):
        collection, _ = random.choice(PLAN["reads"]["ogc"])
        self.get("ogc items html", f"/ogc/collections/{collection}/items?limit=20&f=html")

    @task(1)
    def analysis_map(self):
        self.get("html analysis map", PLAN["reads"]["analysis_map"])

    @task(1)
    def dataset_map(self):
        self.get("html dataset map", PLAN["reads"]["dataset_map"])

    @task(1)
    def datasets(self):
        self.get("json datasets", "/datasets")


class Uploader(HttpUser):
    fixed_count = PLAN["uploaders"]
    wait_time = constant(0)

    def on_start(self):
        self.number = next(NUMBERS)
        self.base = Path(PLAN["bases"][self.number]).read_text().splitlines(keepends=True)
        self.dropped = 0

    @task
    def upload(self):
        header, rows = self.base[0], self.base[1:]
        if self.dropped >= len(rows):
            self.wait()
            return
        body = header + "".join(r for k, r in enumerate(rows) if k != self.dropped)
        path = OUT / f"u{self.number:02d}-{self.dropped:04d}.csv"
        self.dropped += 1
        path.write_text(body)
        form = {
            "name": f"trust_load_{self.number // 2}",
            "uploader": f"uploader-{self.number}",
            "indicator_from": "unit",
        }
        with self.client.post(
            "/datasets",
            files={"file": (path.name, body.encode(), "text/csv")},
            data=form,
            headers={"Authorization": "Bearer " + PLAN["key"]},
            name="upload POST /datasets",
            timeout=TIMEOUT,
            catch_response=True,
        ) as resp:
            answer = {"file": str(path), "form": form, "status": resp.status_code}
            try:
                answer["body"] = resp.json()
            except ValueError:
                answer["body"] = resp.text[:500]
            if resp.status_code != 201:
                resp.failure(f"upload answered {resp.status_code}: {resp.text[:300]}")
            SENT.append(answer)


@events.quitting.add_listener
def _save(environment, **kwargs):
    (OUT / "sent.json").write_text(json.dumps(SENT))
"""


# -- the service as a real server process ---------------------------------------------------


def service_env(settings: Settings, url: str, folder: Path, key: str) -> dict[str, str]:
    """The service's whole configuration, from the environment as in a deployment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALPCLUSTERS_")}
    env.update(
        ALPCLUSTERS_DATA_MIRROR=str(settings.data_mirror),
        ALPCLUSTERS_ALLOW_DOWNLOAD="false",
        ALPCLUSTERS_NUTS_DIR=str(settings.nuts_dir),
        ALPCLUSTERS_DATABASE_URL=url,
        ALPCLUSTERS_UPLOAD_DIR=str(folder / "uploads"),
        ALPCLUSTERS_ADMIN_KEY=key,
        ALPCLUSTERS_RATE_LIMIT_PER_MINUTE="0",
    )
    return env


@dataclass
class Service:
    """``alpclusters serve --workers N`` in its own process group, its log in ``folder``."""

    env: dict[str, str]
    folder: Path
    workers: int = WORKERS
    keep_alive_s: int = KEEP_ALIVE_S
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "service.log"

    def start(self, timeout: float = START_S) -> float:
        """Start the service and wait until it answers; the seconds that took."""
        cli = Path(sys.executable).with_name("alpclusters")
        cmd = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--workers", str(self.workers), "--log-level", "warning"]
        cmd += ["--timeout-keep-alive", str(self.keep_alive_s)]
        began = time.monotonic()
        with self.log.open("ab") as log:
            log.write(f"\n--- start {self.starts} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd, env=self.env, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its workers share its process group
            )  # fmt: skip
        self.starts += 1
        deadline = began + timeout
        while not self.healthy():
            assert self.proc.poll() is None, f"the service exited:\n{self.tail()}"
            assert time.monotonic() < deadline, f"no answer in {timeout} s:\n{self.tail()}"
            time.sleep(0.1)
        return time.monotonic() - began

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def kill(self) -> None:
        """SIGKILL the server and all its workers at once (a crash of the machine's service)."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL for whatever is left of the group."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def workers_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor)."""
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(p) for p in children.read_text().split()] if children.exists() else []
        return [p for p in pids if "spawn_main" in _cmdline(p)]

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def prepare_store(settings: Settings, key: str) -> str:
    """The demo datasets, the default analysis (its id returned) and the admin key, stored
    before the service starts (so its workers only find them)."""
    store = Store(settings.database_url)
    try:
        load_demo(settings, store)
        store.accounts.bootstrap(key)
        runner = AnalysisRunner(settings, store)
        try:
            record = runner.submit(AnalysisParams(dataset="nama_10r_3gdp"), wait=True)
        finally:
            runner.close()
        assert record.status == "done"
        return record.id
    finally:
        store.engine.dispose()


# -- the upload tables, written from the real GDP table --------------------------------------


@pytest.fixture(scope="module")
def gdp(settings: Settings) -> pd.DataFrame:
    """The Eurostat GDP table as read from the mirror (all units and NUTS levels)."""
    table, _ = load_eurostat(settings, "nama_10r_3gdp")
    return table


def nuts3_table(gdp: pd.DataFrame, country: str, unit: str) -> pd.DataFrame:
    """One unit's NUTS-3 rows of one country (no extra-regio codes), as uploaded."""
    keep = (
        (gdp["cntr_code"] == country)
        & (gdp["unit"] == unit)
        & (gdp["geo"].str.len() == 5)
        & ~gdp["geo"].str.endswith("ZZZ")
    )
    rows = gdp.loc[keep, ["unit", "geo", "time", "value", "flag"]]
    return rows.sort_values(["geo", "time"]).reset_index(drop=True)


def read_sent(path: Path) -> pd.DataFrame:
    """A sent CSV as the observations the store must give back, in the store's order."""
    rows = pd.read_csv(path, dtype={"flag": object}, keep_default_na=False, na_values=[""])
    return observations(rows["unit"], rows)


def observations(indicator: pd.Series, rows: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "indicator": indicator.astype(str).to_numpy(),
            "geo": rows["geo"].astype(str).to_numpy(),
            "time": rows["time"].astype(int).to_numpy(),
            "value": rows["value"].astype(float).to_numpy(),
            "flag": rows["flag"].astype(object).where(rows["flag"].notna(), None).to_numpy(),
        }
    )
    return out.sort_values(["indicator", "time", "geo"]).reset_index(drop=True)


def local_hash(settings: Settings, path: Path, dataset: str, scratch: Store) -> str:
    """The content hash the library computes for ``path`` here (a dry run, nothing stored)."""
    request = UploadRequest(
        dataset_id=dataset, title=dataset, read=ReadOptions(indicator_from=["unit"])
    )
    outcome = upload(settings, scratch, path, request, dry_run=True)
    return str(outcome.report["content_hash"])


def downloaded(base: str, dataset: str, version: int) -> pd.DataFrame:
    """A version as the service downloads it (CSV), in the store's order."""
    resp = httpx.get(
        f"{base}/datasets/{dataset}/versions/{version}/download", params={"f": "csv"}, timeout=60
    )
    assert resp.status_code == 200, resp.text
    rows = pd.read_csv(
        io.StringIO(resp.text), dtype={"flag": object}, keep_default_na=False, na_values=[""]
    )
    return observations(rows["indicator"], rows)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} rows, sent {len(want)}"
    for column in ("indicator", "geo", "time"):
        assert (got[column].to_numpy() == want[column].to_numpy()).all(), f"{what}: {column}"
    np.testing.assert_array_equal(got["value"].to_numpy(), want["value"].to_numpy(), what)
    assert got["flag"].tolist() == want["flag"].tolist(), f"{what}: flags"


# -- locust's figures ----------------------------------------------------------------------------


def latency_table(stats_csv: Path) -> list[dict[str, Any]]:
    """Per endpoint kind: requests, failures, p50 and p99 (ms), requests per second."""
    rows = []
    with stats_csv.open(newline="") as fh:
        for row in csv.DictReader(fh):
            rows.append(
                {
                    "kind": row["Name"],
                    "requests": int(row["Request Count"]),
                    "failures": int(row["Failure Count"]),
                    "p50_ms": _ms(row["50%"]),
                    "p99_ms": _ms(row["99%"]),
                    "max_ms": _ms(row["Max Response Time"]),
                    "rps": round(float(row["Requests/s"]), 2),
                }
            )
    return rows


def _ms(text: str) -> float | None:
    return None if text in ("", "N/A") else round(float(text), 1)


def print_table(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [
        title,
        f"{'kind':34} {'requests':>9} {'fail':>5} {'p50 ms':>9} {'p99 ms':>9} {'rps':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r['kind']:34} {r['requests']:>9} {r['failures']:>5} "
            f"{r['p50_ms'] or 0:>9.0f} {r['p99_ms'] or 0:>9.0f} {r['rps']:>7.1f}"
        )
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    return text


# -- the proof -----------------------------------------------------------------------------------


@pytest.fixture
def service(
    settings: Settings, postgres: Server, tmp_path: Path
) -> Iterator[tuple[Service, str, str]]:
    """The service with 4 workers on a fresh PostgreSQL database: (service, analysis, key)."""
    name = f"trust_load_{os.getpid()}"
    url = postgres.create_database(name)
    key = new_key()[0]
    db_settings = settings.model_copy(update={"database_url": url})
    aid = prepare_store(db_settings, key)
    svc = Service(service_env(settings, url, tmp_path, key), tmp_path)
    try:
        svc.start()
        yield svc, aid, key
    finally:
        svc.stop()
        postgres.drop_database(name)


def reading_plan(base: str, aid: str) -> dict[str, Any]:
    """What the readers fetch: the real URLs of the routers, with the collections' sizes."""
    collections = httpx.get(f"{base}/ogc/collections", timeout=60).json()["collections"]
    ogc = []
    for c in collections:
        if c["id"].startswith(("nuts-2021-level-3", "dataset-nama_10r_3gdp", "analysis-")):
            first = httpx.get(f"{base}/ogc/collections/{c['id']}/items?limit=1", timeout=60)
            ogc.append((c["id"], int(first.json()["numberMatched"])))
    assert len(ogc) == 4, ogc
    return {
        "regions": "/regions?level=3&area=alpine-space",
        "analysis_regions": f"/analyses/{aid}/regions.geojson",
        "analysis_catchments": f"/analyses/{aid}/catchments.geojson",
        "analysis_map": f"/maps/analyses/{aid}",
        "dataset_map": "/maps/datasets/nama_10r_3gdp",
        "ogc": ogc,
    }


def write_bases(gdp: pd.DataFrame, folder: Path) -> list[str]:
    """Each uploader's base table (its uploads drop one row of it each)."""
    folder.mkdir()
    paths = []
    for number, country in enumerate(COUNTRIES):
        table = nuts3_table(gdp, country, UNITS[number % len(UNITS)])
        assert len(table) > 100, (country, len(table))
        path = folder / f"base-{number:02d}-{country}.csv"
        table.to_csv(path, index=False)
        paths.append(str(path))
    return paths


def run_locust(base: str, plan: dict[str, Any], folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "locustfile.py").write_text(LOCUSTFILE)
    (folder / "plan.json").write_text(json.dumps(plan))
    locust = Path(sys.executable).with_name("locust")
    cmd = [str(locust), "-f", str(folder / "locustfile.py"), "--headless", "--host", base]
    cmd += ["-u", str(READERS + UPLOADERS), "-r", "100", "-t", f"{RUN_S}s"]
    cmd += ["--stop-timeout", "60", "--csv", str(folder / "locust"), "--only-summary"]
    cmd += ["--exit-code-on-error", "0"]
    env = {**os.environ, "TRUST_PLAN": str(folder / "plan.json")}
    return subprocess.run(
        cmd, env=env, cwd=folder, capture_output=True, text=True, timeout=RUN_S + 300
    )


@pytest.mark.timeout(1800)
def test_load_200_readers_10_uploaders_4_workers(
    service: tuple[Service, str, str], settings: Settings, gdp: pd.DataFrame, tmp_path: Path
) -> None:
    """60 s of 200 readers and 10 uploaders against 4 workers: zero errors, every upload
    stored whole, p50/p99 per endpoint kind reported."""
    svc, aid, key = service
    sent_dir = tmp_path / "sent"
    sent_dir.mkdir()
    plan = {
        "reads": reading_plan(svc.base, aid),
        "bases": write_bases(gdp, tmp_path / "bases"),
        "uploaders": UPLOADERS,
        "key": key,
        "out": str(sent_dir),
        "timeout": REQUEST_TIMEOUT_S,
    }
    workers_before = sorted(svc.workers_pids())
    assert len(workers_before) == WORKERS, svc.tail()
    done = run_locust(svc.base, plan, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert svc.proc is not None and svc.proc.poll() is None, svc.tail()
    assert sorted(svc.workers_pids()) == workers_before, "a worker died or was restarted"

    rows = latency_table(tmp_path / "locust_stats.csv")
    failures = (tmp_path / "locust_failures.csv").read_text()
    sent = json.loads((sent_dir / "sent.json").read_text())
    verified = verify_uploads(svc.base, settings, sent, tmp_path)
    total = next(r for r in rows if r["kind"] == "Aggregated")
    figures = {
        "workers": WORKERS,
        "readers": READERS,
        "uploaders": UPLOADERS,
        "seconds": RUN_S,
        "requests": total["requests"],
        "errors": total["failures"],
        "uploads_sent": len(sent),
        "uploads_verified": verified,
        "endpoints": rows,
    }
    out = tmp_path / "trust-load.json"
    out.write_text(json.dumps(figures, indent=2))
    print_table(f"LOAD, {WORKERS} workers, {RUN_S} s, {READERS}+{UPLOADERS} users", rows)
    print(f"uploads sent {len(sent)}, verified {verified}; figures in {out}", flush=True)
    print("TRUST-LOAD " + json.dumps({k: v for k, v in figures.items() if k != "endpoints"}))

    assert total["failures"] == 0, failures + done.stderr[-3000:]
    assert all(r["failures"] == 0 for r in rows), failures
    assert verified == len(sent) > 0
    assert "Traceback" not in svc.log.read_text(errors="replace"), svc.tail(200)


def verify_uploads(base: str, settings: Settings, sent: list[dict[str, Any]], folder: Path) -> int:
    """Every upload answered 201 with a new version, and that version is listed with the
    content hash of the sent bytes and downloads as exactly the sent rows."""
    scratch = Store(f"sqlite:///{folder / 'scratch.db'}")  # for the local dry runs only
    by_dataset: dict[str, dict[int, dict[str, Any]]] = {}
    for answer in sent:
        assert answer["status"] == 201, answer
        body = answer["body"]
        assert body["created"] is True and body["ok"] is True, body
        versions = by_dataset.setdefault(body["dataset"], {})
        assert body["version"] not in versions, f"version {body['version']} given twice"
        versions[body["version"]] = answer
    checked = 0
    for dataset, answers in by_dataset.items():
        listed = httpx.get(f"{base}/datasets/{dataset}/versions", timeout=60).json()
        assert sorted(v["version"] for v in listed) == list(range(1, len(answers) + 1))
        for info in listed:
            answer = answers[info["version"]]
            path = Path(answer["file"])
            want = read_sent(path)
            assert info["uploader"] == answer["form"]["uploader"]
            assert info["file_name"] == path.name
            assert info["n_rows"] == len(want)
            assert info["content_hash"] == local_hash(settings, path, dataset, scratch), path
            got = downloaded(base, dataset, info["version"])
            assert_same_rows(got, want, f"{dataset} v{info['version']} ({path.name})")
            checked += 1
    scratch.engine.dispose()
    return checked
