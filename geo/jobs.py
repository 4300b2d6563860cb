"""Running analyses: small ones at once, long ones in the background with progress.

Every analysis is stored under a hash of its resolved parameters and its dataset's content,
so an identical request finds the stored (or running) analysis instead of computing again.

Several service processes may share one store: each analysis records the process running
it, which renews a heartbeat while it works, so a process that starts (or sweeps now and
then) fails only the work of processes that are gone (:meth:`geo.store.Store.fail_unfinished`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from geo.analysis import (
    AnalysisParams,
    analysis_id,
    resolve_params,
    run_analysis,
    series_of,
)
from geo.engine import connect
from geo.errors import AlpClustersError
from geo.settings import Settings
from geo.store import DONE, FAILED, QUEUED, RUNNING, AnalysisRecord, Store

log = logging.getLogger(__name__)

BACKGROUND_ABOVE = 5e7  # series x regions x permutations beyond which work is backgrounded
PROGRESS_EVERY_S = 0.5
HEARTBEAT_EVERY_S = 15.0  # well inside geo.store.LEASE_S
ORPHANED = "interrupted: the service process running it stopped"


class AnalysisRunner:
    """Stores, runs and tracks analyses for one store and one dask scheduler."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        scheduler: Any = None,
        background_above: float = BACKGROUND_ABOVE,
    ) -> None:
        self.settings = settings
        self.store = store
        self.scheduler = scheduler if scheduler is not None else connect(settings.scheduler)
        self.background_above = background_above
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="analysis")
        self._futures: dict[str, Future[AlpClustersError | None]] = {}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        beat = threading.Thread(
            target=_heartbeat, args=(weakref.ref(self), self._closed), daemon=True
        )
        beat.start()

    def submit(
        self, params: AnalysisParams, wait: bool | None = None, actor: str = ""
    ) -> AnalysisRecord:
        """Start (or find) the analysis of ``params`` and return its record.

        With ``wait=None`` small analyses run at once and large ones in the background;
        ``True`` always waits, ``False`` never does. A new analysis is recorded in the
        audit log under ``actor``.
        """
        resolved, ids = resolve_params(self.settings, self.store, params)
        aid = analysis_id(resolved, self.store.dataset(resolved.dataset, resolved.version))
        with self._lock:
            existing = self.store.find_analysis(aid)
            if existing is not None and existing.status in (DONE, QUEUED, RUNNING):
                return existing
            record = AnalysisRecord(
                id=aid,
                dataset_id=resolved.dataset,
                dataset_version=resolved.version,
                params=resolved.model_dump(),
                status=QUEUED,
                error=None,
                summary=None,
                duration_s=None,
                created_at=dt.datetime.now(dt.UTC),
            )
            if not self.store.claim_analysis(record, self.store.owner):
                return self.store.analysis(aid, with_tables=False)  # another process's
            self.store.accounts.record(
                actor or "anonymous", "analyse", f"analysis {aid}", aid, resolved.model_dump()
            )
            background = wait is False or (
                wait is None and self.cost(resolved, len(ids)) > self.background_above
            )
            if background:
                self._futures[aid] = self._pool.submit(self._run, aid, resolved)
                return self.store.analysis(aid, with_tables=False)
        error = self._run(aid, resolved)
        if error is not None:
            raise error
        return self.store.analysis(aid, with_tables=False)

    @staticmethod
    def cost(params: AnalysisParams, n_regions: int) -> float:
        """A work estimate: series x regions x permutations."""
        indicators, years = series_of(params)
        n_series = len(indicators) * len(years)
        return float(n_series * n_regions * max(params.permutations, 1))

    def _run(self, aid: str, params: AnalysisParams) -> AlpClustersError | None:
        """Compute and store one analysis; a domain error is stored and returned."""
        store = self.store
        store.set_progress(aid, RUNNING, 0.0)
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] >= PROGRESS_EVERY_S:
                last[0] = now
                store.set_progress(aid, RUNNING, round(100.0 * done / max(total, 1), 1))

        record = store.analysis(aid, with_tables=False)
        try:
            out = run_analysis(self.settings, store, params, self.scheduler, progress)
        except AlpClustersError as exc:
            store.put_analysis(_replace(record, status=FAILED, error=str(exc)))
            return exc
        except Exception:  # a bug: keep the trace in the log, not in the answer
            log.exception("analysis %s failed", aid)
            store.put_analysis(
                _replace(record, status=FAILED, error="internal error; see the service log")
            )
        else:
            store.put_analysis(
                _replace(
                    record,
                    status=DONE,
                    summary=out.summary,
                    duration_s=out.duration_s,
                    regions=out.regions,
                    catchments=out.catchments,
                    progress=100.0,
                )
            )
        finally:
            self._futures.pop(aid, None)
        return None

    def wait(self, aid: str, timeout: float | None = None) -> None:
        """Block until a background analysis has finished (for tests and the CLI)."""
        future = self._futures.get(aid)
        if future is not None:
            future.result(timeout)

    def beat(self) -> None:
        """Renew the heartbeat of this process's work and fail that of gone processes."""
        try:
            self.store.heartbeat()
            self.store.fail_unfinished(ORPHANED)
        except Exception as exc:  # noqa: BLE001 - a database down: the next beat tries again
            log.warning("heartbeat of running work failed: %s", exc)

    def close(self) -> None:
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _heartbeat(runner: weakref.ref[AnalysisRunner], closed: threading.Event) -> None:
    """Beat every few seconds until the runner is closed or gone."""
    while not closed.wait(HEARTBEAT_EVERY_S):
        alive = runner()
        if alive is None:
            return
        alive.beat()
        del alive


def _replace(record: AnalysisRecord, **changes: Any) -> AnalysisRecord:
    return dataclasses.replace(record, **changes)
