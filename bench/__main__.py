"""``python -m bench``: time ``geo.engine.run_panel`` against PySAL esda on the same inputs,
and the upload pipeline against pandas ``read_csv`` + ``to_sql``.

Every side of every case runs in its own fresh process (``python -m bench.worker``), so
peak memory is measured per side. The table shows the warm times, the reference's first
(cold) call, the ratio, the peak RSS of both sides, and whether each target is met. Raw
records go to ``bench/out/results.json``. See ``bench/README.md`` for the cases.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.cases import ENGINE_GROUPS, FULL, GROUPS, QUICK, Case, Sizes, plan
from bench.coldstart import ColdStartError, cold_start
from bench.ingest import DATABASE_ENV
from bench.report import INGEST_INPUT, Record, Records, render
from bench.worker import DEFAULT_OUT

WORKER_TIMEOUT_S = 900


class EngineFailedError(Exception):
    """The engine preflight failed: stop before spending minutes on esda."""


def worker_flags(args: argparse.Namespace) -> list[str]:
    """Options passed on to every worker."""
    flags = ["--out", str(args.out)]
    if args.quick:
        flags.append("--quick")
    if args.esda_series is not None:
        flags += ["--esda-series", str(args.esda_series)]
    return flags


def run_worker(
    case: str, side: str, args: argparse.Namespace, env: dict[str, str] | None = None
) -> Record:
    """One ``python -m bench.worker`` process; its JSON record, or ``{"error": ...}``.

    ``env`` adds environment variables (a database URL holds a password: not on the
    command line).
    """
    command = [sys.executable, "-m", "bench.worker", case, side, *worker_flags(args)]
    return run_json(command, {**os.environ, **env} if env else None)


def run_json(command: list[str], env: dict[str, str] | None = None) -> Record:
    """Run a child whose last stdout line is a JSON record; ``{"error": ...}`` if it fails."""
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {WORKER_TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-15:]
        return {"error": f"exit status {proc.returncode}:\n      " + "\n      ".join(tail)}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def prepare_ingest(args: argparse.Namespace) -> Record:
    """Write (or reuse) the tidy CSV of the ingest cases, in its own process, untimed."""
    started = time.perf_counter()
    log("ingest input ...")
    command = [sys.executable, "-m", "bench.ingest_data", "--out", str(args.out)]
    record = run_json(command + (["--quick"] if args.quick else []))
    status = "FAILED" if "error" in record else f"{record['rows']:,} rows, {record['path']}"
    log(f"ingest input {status} (wall {time.perf_counter() - started:.0f} s)")
    return record


class Postgres:
    """The throwaway PostgreSQL of the ingest cases: started on first use, never timed."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self.stack = stack
        self.server: Any = None  # tests.pgserver.Server once started
        self.error: str | None = None
        self.start_s = 0.0

    def database(self, name: str) -> str:
        """The URL of a new database ``name``; raises ``RuntimeError`` if the server fails."""
        from tests.pgserver import PostgresUnavailableError, throwaway_postgres

        if self.error is None and self.server is None:
            started = time.perf_counter()
            try:
                self.server = self.stack.enter_context(throwaway_postgres())
            except PostgresUnavailableError as exc:
                self.error = str(exc)
            self.start_s = time.perf_counter() - started
            log(f"PostgreSQL {'FAILED' if self.error else 'started'} ({self.start_s:.1f} s)")
        if self.error is not None:
            raise RuntimeError(f"no throwaway PostgreSQL: {self.error}")
        assert self.server is not None
        return str(self.server.create_database(name))


def run_ingest(case: Case, side: str, args: argparse.Namespace, pg: Postgres) -> Record:
    """One side of an ingest case; on PostgreSQL in a fresh database of the shared server."""
    env = None
    if case.key == "ingest-postgres":
        try:
            env = {DATABASE_ENV: pg.database(f"bench_{side}")}
        except RuntimeError as exc:
            return {"error": str(exc)}
    return run_worker(case.key, side, args, env)


def run_cold(side: str, sizes: Sizes) -> Record:
    """Case 4 for one side: launches ``python -c`` processes itself."""
    try:
        return cold_start(side, sizes.cold_year, sizes.cold_permutations, sizes.cold_launches)
    except ColdStartError as exc:
        return {"error": str(exc).splitlines()[-1]}


def run_one(case: Case, side: str, args: argparse.Namespace, sizes: Sizes, pg: Postgres) -> Record:
    """Run one (case, side) and log its duration on stderr."""
    started = time.perf_counter()
    log(f"{case.key:12} {side:4} ...")
    if case.group == "cold":
        record = run_cold(side, sizes)
    elif case.group == "ingest":
        record = run_ingest(case, side, args, pg)
    elif case.group == "ogc":  # bench.ogc starts the side's server and loads it
        from bench.ogc import child

        record = child(side, args.out, args.quick)
    elif case.group == "pages":  # bench.pages runs both maps, both sides, in one process
        from bench.pages import child as pages_child

        record = pages_child(args.out, args.quick)
    else:
        record = run_worker(case.key, side, args)
    status = "FAILED" if "error" in record else f"{record['time_s']:.2f} s"
    log(f"{case.key:12} {side:4} {status} (wall {time.perf_counter() - started:.0f} s)")
    return record


@contextlib.contextmanager
def postgres_while_needed() -> Iterator[Postgres]:
    """A :class:`Postgres` whose server (if started) stops when the block ends."""
    with contextlib.ExitStack() as stack:
        yield Postgres(stack)


def run_all(args: argparse.Namespace, sizes: Sizes) -> Records:
    """Every planned (case, side), in order; the ingest input is prepared before its cases."""
    records: Records = {}
    with postgres_while_needed() as pg:
        for case, side in plan(args.groups):
            if case.group == "ingest" and INGEST_INPUT not in records:
                records[INGEST_INPUT] = prepare_ingest(args)
            records[(case.key, side)] = run_one(case, side, args, sizes, pg)
        if pg.server is not None:
            records[INGEST_INPUT]["postgres_start_s"] = pg.start_s
    return records


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def preflight(args: argparse.Namespace) -> str:
    """Check that the engine runs on a tiny panel and returns what the cases expect; name it."""
    record = run_worker("preflight", "ours", args)
    if "error" in record:
        raise EngineFailedError(f"the engine preflight failed: {record['error']}")
    return str(record["engine"])


def header(args: argparse.Namespace, engine: str | None) -> list[str]:
    """What ran where: date, machine, versions, engine (``None``: no engine case), mode."""
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("numpy", "numba", "dask", "distributed", "esda", "libpysal")
    )
    io_versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("pandas", "pyarrow", "sqlalchemy", "psycopg")
    )
    lines = [
        f"AlpClusters benchmark, {dt.datetime.now():%Y-%m-%d %H:%M}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}",
        f"  {versions}",
        f"  {io_versions}",
    ]
    if engine is not None:
        lines += [
            f"  ours: {engine}",
            "  ours runs on scheduler='threads' (all cores) in cases 1-2, on LocalClusters in "
            "case 3; esda runs with n_jobs=1",
        ]
    elif "cold" in args.groups:
        lines.append("  ours: geo.hotspots.gi_star")
    if "ingest" in args.groups:
        lines.append(
            "  case 5, ours: geo.store.Store + geo.uploads.upload; ref: pandas.read_csv + "
            "DataFrame.to_sql (defaults)"
        )
    if "pages" in args.groups:
        lines.append(
            "  case 7, ours: GET /maps/analyses/{id} in Debian's headless Chromium (Playwright); "
            "ref: folium.Map + folium.GeoJson of the same regions, served by the same server"
        )
    if args.quick:
        lines.append("  QUICK MODE: reduced sizes to check the harness; not the benchmark")
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(GROUPS),
        help=f"comma-separated groups to run (default: all of {','.join(GROUPS)})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the harness")
    parser.add_argument(
        "--esda-series",
        type=int,
        default=None,
        help="time esda on this many atlas series and extrapolate linearly (default: all)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="outputs and results.json")
    args = parser.parse_args(argv)
    groups = tuple(g.strip() for g in args.only.split(",") if g.strip())
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        parser.error(f"unknown group(s) {unknown}; choose from {list(GROUPS)}")
    args.groups = groups
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    status = 0
    if "rasters" in args.groups:  # case 8 runs its sides in processes of its own
        from bench.rasters import main as rasters_main

        print("case 8, zonal statistics of a 20,000 x 20,000 raster over the 272 Alpine NUTS-3 "
              "regions; ref: rasterstats on a 4,000 x 4,000 one (bench/rasters.py)")  # fmt: skip
        status = rasters_main(["--quick"] if args.quick else [])
        args.groups = tuple(g for g in args.groups if g != "rasters")
        if not args.groups:
            return status
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    try:
        engine = preflight(args) if set(args.groups) & set(ENGINE_GROUPS) else None
        records = run_all(args, sizes)
    except EngineFailedError as exc:
        print(f"bench: cannot benchmark the engine.\n  {exc}", file=sys.stderr)
        return 2
    print(render(records, header(args, engine)))
    print(f"\n  total wall time {time.perf_counter() - started:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    dump = [{"case": c, "side": s, **r} for (c, s), r in records.items()]
    (args.out / "results.json").write_text(json.dumps(dump, indent=2, default=float))
    return max(status, 1 if any("error" in r for r in records.values()) else 0)


if __name__ == "__main__":
    sys.exit(main())
