"""The hot-spot engine: many series at once, regions chunked over dask workers.

A panel of series (indicators x years) over one layer is split into batches of series that
share their missing values (:func:`geo.hotspots.batches`). Every batch becomes dask tasks:
conditional-permutation counts for chunks of regions, and global Moran permutations in
blocks. All tasks of all batches form one graph, computed on the threaded scheduler or a
``dask.distributed`` cluster; no task holds a regions x permutations matrix. The draws
depend only on the seed, so every scheduler and chunking gives identical numbers.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from geo._kernels import crand_counts, moran_counts
from geo.hotspots import (
    GLOBAL_PERMUTATION_LIMIT,
    Batch,
    HotSpotResult,
    Options,
    batches,
    finish,
    untested,
)
from geo.weights import SpatialWeights

Progress = Callable[[int, int], None]
MIN_CHUNK = 4096
GLOBAL_BLOCK = 128  # global Moran permutations per task


def connect(scheduler: str) -> Any:
    """The dask scheduler named by a setting: ``"threads"`` or ``"sync"`` as they are, an
    address such as ``tcp://host:8786`` as a ``distributed.Client``."""
    if "://" in scheduler:
        from distributed import Client

        return Client(scheduler)
    return scheduler


def run_panel(
    values: np.ndarray,
    weights: SpatialWeights,
    method: str,
    opts: Options,
    *,
    chunk_size: int | None = None,
    scheduler: Any = "threads",
    progress: Progress | None = None,
) -> list[HotSpotResult]:
    """Local statistics of every series (row) of ``values``, in input order.

    Parameters
    ----------
    values : (S, n) float
        One row per series over the regions of ``weights``; NaN marks a missing value.
    chunk_size : int, optional
        Regions per permutation task; by default about four tasks per core.
    scheduler : str or distributed.Client
        Anything ``dask.compute`` accepts.
    progress : callable, optional
        Called with ``(tasks done, tasks in all)`` as tasks finish.
    """
    groups = batches(values, weights, method)
    if scheduler == "sync" and progress is None:
        counted = [_count_here(b, opts) for b in groups]
    else:
        counted = _count_with_dask(groups, opts, chunk_size, scheduler, progress)
    out: dict[int, HotSpotResult] = {}
    for batch, (counts, gcounts) in zip(groups, counted, strict=True):
        results = finish(batch, counts, gcounts, weights.ids, opts)
        out.update(zip(batch.series, results, strict=True))
    return [
        out.get(s) or untested(values[s], weights.ids, method, opts) for s in range(values.shape[0])
    ]


Counts = tuple[np.ndarray, np.ndarray] | None


def _count_here(batch: Batch, opts: Options) -> tuple[Counts, Counts]:
    """Local and global permutation counts of one batch, in this thread, without dask."""
    ip, ix = batch.weights.csr
    seed = np.uint64(opts.seed)
    counts = gcounts = None
    if opts.permutations:
        rows = np.arange(batch.weights.n, dtype=np.int64)
        counts = crand_counts(
            batch.data, ip, ix, rows, np.int64(opts.permutations), seed, np.int64(batch.kmax)
        )
    if opts.global_permutations and batch.weights.n <= GLOBAL_PERMUTATION_LIMIT:
        gcounts = moran_counts(
            batch.centred, ip, ix, np.int64(0), np.int64(opts.global_permutations), seed
        )
    return counts, gcounts


def _count_with_dask(
    groups: list[Batch],
    opts: Options,
    chunk_size: int | None,
    scheduler: Any,
    progress: Progress | None,
) -> list[tuple[Counts, Counts]]:
    """The counts of every batch from one dask graph of region-chunk and global tasks."""
    plan = [_tasks(b, opts, chunk_size, scheduler) for b in groups]
    flat = [t for local, glob in plan for t in (*(task for _, task in local), *glob)]
    done = compute(flat, scheduler, progress)
    out: list[tuple[Counts, Counts]] = []
    at = 0
    for batch, (local, glob) in zip(groups, plan, strict=True):
        parts, at = done[at : at + len(local)], at + len(local)
        gparts, at = done[at : at + len(glob)], at + len(glob)
        counts = _join([rows for rows, _ in local], parts, batch) if parts else None
        out.append((counts, _sum(gparts) if gparts else None))
    return out


def _auto_chunk(n: int) -> int:
    return max(MIN_CHUNK, math.ceil(n / (4 * (os.cpu_count() or 1))))


def row_chunks(cardinalities: np.ndarray, chunk: int) -> list[np.ndarray]:
    """Regions grouped by neighbour count, large groups split into pieces of ``chunk``.

    The kernel shares its permuted sums among the regions with the same neighbour count,
    so a task that holds whole groups does the least work.
    """
    order = np.argsort(cardinalities, kind="stable")
    bounds = np.flatnonzero(np.diff(cardinalities[order])) + 1
    out: list[np.ndarray] = []
    for group in np.split(order, bounds):
        out.extend(group[i : i + chunk] for i in range(0, len(group), chunk))
    return [np.sort(g).astype(np.int64) for g in out if len(g)]


def _tasks(
    batch: Batch, opts: Options, chunk_size: int | None, scheduler: Any
) -> tuple[list[tuple[np.ndarray, Any]], list[Any]]:
    """Delayed permutation-count tasks of one batch: region chunks, global-Moran blocks."""
    n = batch.weights.n
    data, indptr, indices, centred = (
        _share(a, scheduler)
        for a in (
            batch.data,
            *batch.weights.csr,
            batch.centred,
        )
    )
    import dask

    seed, perms = np.uint64(opts.seed), np.int64(opts.permutations)
    local = []
    if opts.permutations:
        kernel = dask.delayed(local_task, pure=False)  # pure=True would hash every array
        chunk = chunk_size or _auto_chunk(n)
        for rows in row_chunks(batch.weights.cardinalities, chunk):
            task = kernel(data, indptr, indices, rows, perms, seed, np.int64(batch.kmax))
            local.append((rows, task))
    glob = []
    total = opts.global_permutations
    if total and n <= GLOBAL_PERMUTATION_LIMIT:
        kernel = dask.delayed(global_task, pure=False)
        for first in range(0, total, GLOBAL_BLOCK):
            last = min(total, first + GLOBAL_BLOCK)
            glob.append(kernel(centred, indptr, indices, np.int64(first), np.int64(last), seed))
    return local, glob


def local_task(*args: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`geo._kernels.crand_counts` as a task. Tasks name plain functions, so a worker
    imports the kernel (and its compiled code from numba's disk cache) instead of
    unpickling a dispatcher and compiling it again."""
    return crand_counts(*args)


def global_task(*args: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`geo._kernels.moran_counts` as a task (see :func:`local_task`)."""
    return moran_counts(*args)


def _share(array: np.ndarray, scheduler: Any) -> Any:
    """One graph key per array (scattered once to a distributed cluster)."""
    import dask

    if hasattr(scheduler, "scatter"):
        # hash=False: a repeated call must not reuse a key the last call is releasing
        return scheduler.scatter(array, broadcast=False, hash=False)
    return dask.delayed(array, name=f"array-{uuid.uuid4().hex}")  # named: no hashing


def _join(
    rows: Sequence[np.ndarray], parts: Sequence[tuple[np.ndarray, np.ndarray]], batch: Batch
) -> tuple[np.ndarray, np.ndarray]:
    """Counts of all regions from the per-chunk counts."""
    shape = (len(batch.series), batch.weights.n)
    ge, le = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    for idx, (g, l_) in zip(rows, parts, strict=True):
        ge[:, idx], le[:, idx] = g, l_
    return ge, le


def _sum(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    return sum(p[0] for p in parts), sum(p[1] for p in parts)  # type: ignore[return-value]


def compute(tasks: list[Any], scheduler: Any, progress: Progress | None = None) -> list[Any]:
    """Compute delayed tasks on a scheduler name or a distributed client, with progress."""
    import dask

    if not tasks:
        return []
    if hasattr(scheduler, "compute"):  # a distributed.Client
        from distributed import as_completed

        futures = scheduler.compute(tasks)
        for count, _ in enumerate(as_completed(futures), start=1):
            if progress:
                progress(count, len(futures))
        return list(scheduler.gather(futures))
    if progress is None:
        return list(dask.compute(*tasks, scheduler=scheduler))
    from dask.callbacks import Callback

    state = {"done": 0, "total": 0}

    def start_state(_dsk: Any, st: dict[str, Any]) -> None:
        state["total"] = len(st["ready"]) + len(st["waiting"])

    def posttask(*_args: Any) -> None:
        state["done"] += 1
        progress(state["done"], max(state["total"], state["done"]))

    with Callback(start_state=start_state, posttask=posttask):
        return list(dask.compute(*tasks, scheduler=scheduler))


def panel_cube(
    frame: Any,
    indicators: Sequence[str],
    years: Sequence[int],
    ids: Sequence[str],
    chunk_size: int | None = None,
) -> Any:
    """Observations (``indicator, geo, time, value``) as a dask-backed (indicator, time,
    region) cube aligned with ``ids``; missing cells are NaN."""
    import xarray as xr

    series = frame.set_index(["indicator", "time", "geo"])["value"]
    cube = (
        xr.DataArray.from_series(series)
        .reindex(indicator=list(indicators), time=list(years), geo=list(ids))
        .rename(geo="region")
    )
    return cube.astype(float).chunk({"region": chunk_size or _auto_chunk(len(ids))})
