"""``python -m bench.ogc SIDE``: case 6, OGC API – Features items, ours against pygeoapi.

One side per process, like the other cases: the side's server is started here (uvicorn,
:data:`WORKERS` process, a free loopback port), waited for, warmed up with two requests
whose bodies are parsed and checked whole, loaded by :data:`CLIENTS` concurrent
keep-alive clients for a fixed time (:mod:`bench.ogc_load`), checked once more, and
stopped. The last line on stdout is the JSON record.

Sides:

* ``ours``: ``services.app:create_app`` under uvicorn, ``/ogc/collections/{id}/items``;
  boundaries from the data mirror through the project's loaders, a fresh SQLite store.
* ``pygeoapi-parquet`` / ``pygeoapi-geojson``: pygeoapi's Starlette application under the
  same uvicorn with the same options, its own Parquet or GeoJSON feature provider serving
  the same 1,514 regions, written here from ``geo.boundaries.regions(Settings(), 3)``.
  Geometries are the ones our GeoJSON carries (``geo.geojson.feature_collection``:
  coordinates rounded to ``Settings().geojson_precision`` decimals), so both sides send
  the same coordinates; ids and properties are the layer's.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import importlib.metadata
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench import pygeoapi as pga
from bench.cases import OURS, PYGEOAPI_GEOJSON, PYGEOAPI_PARQUET
from bench.ogc_load import Load, Response, Target, check_collection, fetch, run_load

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "out"
PYGEOAPI_SIDES = {PYGEOAPI_PARQUET: "parquet", PYGEOAPI_GEOJSON: "geojson"}
SIDES = (OURS, *PYGEOAPI_SIDES)

LEVEL = 3
LIMIT = 2000  # above the 1,514 regions: one page holds them all
CLIENTS = 8
WORKERS = 1  # server processes, the same for every side
SECONDS = 15.0  # the measured phase per side (QUICK_SECONDS with --quick)
QUICK_SECONDS = 3.0
STARTUP_TIMEOUT_S = 180.0
CHILD_TIMEOUT_S = 600.0
PR_SET_PDEATHSIG = 1  # prctl(2)
HEADERS = {"Accept": "application/geo+json", "Accept-Encoding": "identity"}


@dataclass
class Server:
    """A server process started by this module, with its log file."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    started: float

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), SIGKILL after 15 s; this process only."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def _die_with_parent() -> None:
    """In the server's process, before exec: SIGTERM when this benchmark process dies
    (one foreign call, nothing imported or allocated between fork and exec)."""
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(command: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    """Launch a server whose output goes to ``log``; it stops if this process is killed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
    return Server(proc, port, log, time.perf_counter())


def wait_ready(server: Server, path: str) -> float:
    """Poll ``path`` until it answers 200; the seconds since the launch."""
    target = Target("127.0.0.1", server.port, path, {"Accept": "application/json"})
    while time.perf_counter() - server.started < STARTUP_TIMEOUT_S:
        if not server.alive():
            raise RuntimeError(
                f"the server exited ({server.proc.returncode}):\n{server.log_tail()}"
            )
        try:
            if fetch(target, timeout=10).status == 200:
                return time.perf_counter() - server.started
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"the server was not ready after {STARTUP_TIMEOUT_S:g} s:\n{server.log_tail()}"
    )


def write_sources(out: Path) -> tuple[Path, Path, list[float], set[str]]:
    """pygeoapi's inputs: the level-3 regions as GeoJSON and as GeoParquet; bbox and ids.

    The GeoJSON is ``feature_collection`` of the layer (what our endpoints are built on);
    the GeoParquet has the same geometries, the layer's columns and dtypes, and the NUTS
    code as its (pandas) index ``id``, which pygeoapi's Parquet provider uses as feature id.
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    from geo.boundaries import regions
    from geo.geojson import feature_collection
    from geo.settings import Settings

    settings = Settings()
    layer = regions(settings, LEVEL)
    collection = feature_collection(layer, precision=settings.geojson_precision)
    out.mkdir(parents=True, exist_ok=True)
    geojson = out / f"nuts-{settings.nuts_year}-level-{LEVEL}.geojson"
    geojson.write_text(json.dumps(collection, separators=(",", ":")), encoding="utf-8")
    geometries = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    frame = gpd.GeoDataFrame(layer.drop(columns="geometry"), geometry=geometries, crs=4326)
    for column in frame.columns.drop("geometry"):
        if frame[column].dtype.kind not in "iufb":  # Arrow 'string', not 'large_string'
            frame[column] = frame[column].astype(object)
    frame.index = pd.Index([str(i) for i in layer.index], dtype=object, name="id")
    parquet = out / f"nuts-{settings.nuts_year}-level-{LEVEL}.parquet"
    frame.to_parquet(parquet, index=True)
    bbox = [float(v) for v in layer.total_bounds]
    return geojson, parquet, bbox, {str(i) for i in layer.index}


def collection_id() -> str:
    from geo.settings import Settings

    return f"nuts-{Settings().nuts_year}-level-{LEVEL}"


def expected_ids() -> set[str]:
    from geo.boundaries import regions
    from geo.settings import Settings

    return {str(i) for i in regions(Settings(), LEVEL).index}


def launch_ours(out: Path) -> tuple[Server, str, str]:
    """Our service on a fresh SQLite store; the server, its readiness path and items path."""
    db = out / "ours.db"
    db.unlink(missing_ok=True)
    env = {
        **os.environ,
        "ALPCLUSTERS_DATABASE_URL": f"sqlite:///{db}",
        "ALPCLUSTERS_UPLOAD_DIR": str(out / "uploads"),
    }
    port = free_port()
    command = [
        sys.executable,
        *("-m", "uvicorn", "--factory", "services.app:create_app"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)),
        *("--no-access-log", "--log-level", "warning"),
    ]
    server = start(command, env, port, out / "ours.log")
    return server, "/health", f"/ogc/collections/{collection_id()}/items?limit={LIMIT}"


def launch_pygeoapi(side: str, out: Path) -> tuple[Server, str, str, set[str]]:
    """pygeoapi with one of its providers; the server, readiness and items paths, ids."""
    provider = PYGEOAPI_SIDES[side]
    geojson, parquet, bbox, ids = write_sources(out)
    port = free_port()
    cid = collection_id()
    config = pga.write_config(
        out,
        port=port,
        provider=provider,
        data=geojson if provider == "geojson" else parquet,
        collection=cid,
        title=f"NUTS regions, level {LEVEL}",
        description="GISCO NUTS regions of level 3, the layer AlpClusters serves",
        bbox=bbox,
        max_items=LIMIT,
    )
    env = pga.environment(config, config.with_suffix(".openapi.yml"), out)
    pga.generate_openapi(config, env)
    server = start(pga.command(port, WORKERS), env, port, out / f"{side}.log")
    return server, "/", f"/collections/{cid}/items?limit={LIMIT}", ids


def server_usage(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system, children included) and peak RSS (VmHWM, MiB) of ``pid``."""
    proc = psutil.Process(pid)
    times = proc.cpu_times()
    cpu = times.user + times.system + times.children_user + times.children_system
    peak_kb = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak_kb = float(line.split()[1])
    return cpu, peak_kb / 1024


def checked(response: Response, ids: set[str], what: str) -> dict[str, Any]:
    """The whole-body check of one response; raises if it is not a 200 FeatureCollection."""
    if response.status != 200:
        raise RuntimeError(f"{what}: status {response.status}: {response.body[:500]!r}")
    check = check_collection(response.body, ids)
    check["seconds"] = response.seconds
    check["bytes"] = len(response.body)
    check["content_type"] = response.headers.get("content-type")
    check["content_encoding"] = response.headers.get("content-encoding")
    return check


def valid(check: dict[str, Any], n: int) -> bool:
    """1,514 features with the layer's ids and geometries; numberMatched/Returned if given."""
    return (
        check["type"] == "FeatureCollection"
        and check["features"] == n
        and check["ids_match"]
        and check["null_geometries"] == 0
        and check["number_matched"] in (None, n)
        and check["number_returned"] in (None, n)
    )


def measure(server: Server, ready_path: str, path: str, ids: set[str], seconds: float) -> dict:
    """Readiness, two checked requests (the first is the cold one), the load, a last check."""
    startup_s = wait_ready(server, ready_path)
    target = Target("127.0.0.1", server.port, path, HEADERS)
    first = checked(fetch(target), ids, "first request")
    second = checked(fetch(target), ids, "second request")
    cpu0, _ = server_usage(server.proc.pid)
    load: Load = run_load(target, CLIENTS, seconds)
    cpu1, peak_mb = server_usage(server.proc.pid)
    last = checked(fetch(target), ids, "request after the load")
    summary = load.summary(len(ids))
    ok = all(valid(c, len(ids)) for c in (first, second, last))
    ok = ok and summary["bad_responses"] == 0 and summary["client_error_count"] == 0
    return {
        "path": path,
        "startup_s": startup_s,
        "first_s": first["seconds"],
        "solo_s": second["seconds"],
        "check": second,
        "check_first": {k: first[k] for k in ("features", "bytes", "ids_match")},
        "check_last": {k: last[k] for k in ("features", "bytes", "ids_match")},
        "bytes_per_response": second["bytes"],
        "valid": ok,
        **summary,
        "time_s": summary["p50_s"],
        "server_cpu_s": cpu1 - cpu0,
        "server_cpu_share": (cpu1 - cpu0) / load.elapsed_s if load.elapsed_s else None,
        "client_cpu_share": load.client_cpu_s / load.elapsed_s if load.elapsed_s else None,
        "rss_mb": peak_mb,
    }


def versions() -> dict[str, str]:
    names = ("uvicorn", "starlette", "fastapi", "pygeoapi", "geopandas", "pyarrow", "shapely")
    found = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "missing"
    return found


def run(side: str, out: Path, seconds: float) -> dict[str, Any]:
    """Start the side's server, measure it, stop it; the record."""
    work = out / "ogc"
    if side == OURS:
        server, ready, path = launch_ours(work)
        ids = expected_ids()
        extra: dict[str, Any] = {"server": "services.app:create_app (FastAPI) under uvicorn"}
    else:
        server, ready, path, ids = launch_pygeoapi(side, work)
        extra = {
            "server": "pygeoapi.starlette_app:APP under uvicorn",
            "provider": pga.PROVIDERS[PYGEOAPI_SIDES[side]],
            "s3fs_stub": PYGEOAPI_SIDES[side] == "parquet" and pga.s3fs_stubbed(),
        }
    load_before = os.getloadavg()[0]
    try:
        fields = measure(server, ready, path, ids, seconds)
    finally:
        server.stop()
    return {
        "case": "ogc-items",
        "side": side,
        "workers": WORKERS,
        "cpus": os.cpu_count(),
        "load_1min": [load_before, os.getloadavg()[0]],  # before and after this side
        "features": len(ids),
        "python": platform.python_version(),
        "versions": versions(),
        "log": str(server.log),
        **extra,
        **fields,
    }


def child(side: str, out: Path, quick: bool) -> dict[str, Any]:
    """Run one side as ``python -m bench.ogc`` in a fresh process; its record or an error."""
    command = [sys.executable, "-m", "bench.ogc", side, "--out", str(out)]
    command += ["--quick"] if quick else []
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S:g} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-15:]
        return {"error": f"exit status {proc.returncode}:\n      " + "\n      ".join(tail)}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ogc", description=__doc__)
    parser.add_argument("side", choices=SIDES)
    parser.add_argument("--quick", action="store_true", help="a short load (harness check)")
    parser.add_argument("--seconds", type=float, default=None, help="length of the load")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where outputs go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    print(json.dumps(run(args.side, args.out, seconds), default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
