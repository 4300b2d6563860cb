"""The benchmark cases: sizes, targets and the worker runs each case needs.

Every (case, side) pair runs in a fresh ``python -m bench.worker CASE SIDE`` process, so
its peak RSS is its own. The cold-start case launches its own ``python -c`` processes.
"""

from __future__ import annotations

from dataclasses import dataclass

OURS, ESDA, PANDAS = "ours", "esda", "pandas"
SIDES = (OURS, ESDA)
ALL_SIDES = (OURS, ESDA, PANDAS)  # pandas: the baseline of the ingest cases
PYGEOAPI_PARQUET, PYGEOAPI_GEOJSON = "pygeoapi-parquet", "pygeoapi-geojson"  # case 6
PAGES_SIDE = "chromium"  # case 7: one record holds ours and the folium reference

# Targets printed in the table.
ATLAS_MIN_RATIO = 20.0
FINE_MIN_RATIO = 5.0
SCALEOUT_MIN_SPEEDUP = 1.6
COLD_START_MAX_S = 3.0
INGEST_MIN_RATIO = 3.0  # rows/s of ours over pandas read_csv + to_sql
INGEST_MAX_RSS_MB = 1.5e9 / 2**20  # 1.5 GB (10^9 bytes) = 1,430.5 MiB, ours' peak RSS
OGC_MIN_RPS_RATIO = 2.0  # requests/s of ours over pygeoapi's, p50 latency not above its
# Case 7, per map: the page's HTML below this many bytes (10^6 B = 1 MB) and the median
# time to interactive below this many seconds.
PAGES_TARGETS = {"alpine": (1.5e6, 2.0), "europe": (4e6, 4.0)}

# Scale-out: the same chunk size for 1 and 2 workers, giving this many tasks per worker
# on the 2-worker cluster (and twice as many on the 1-worker cluster). Each task has a
# fixed cost on a cluster (its results travel back), so fewer tasks are faster.
MAX_WORKERS = 2
TASKS_PER_WORKER = 1


@dataclass(frozen=True)
class Sizes:
    """Problem sizes; :data:`FULL` is the benchmark, :data:`QUICK` checks the harness."""

    atlas_permutations: int = 9999
    esda_series: int | None = None  # atlas series esda is timed on; None: all of them
    lattice_side: int = 316
    lattice_permutations: int = 999
    million_side: int = 1000
    cold_permutations: int = 999
    cold_launches: int = 3
    cold_year: int = 2018
    ingest_indicators: int = 165  # x ingest_years x 1,514 NUTS-3 regions = 9,992,400 rows
    ingest_years: int = 40


FULL = Sizes()
QUICK = Sizes(
    atlas_permutations=999,
    esda_series=10,
    lattice_side=100,
    million_side=300,
    cold_launches=1,
    ingest_indicators=6,
    ingest_years=10,
)


@dataclass(frozen=True)
class Case:
    """One benchmark case as the worker knows it."""

    key: str
    group: str
    method: str
    sides: tuple[str, ...]
    workers: int = 0  # >0: ours on a LocalCluster with this many worker processes


CASES = (
    Case("atlas-gi", "atlas", "gi_star", SIDES),
    Case("atlas-moran", "atlas", "local_moran", SIDES),
    Case("fine-gi", "fine", "gi_star", SIDES),
    Case("fine-moran", "fine", "local_moran", SIDES),
    Case("cluster-1", "scaleout", "gi_star", (OURS,), workers=1),
    Case("cluster-2", "scaleout", "gi_star", (OURS,), workers=2),
    Case("million-1", "scaleout", "gi_star", (OURS,), workers=1),
    Case("million-2", "scaleout", "gi_star", (OURS,), workers=2),
    Case("cold", "cold", "gi_star", SIDES),
    Case("ingest-sqlite", "ingest", "ingest", (OURS, PANDAS)),
    Case("ingest-postgres", "ingest", "ingest", (OURS, PANDAS)),
    Case("ogc-items", "ogc", "ogc", (OURS, PYGEOAPI_PARQUET, PYGEOAPI_GEOJSON)),
    Case("pages-map", "pages", "pages", (PAGES_SIDE,)),
)
BY_KEY = {case.key: case for case in CASES}
GROUPS = ("atlas", "fine", "scaleout", "cold", "ingest", "ogc", "pages", "rasters")
ENGINE_GROUPS = ("atlas", "fine", "scaleout")  # those that need the engine preflight
WORKER_CASES = tuple(case.key for case in CASES if case.group not in ("cold", "ogc", "pages"))


def plan(groups: tuple[str, ...]) -> list[tuple[Case, str]]:
    """The (case, side) runs of the selected groups, in table order."""
    return [(case, side) for case in CASES if case.group in groups for side in case.sides]


def lattice_side(case: Case, sizes: Sizes) -> int:
    """Side of the square lattice of a lattice case."""
    return sizes.million_side if case.key.startswith("million") else sizes.lattice_side


def chunk_size(n: int) -> int:
    """Regions per task on the clusters: :data:`TASKS_PER_WORKER` tasks per worker at most."""
    return -(-n // (TASKS_PER_WORKER * MAX_WORKERS))
