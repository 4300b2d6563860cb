"""``python -m bench.worker CASE SIDE``: one side of one case in a fresh process.

The last line on stdout is a JSON record: the best warm time, every timed run, the first
(cold) call, the peak RSS of this process (``ru_maxrss``) and, on clusters, of every
worker. Statistics and p-values go to ``OUT/CASE-SIDE.npz`` for the agreement checks.
The ingest cases (``bench.ingest``) time one upload and record their checks instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.cases import (
    ALL_SIDES,
    BY_KEY,
    ESDA,
    OURS,
    QUICK,
    WORKER_CASES,
    Case,
    Sizes,
    chunk_size,
    lattice_side,
)
from bench.inputs import Panel, atlas_panel, lattice_panel
from bench.memory import peak_rss_mb, worker_peak_rss_mb
from bench.timing import Timed, best_of, timed

DEFAULT_OUT = Path(__file__).resolve().parent / "out"
STAT_KEY = {"gi_star": "z", "local_moran": "I"}  # the deterministic statistic compared


def engine_options(method: str, permutations: int, **extra: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`bench.engine.run_engine` shared by every case."""
    return {
        "method": method,
        "permutations": permutations,
        "seed": 1,
        "alpha": 0.05,
        "correction": "fdr",
        "inference": "permutation",
        **extra,
    }


def panel_for(case: Case, sizes: Sizes) -> Panel:
    """The input of a case: the atlas, or a lattice of the case's size."""
    if case.group == "atlas":
        return atlas_panel()
    return lattice_panel(lattice_side(case, sizes))


def permutations_for(case: Case, sizes: Sizes) -> int:
    return sizes.atlas_permutations if case.group == "atlas" else sizes.lattice_permutations


def ours_outputs(results: Sequence[Any], method: str) -> tuple[np.ndarray, np.ndarray]:
    """``(S, n)`` statistic (Gi* z or Local Moran I) and ``p_sim`` of run_panel's results."""
    key = STAT_KEY[method]
    stats = [np.asarray(r.stats.get(key, np.full(len(r.ids), np.nan)), float) for r in results]
    return np.vstack(stats), np.vstack([np.asarray(r.p_sim, dtype=float) for r in results])


def save(out: Path, case: Case, side: str, stat: np.ndarray, p: np.ndarray, rows: Any) -> str:
    """Write the outputs compared by :mod:`bench.checks`; return the file name."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{case.key}-{side}.npz"
    np.savez(path, stat=stat, p=p, rows=np.asarray(rows))
    return str(path)


def timing(runs: Timed[Any], scale: float = 1.0) -> dict[str, Any]:
    """The timing fields of a record; ``scale`` extrapolates from a subset of series."""
    fields: dict[str, Any] = {"time_s": runs.best * scale, "runs": list(runs.runs)}
    if runs.repeat_error:
        fields["repeat_error"] = runs.repeat_error
    return fields


def record(case: Case, side: str, panel: Panel, permutations: int, **fields: Any) -> dict[str, Any]:
    """The JSON record of one run: what ran and what was measured."""
    series, n = panel.values.shape
    return {
        "case": case.key,
        "side": side,
        "method": case.method,
        "series": series,
        "n": n,
        "permutations": permutations,
        "input": panel.description,
        "rss_mb": peak_rss_mb(),
        **fields,
    }


def run_ours(case: Case, sizes: Sizes, out: Path) -> dict[str, Any]:
    """One ``run_panel`` call over the whole panel on the threaded scheduler."""
    from bench.engine import run_engine

    panel = panel_for(case, sizes)
    perms = permutations_for(case, sizes)
    options = engine_options(case.method, perms, chunk_size=None, scheduler="threads")
    rss_inputs = peak_rss_mb()

    def call() -> list[Any]:
        return run_engine(panel.values, panel.weights, **options)

    first_s = timed(call)[1]  # warm-up: loads the compiled kernels, starts the thread pool
    runs: Timed[list[Any]] = best_of(call)
    stat, p = ours_outputs(runs.result, case.method)
    rows = np.arange(panel.values.shape[0])
    return record(
        case,
        OURS,
        panel,
        perms,
        first_s=first_s,
        rss_inputs_mb=rss_inputs,
        outputs=save(out, case, OURS, stat, p, rows),
        **timing(runs),
    )


def esda_rows(series: int, timed_series: int | None) -> np.ndarray:
    """Evenly spread rows esda is timed on (all of them by default); row 0 always included."""
    if timed_series is None or timed_series >= series:
        return np.arange(series)
    return np.unique(np.linspace(0, series - 1, max(timed_series, 1)).round().astype(int))


def run_esda(case: Case, sizes: Sizes, timed_series: int | None, out: Path) -> dict[str, Any]:
    """esda over the panel's rows, each on its valid regions, ``n_jobs=1``.

    The atlas runs with ``keep_simulations=False``; the lattices with esda's default
    (``True``), which is what a user gets. The first call (first series, in this fresh
    process) includes numba's compilation and is reported as the cold time.
    """
    from bench.reference import SeriesLoop, esda_weights

    panel = panel_for(case, sizes)
    perms = permutations_for(case, sizes)
    keep = False if case.group == "atlas" else None
    rows = esda_rows(panel.values.shape[0], timed_series)
    full_w = esda_weights(panel.weights.adjacency)  # the counterpart of our SpatialWeights
    rss_inputs = peak_rss_mb()

    def loop() -> SeriesLoop:  # a fresh loop per run: subset Ws count in esda's time
        return SeriesLoop(panel.weights, full_w, case.method, perms, keep)

    first_s = timed(lambda: loop().series(panel.values[rows[0]]))[1]
    runs = best_of(lambda: loop().panel(panel.values[rows]))
    stat, p = runs.result
    scale = panel.values.shape[0] / len(rows)
    return record(
        case,
        ESDA,
        panel,
        perms,
        measured_s=runs.best,
        first_s=first_s,
        series_timed=len(rows),
        rss_inputs_mb=rss_inputs,
        keep_simulations=keep is not False,
        outputs=save(out, case, ESDA, stat, p, rows),
        **timing(runs, scale),
    )


def warm_worker(method: str) -> bool:
    """On a cluster worker: import the engine and load its kernels on a tiny lattice."""
    from bench.engine import run_engine

    tiny = lattice_panel(8)
    run_engine(tiny.values, tiny.weights, **engine_options(method, 9, scheduler="threads"))
    return True


def run_cluster(case: Case, sizes: Sizes, out: Path) -> dict[str, Any]:
    """``run_panel`` on a ``LocalCluster`` of ``case.workers`` single-threaded processes."""
    from distributed import Client, LocalCluster

    from bench.engine import run_engine

    panel = panel_for(case, sizes)
    perms = sizes.lattice_permutations
    chunk = chunk_size(panel.weights.n)
    with (
        LocalCluster(
            n_workers=case.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(warm_worker, case.method)
        tiny = lattice_panel(32)
        options = engine_options(case.method, 9, chunk_size=128, scheduler=client)
        # the first call on a fresh cluster, on a small lattice: warms the scheduler path
        first_s = timed(lambda: run_engine(tiny.values, tiny.weights, **options))[1]
        options = engine_options(case.method, perms, chunk_size=chunk, scheduler=client)
        rss_inputs = peak_rss_mb()
        runs = best_of(lambda: run_engine(panel.values, panel.weights, **options))
        workers = worker_peak_rss_mb(client)
    fields: dict[str, Any] = {}
    if not case.key.startswith("million"):
        stat, p = ours_outputs(runs.result, case.method)
        fields["outputs"] = save(out, case, OURS, stat, p, np.arange(len(stat)))
    return record(
        case,
        OURS,
        panel,
        perms,
        workers=case.workers,
        first_s=first_s,
        first_input=tiny.description,
        chunk_size=chunk,
        tasks=-(-panel.weights.n // chunk),
        rss_inputs_mb=rss_inputs,
        worker_rss_mb=workers,
        **timing(runs),
        **fields,
    )


def preflight() -> dict[str, Any]:
    """Run the engine on a 6 x 6 lattice, two series (one with a NaN); check the results."""
    from bench.engine import run_engine

    tiny = lattice_panel(6)
    values = np.vstack([tiny.values, tiny.values[:, ::-1]])
    values[1, 0] = np.nan
    for method in STAT_KEY:
        options = engine_options(method, 9, chunk_size=None, scheduler="threads")
        results = run_engine(values, tiny.weights, **options)
        if len(results) != 2 or any(np.shape(r.p_sim) != (tiny.weights.n,) for r in results):
            raise RuntimeError(
                f"run_panel(method={method!r}) on a (2, 36) panel returned {len(results)} "
                "results or p-values of the wrong shape; expected 2 results of 36 regions"
            )
        ours_outputs(results, method)
    return {"case": "preflight", "engine": "geo.engine.run_panel"}


def run(case_key: str, side: str, sizes: Sizes, args: argparse.Namespace) -> dict[str, Any]:
    """Dispatch one (case, side) run."""
    if case_key == "preflight":
        return preflight()
    case = BY_KEY[case_key]
    if side not in case.sides:
        raise SystemExit(f"case {case_key} has no {side} side")
    if case.group == "ingest":
        from bench.ingest import run as run_ingest

        return run_ingest(case, side, sizes, args.out)
    if case.workers:
        return run_cluster(case, sizes, args.out)
    if side == ESDA:
        return run_esda(case, sizes, args.esda_series or sizes.esda_series, args.out)
    return run_ours(case, sizes, args.out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__)
    parser.add_argument("case", choices=("preflight", *WORKER_CASES))
    parser.add_argument("side", choices=ALL_SIDES)
    parser.add_argument("--quick", action="store_true", help="small sizes (harness check)")
    parser.add_argument("--esda-series", type=int, default=None, help="atlas rows esda times")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where outputs go")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    result = run(args.case, args.side, sizes, args)
    print(json.dumps(result, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
