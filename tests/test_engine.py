"""The batched engine: exact counts, esda parity on synthetic lattices, identical results on
every scheduler and chunking.

References: a direct re-implementation of conditional randomisation over the same draws (for
the kernel's counts), PySAL esda on libpysal lattices (``lat2W``), and the sync run.
"""

from __future__ import annotations

import warnings

import esda
import numpy as np
import pytest
import scipy.sparse as sp
from libpysal.weights import W, lat2W

from geo._kernels import crand_counts, draw_matrix, hits, neighbour_sums
from geo.engine import row_chunks, run_panel
from geo.hotspots import Options
from geo.weights import SpatialWeights, WeightsSpec

LATTICES = [(6, 7, True), (12, 9, False), (20, 15, False)]
LATTICE_IDS = ["6x7-rook", "12x9-queen", "20x15-queen"]


def lattice(rows: int, cols: int, rook: bool, isolates: int = 0) -> tuple[SpatialWeights, W]:
    """A libpysal lattice; ``isolates`` regions lose every link (in both directions)."""
    w = lat2W(rows, cols, rook=rook)
    adj = sp.csr_array(w.sparse, dtype=float)
    if isolates:
        cut = np.arange(isolates) * 7 % w.n
        adj = adj.tolil()
        adj[cut, :] = 0
        adj[:, cut] = 0
        adj = sp.csr_array(adj)
        adj.eliminate_zeros()
    adj.sort_indices()
    ids = np.array([f"R{i:04d}" for i in range(w.n)])
    ours = SpatialWeights(ids, adj, WeightsSpec("rook" if rook else "queen"))
    neighbours = {i: adj.indices[adj.indptr[i] : adj.indptr[i + 1]].tolist() for i in range(w.n)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours, W(neighbours)


def series(n: int, count: int, seed: int) -> np.ndarray:
    """Skewed, spatially unstructured test series generated from a seed."""
    return np.random.default_rng(seed).lognormal(mean=3.0, sigma=0.8, size=(count, n))


def brute_counts(values: np.ndarray, adj: sp.csr_array, perms: int, seed: int) -> tuple:
    """Conditional randomisation done the slow way over the kernel's draw sequences."""
    n = adj.shape[0]
    card = np.diff(adj.indptr)
    kmax = int(card.max())
    draws = draw_matrix(np.uint64(seed), np.int64(perms), np.int64(min(kmax + 1, n)), np.int64(n))
    ge = np.zeros((values.shape[1], n), dtype=np.int64)
    le = np.zeros_like(ge)
    for i in range(n):
        k = card[i]
        if k == 0:
            continue
        observed = values[adj.indices[adj.indptr[i] : adj.indptr[i + 1]]].sum(axis=0)
        for p in range(perms):
            picked = [j for j in draws[p] if j != i][:k]
            assert len(set(picked)) == k and i not in picked
            total = values[picked].sum(axis=0)
            ge[:, i] += total >= observed
            le[:, i] += total <= observed
    return ge, le


@pytest.mark.parametrize("shape", LATTICES, ids=LATTICE_IDS)
def test_kernel_counts_equal_direct_conditional_randomisation(shape):
    """Sorted sums, binary search and self-draw fixes give exactly the direct counts."""
    w, _ = lattice(*shape, isolates=2)
    values = np.ascontiguousarray(series(w.n, 3, seed=5).T)
    adj = w.adjacency
    ip, ix = adj.indptr.astype(np.int64), adj.indices.astype(np.int64)
    rows = np.arange(w.n, dtype=np.int64)
    width = np.int64(min(w.cardinalities.max() + 1, w.n))
    draws = draw_matrix(np.uint64(11), np.int64(199), width, np.int64(w.n))
    observed = neighbour_sums(values, ip, ix)
    ge, le = crand_counts(values, observed, ip, ix, rows, draws, *hits(draws, np.int64(w.n)))
    ref_ge, ref_le = brute_counts(values, adj, 199, 11)
    np.testing.assert_array_equal(ge, ref_ge)
    np.testing.assert_array_equal(le, ref_le)


def test_row_chunks_cover_every_region_once():
    """Chunks group regions by neighbour count and cover each region exactly once."""
    w, _ = lattice(20, 15, False, isolates=3)
    chunks = row_chunks(w.cardinalities, 17)
    joined = np.sort(np.concatenate(chunks))
    np.testing.assert_array_equal(joined, np.arange(w.n))
    assert all(len(np.unique(w.cardinalities[c])) == 1 for c in chunks)
    assert max(len(c) for c in chunks) <= 17


@pytest.fixture(scope="module", params=LATTICES, ids=LATTICE_IDS)
def case(request):
    """A lattice with isolates and five series, two of them with missing values."""
    w, esda_w = lattice(*request.param, isolates=2)
    values = series(w.n, 5, seed=sum(request.param[:2]))
    values[1, [3, 8, 21]] = np.nan
    values[4, [0, 5]] = np.nan
    return w, esda_w, values


def _esda_subset(esda_w: W, keep: np.ndarray) -> W:
    ids = np.flatnonzero(keep)
    pos = {old: new for new, old in enumerate(ids)}
    neighbours = {pos[i]: [pos[j] for j in esda_w.neighbors[i] if j in pos] for i in ids}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return W(neighbours)


@pytest.mark.parametrize("method", ["gi_star", "local_moran"])
def test_batched_panel_matches_esda(case, method):
    """Every series of a batched panel equals esda run on that series alone."""
    w, esda_w, values = case
    results = run_panel(values, w, method, Options(999, 3, correction="none"), scheduler="sync")
    for row, result in zip(values, results, strict=True):
        keep = np.isfinite(row)
        sub = _esda_subset(esda_w, keep)
        ok = result.status[keep] == "ok"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if method == "gi_star":
                ref = esda.G_Local(
                    row[keep], sub, transform="B", star=True, permutations=999, seed=1, n_jobs=1
                )
                np.testing.assert_allclose(result.stats["z"][keep][ok], ref.Zs[ok], rtol=1e-10)
            else:
                ref = esda.Moran_Local(
                    row[keep], sub, transformation="r", permutations=999, seed=1, n_jobs=1
                )
                np.testing.assert_allclose(
                    result.stats["I"][keep][ok], ref.Is[ok], rtol=1e-10, atol=1e-12
                )
        ours = result.p_sim[keep][ok]
        theirs = np.minimum(1.0, 2 * ref.p_sim[ok])
        q = np.clip(theirs / 2, 1e-3, 0.5)
        assert np.all(np.abs(ours - theirs) <= 12 * np.sqrt(2 * q * (1 - q) / 999) + 4 / 1000)
        assert np.all(np.isnan(result.p_sim[~keep])) and not result.significant[~keep].any()
        assert not result.significant[result.status == "isolate"].any()
        assert np.all(result.p_sim[np.isfinite(result.p_sim)] <= 1.0)


def _table(results):
    return np.stack(
        [
            r.to_frame().drop(columns=["status"]).to_numpy(dtype=float)
            for r in results
            if r.method == "gi_star"
        ]
        or [np.zeros(1)]
    )


def _global(result):
    gm = result.global_moran
    return np.array([gm.I, gm.z_norm, gm.p_norm, gm.p_sim]).tobytes()  # NaN-safe, bitwise


@pytest.mark.parametrize("chunk", [None, 5, 37], ids=["auto", "chunk5", "chunk37"])
def test_chunking_and_threads_are_bit_identical(case, chunk):
    """Any chunk size on the threaded scheduler gives the sync run's numbers exactly."""
    w, _, values = case
    opts = Options(499, 7)
    ref = run_panel(values, w, "gi_star", opts, scheduler="sync")
    got = run_panel(values, w, "gi_star", opts, scheduler="threads", chunk_size=chunk)
    np.testing.assert_array_equal(_table(got), _table(ref))
    assert [_global(r) for r in got] == [_global(r) for r in ref]


@pytest.fixture(scope="module")
def client():
    """One two-process dask.distributed cluster for this module."""
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


@pytest.mark.slow
@pytest.mark.parametrize("chunk", [9, 40], ids=["chunk9", "chunk40"])
def test_local_cluster_is_bit_identical(case, client, chunk):
    """A two-process dask.distributed cluster with small chunks gives identical numbers."""
    w, _, values = case
    opts = Options(499, 7)
    ref = run_panel(values, w, "gi_star", opts, scheduler="sync")
    seen = []
    got = run_panel(
        values,
        w,
        "gi_star",
        opts,
        scheduler=client,
        chunk_size=chunk,
        progress=lambda done, total: seen.append((done, total)),
    )
    np.testing.assert_array_equal(_table(got), _table(ref))
    assert [_global(r) for r in got] == [_global(r) for r in ref]
    assert seen and seen[-1][0] == seen[-1][1]


def test_progress_reaches_the_total(case):
    """The progress callback counts every task up to the total on the threaded scheduler."""
    w, _, values = case
    seen = []
    run_panel(
        values,
        w,
        "local_moran",
        Options(99, 1),
        scheduler="threads",
        chunk_size=10,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen[-1][0] == seen[-1][1] and len(seen) == seen[-1][1]


def test_series_with_too_few_values_is_untested(case):
    """A series with fewer than three values is reported, untested, never significant."""
    w, _, values = case
    panel = values[:2].copy()
    panel[1, 2:] = np.nan
    results = run_panel(panel, w, "local_moran", Options(99, 1), scheduler="sync")
    short = results[1]
    assert list(short.status[:2]) == ["untested", "untested"]
    assert set(short.status[2:]) == {"missing"}
    assert not short.significant.any() and np.isnan(short.p_sim).all()
    assert set(short.stats["cluster"]) == {5}
    assert results[0].status[0] in ("ok", "isolate")


def test_global_moran_moments_on_an_asymmetric_graph():
    """On a knn graph (asymmetric), Moran's z under randomisation equals esda's z_rand."""
    from libpysal.weights import KNN

    rng = np.random.default_rng(4)
    points = rng.uniform(size=(150, 2))
    knn = KNN.from_array(points, k=4)
    adj = sp.csr_array(knn.sparse, dtype=float)
    adj.sort_indices()
    assert (adj != adj.T).nnz > 0, "the test needs an asymmetric graph"
    w = SpatialWeights(np.array([str(i) for i in range(150)]), adj, WeightsSpec("knn", k=4))
    y = rng.lognormal(size=150)
    (ours,) = run_panel(y[None, :], w, "gi_star", Options(99, 1), scheduler="sync")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = esda.Moran(y, knn, transformation="r", permutations=0)
    np.testing.assert_allclose(ours.global_moran.I, ref.I, rtol=1e-10)
    np.testing.assert_allclose(ours.global_moran.z_norm, ref.z_rand, rtol=1e-9)
