"""Cold start: from launching ``python -c`` to the first Gi* result on the Alpine NUTS-3 layer.

Each launch is a fresh interpreter that imports geo, loads the boundaries and GDP per head
through the project's loaders, builds queen weights and computes Gi* (ours:
``geo.hotspots.gi_star``; esda: ``G_Local`` on the regions with a value). The child prints
``time.monotonic()`` right after the result; CLOCK_MONOTONIC is system-wide on Linux, so
the difference with the parent's reading before the launch is the time to the result
(interpreter teardown excluded). numba's on-disk cache is as earlier runs left it: ours
loads its compiled kernels from it, esda compiles its own (it does not cache).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.cases import ESDA, OURS
from geo.settings import REPO_ROOT

PRELUDE = """
import json, resource, time, warnings
warnings.filterwarnings("ignore")
from geo.areas import resolve
from geo.boundaries import load_boundaries
from geo.indicators import load_eurostat
from geo.settings import Settings
from geo.weights import build_weights
settings = Settings()
layer = load_boundaries(settings)
ids = resolve(settings, layer, "alpine-space", 3)
gdp, _ = load_eurostat(settings, "nama_10r_3gdp")
gdp = gdp[(gdp["unit"] == "EUR_HAB") & (gdp["time"].astype(int) == {year})]
values = gdp.set_index("geo")["value"].astype(float).reindex(ids)
weights = build_weights(layer.loc[ids], "queen")
"""

STATISTIC = {
    OURS: """
from geo.hotspots import gi_star
result = gi_star(values, weights, permutations={permutations}, seed=1)
""",
    ESDA: """
import esda
import scipy.sparse as sp
from libpysal.weights import WSP
valid = values.notna().to_numpy()
w = WSP(sp.csr_matrix(weights.subset(valid).adjacency)).to_W(silence_warnings=True)
result = esda.G_Local(
    values.to_numpy()[valid], w, transform="B", star=True,
    permutations={permutations}, n_jobs=1, seed=1,
)
""",
}

REPORT = """
done = time.monotonic()
rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"done": done, "rss_kb": rss_kb, "regions": len(ids)}}))
"""


class ColdStartError(RuntimeError):
    """A cold-start child process failed."""


def script(side: str, year: int, permutations: int) -> str:
    """The ``python -c`` program of one side."""
    return (PRELUDE + STATISTIC[side] + REPORT).format(year=year, permutations=permutations)


def launch(program: str) -> tuple[float, float, int]:
    """Run ``program`` in a fresh interpreter; seconds to its result, peak RSS (MiB), regions."""
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    if proc.returncode != 0:
        raise ColdStartError(proc.stderr.strip()[-2000:] or f"exit status {proc.returncode}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    return data["done"] - start, data["rss_kb"] / 1024, int(data["regions"])


def cold_start(side: str, year: int, permutations: int, launches: int) -> dict[str, Any]:
    """Median launch-to-result time over ``launches`` fresh processes, and the peak RSS."""
    program = script(side, year, permutations)
    runs = [launch(program) for _ in range(launches)]
    times = [t for t, _, _ in runs]
    return {
        "case": "cold",
        "side": side,
        "method": "gi_star",
        "series": 1,
        "n": runs[0][2],
        "permutations": permutations,
        "input": f"Alpine Space NUTS-3, GDP per head {year}",
        "time_s": statistics.median(times),
        "runs": times,
        "rss_mb": max(rss for _, rss, _ in runs),
    }
