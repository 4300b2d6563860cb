"""The hot-spot engine: many series at once, regions chunked over dask workers.

A panel of series (indicators x years) over one layer is split into batches of series that
share their missing values (:func:`geo.hotspots.batches`). Every batch becomes dask tasks:
one per chunk of regions (:func:`geo.hotspots.chunk_stats`: neighbour sums, the local
statistics, conditional-permutation p-values and a share of global Moran's I), and global
Moran permutations in blocks. All tasks of all batches form one graph, computed on the
threaded scheduler or a ``dask.distributed`` cluster. A chunk task gets only its own rows
of the graph, and no task holds a regions x permutations matrix. Only the
multiple-testing correction, which needs every p-value of a series, runs on the client.
The draws depend only on the seed, so every scheduler and chunking gives identical
numbers.
"""

from __future__ import annotations

import math
import os
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from geo._kernels import moran_counts
from geo.hotspots import (
    GLOBAL_PERMUTATION_LIMIT,
    Batch,
    HotSpotResult,
    Options,
    batches,
    chunk_stats,
    finish,
    untested,
)
from geo.weights import SpatialWeights

Progress = Callable[[int, int], None]
MIN_CHUNK = 4096
GLOBAL_BLOCK = 128  # global Moran permutations per task
Piece = tuple[np.ndarray, np.ndarray, np.ndarray]  # rows, and their CSR indptr and indices

# Graph pieces per layer, kept while its SpatialWeights lives: numpy arrays for the local
# schedulers, futures on a distributed cluster (scattered once, spread over the workers).
_PLACED: weakref.WeakKeyDictionary[SpatialWeights, dict[tuple[str, int], Any]] = (
    weakref.WeakKeyDictionary()
)


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
        Regions per task; by default about four tasks per core.
    scheduler : str or distributed.Client
        Anything ``dask.compute`` accepts.
    progress : callable, optional
        Called with ``(tasks done, tasks in all)`` as tasks finish.
    """
    groups = batches(values, weights, method)
    if scheduler == "sync" and progress is None:
        done = [_run_here(b, opts) for b in groups]
    else:
        done = _run_with_dask(groups, opts, chunk_size, scheduler, progress)
    out: dict[int, HotSpotResult] = {}
    for batch, (rows, parts, gcounts) in zip(groups, done, strict=True):
        results = finish(batch, rows, parts, gcounts, weights.ids, opts)
        out.update(zip(batch.series, results, strict=True))
    return [
        out.get(s) or untested(values[s], weights.ids, method, opts) for s in range(values.shape[0])
    ]


Counts = tuple[np.ndarray, np.ndarray] | None
Done = tuple[list[np.ndarray], list[dict[str, np.ndarray]], Counts]


def _run_here(batch: Batch, opts: Options) -> Done:
    """One batch in this thread, without dask: the whole layer as one chunk."""
    w = batch.weights
    rows = np.arange(w.n, dtype=np.int64)
    part = chunk_stats(
        batch.method,
        batch.data,
        (rows, *w.csr),
        batch.consts,
        opts.permutations,
        opts.seed,
        batch.kmax,
    )
    gcounts = None
    if _global_permutations(batch, opts):
        gcounts = moran_counts(
            batch.centred,
            *w.csr,
            np.int64(0),
            np.int64(opts.global_permutations),
            np.uint64(opts.seed),
        )
    return [rows], [part], gcounts


def _global_permutations(batch: Batch, opts: Options) -> bool:
    return bool(opts.global_permutations) and batch.weights.n <= GLOBAL_PERMUTATION_LIMIT


def _run_with_dask(
    groups: list[Batch],
    opts: Options,
    chunk_size: int | None,
    scheduler: Any,
    progress: Progress | None,
) -> list[Done]:
    """The outputs of every batch from one dask graph of chunk and global-Moran tasks."""
    plan = [_tasks(b, opts, chunk_size, scheduler) for b in groups]
    flat = [t for _, local, glob in plan for t in (*local, *glob)]
    done = compute(flat, scheduler, progress)
    out: list[Done] = []
    at = 0
    for rows, local, glob in plan:
        parts, at = done[at : at + len(local)], at + len(local)
        gparts, at = done[at : at + len(glob)], at + len(glob)
        out.append((rows, parts, _sum(gparts) if gparts else None))
    return out


def _auto_chunk(n: int, scheduler: Any = None) -> int:
    """Regions per task: four tasks per local core, two per thread of a cluster (each task
    has a fixed cost there: shipping its results back)."""
    if hasattr(scheduler, "nthreads"):
        return max(MIN_CHUNK, math.ceil(n / (2 * max(1, sum(scheduler.nthreads().values())))))
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
) -> tuple[list[np.ndarray], list[Any], list[Any]]:
    """Delayed tasks of one batch: its region chunks (with their rows), global blocks."""
    import dask

    w = batch.weights
    rows, pieces = _placed(w, chunk_size or _auto_chunk(w.n, scheduler), scheduler)
    data = _share(batch.data, scheduler, broadcast=True)
    kernel = dask.delayed(chunk_task, pure=False)  # pure=True would hash every array
    local = [
        kernel(batch.method, data, piece, batch.consts, opts.permutations, opts.seed, batch.kmax)
        for piece in pieces
    ]
    glob = []
    if _global_permutations(batch, opts):
        kernel = dask.delayed(global_task, pure=False)
        centred = _share(batch.centred, scheduler)
        indptr, indices = (_share(a, scheduler) for a in w.csr)
        seed, total = np.uint64(opts.seed), opts.global_permutations
        for first in range(0, total, GLOBAL_BLOCK):
            last = np.int64(min(total, first + GLOBAL_BLOCK))
            glob.append(kernel(centred, indptr, indices, np.int64(first), last, seed))
    return rows, local, glob


def _placed(w: SpatialWeights, chunk: int, scheduler: Any) -> tuple[list[np.ndarray], list[Any]]:
    """The row chunks of a layer and their graph pieces where the tasks will find them,
    made once per layer, chunk size and cluster."""
    where = str(getattr(scheduler, "id", "local"))
    cache = _PLACED.setdefault(w, {})
    if (where, chunk) not in cache:
        rows = row_chunks(w.cardinalities, chunk)
        pieces: list[Any] = w.pieces(rows)
        if hasattr(scheduler, "scatter"):  # round-robin over the workers, one key each
            pieces = scheduler.scatter(pieces, hash=False, direct=True)
        cache[where, chunk] = (rows, pieces)
    return cache[where, chunk]


def chunk_task(*args: Any) -> dict[str, np.ndarray]:
    """:func:`geo.hotspots.chunk_stats` as a task. Tasks name plain functions, so a worker
    imports the kernels (and their compiled code from numba's disk cache) instead of
    unpickling a dispatcher and compiling it again."""
    return chunk_stats(*args)


def global_task(*args: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`geo._kernels.moran_counts` as a task (see :func:`chunk_task`)."""
    return moran_counts(*args)


def _share(array: np.ndarray, scheduler: Any, broadcast: bool = False) -> Any:
    """One graph key per array (scattered once to a distributed cluster)."""
    import dask

    if hasattr(scheduler, "scatter"):
        # hash=False: a repeated call must not reuse a key the last call is releasing
        return scheduler.scatter(array, broadcast=broadcast, hash=False, direct=True)
    return dask.delayed(array, name=f"array-{uuid.uuid4().hex}")  # named: no hashing


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
