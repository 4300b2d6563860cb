"""The dask analysis pipeline: same numbers on every scheduler and in a fresh process.

References: the threaded run (for the sync, distributed and fresh-process runs), esda for
the statistics of the pipeline's regions table and the demo store for the missing regions.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import warnings

import esda
import numpy as np
import pandas as pd
import pytest
from libpysal.weights import Queen

from geo.analysis import AnalysisParams, run_analysis
from geo.areas import resolve
from geo.boundaries import load_boundaries

PARAMS = AnalysisParams(
    dataset="nama_10r_3gdp",
    years=[2016, 2018],
    correction="none",
    alpha=0.1,
    permutations=999,
)
METHODS = ["gi_star", "local_moran"]


def params_for(method: str, **extra) -> AnalysisParams:
    return PARAMS.model_copy(update={"method": method, **extra})


@pytest.fixture(scope="module", params=METHODS, ids=["gi", "lisa"])
def threaded(request, settings, demo_store):
    """The reference run on dask's threaded scheduler."""
    return run_analysis(settings, demo_store, params_for(request.param), scheduler="threads")


def test_threaded_run_has_both_years_and_catchments(threaded, settings):
    """Precondition: both years, every Alpine NUTS-3 region, and some catchments."""
    ids = resolve(settings, load_boundaries(settings), "alpine-space", 3)
    regions = threaded.regions
    assert sorted(regions["year"].unique()) == [2016, 2018]
    for _, frame in regions.groupby("year"):
        assert list(frame["region"]) == ids
    assert len(threaded.catchments) >= 1
    assert threaded.summary["n_regions"] == len(ids)


def test_sync_equals_threads(threaded, settings, demo_store):
    """The synchronous scheduler gives identical tables and summary."""
    sync = run_analysis(settings, demo_store, threaded.params, scheduler="sync")
    pd.testing.assert_frame_equal(sync.regions, threaded.regions)
    pd.testing.assert_frame_equal(sync.catchments, threaded.catchments)
    assert sync.summary == threaded.summary


@pytest.fixture(scope="module")
def dask_client(request):
    """A two-process LocalCluster, closed in the finalizer."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    client = distributed.Client(cluster)

    def close() -> None:
        client.close()
        cluster.close()

    request.addfinalizer(close)
    return client


@pytest.mark.slow
def test_distributed_equals_threads(threaded, settings, demo_store, dask_client):
    """A distributed.Client with two worker processes gives identical tables."""
    dist = run_analysis(settings, demo_store, threaded.params, scheduler=dask_client)
    pd.testing.assert_frame_equal(dist.regions, threaded.regions)
    pd.testing.assert_frame_equal(dist.catchments, threaded.catchments)
    assert dist.summary == threaded.summary


FRESH = """
import hashlib, json, sys
import numpy as np
from geo.analysis import AnalysisParams, run_analysis
from geo.settings import Settings
from geo.store import Store

settings = Settings(_env_file=None)
params = AnalysisParams.model_validate_json(sys.argv[1])
out = run_analysis(settings, Store(settings.database_url), params, scheduler="sync")
p = out.regions["p_sim"].to_numpy(dtype=np.float64)
print(json.dumps({
    "region": out.regions["region"].tolist(),
    "p_sim": p.tolist(),
    "sha256": hashlib.sha256(np.ascontiguousarray(p).tobytes()).hexdigest(),
    "moran_p": [s["global_moran"]["p_sim"] for s in out.summary["series"]],
}))
"""


@pytest.mark.slow
def test_fresh_process_gives_identical_p_values(threaded, settings, tmp_path):
    """A new Python process with the same seed prints the same pseudo p-values, bit for bit."""
    env = {
        **os.environ,
        "ALPCLUSTERS_DATA_MIRROR": str(settings.data_mirror),
        "ALPCLUSTERS_DATABASE_URL": settings.database_url,
        "ALPCLUSTERS_ALLOW_DOWNLOAD": "false",
        "ALPCLUSTERS_NUTS_DIR": str(settings.nuts_dir),
    }
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, threaded.params.model_dump_json()],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    p = threaded.regions["p_sim"].to_numpy(dtype=np.float64)
    assert got["region"] == threaded.regions["region"].tolist()
    assert np.array_equal(np.array(got["p_sim"], dtype=float), p, equal_nan=True)
    assert got["sha256"] == hashlib.sha256(np.ascontiguousarray(p).tobytes()).hexdigest()
    assert got["moran_p"] == [s["global_moran"]["p_sim"] for s in threaded.summary["series"]]


def test_other_seed_changes_p_values(threaded, settings, demo_store):
    """Another seed gives other pseudo p-values (but the same deterministic statistics)."""
    params = threaded.params.model_copy(update={"seed": threaded.params.seed + 1})
    other = run_analysis(settings, demo_store, params, scheduler="sync")
    a, b = threaded.regions, other.regions
    assert not np.array_equal(a["p_sim"], b["p_sim"], equal_nan=True)
    stat = "z" if threaded.params.method == "gi_star" else "I"
    np.testing.assert_array_equal(a[stat], b[stat])


@pytest.mark.filterwarnings("ignore:The weights matrix is not fully connected:UserWarning")
def test_regions_table_matches_esda(threaded, settings, demo_store):
    """Per series: statistics equal esda on the regions with a value; missing ones listed."""
    layer = load_boundaries(settings)
    for (indicator, year), frame in threaded.regions.groupby(["indicator", "year"]):
        obs = demo_store.observations("nama_10r_3gdp", [indicator], [year])
        values = obs.set_index("geo")["value"].reindex(frame["region"])
        missing = list(values.index[values.isna()])
        assert "LI000" in missing
        np.testing.assert_array_equal(frame["value"].to_numpy(), values.to_numpy())
        assert list(frame["region"][frame["status"] == "missing"]) == missing
        valid = values.notna().to_numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = Queen.from_dataframe(layer.loc[values.index[valid]], use_index=True)
        y = values.to_numpy()[valid]
        summary = next(s for s in threaded.summary["series"] if s["year"] == year)
        assert summary["missing"] == missing
        moran = esda.Moran(y, w, transformation="r", permutations=0)
        np.testing.assert_allclose(summary["global_moran"]["I"], moran.I, rtol=1e-10)
        if threaded.params.method == "gi_star":
            ref = esda.G_Local(y, w, transform="B", star=True, permutations=0).Zs
            ours = frame["z"].to_numpy()[valid]
        else:
            ref = esda.Moran_Local(y, w, transformation="r", permutations=0).Is
            ours = frame["I"].to_numpy()[valid]
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)
        assert summary["n_hot"] == int(frame["hot"].sum())
