"""Uploads in the background: large files are checked and stored by a worker thread,
their state (queued, running with progress, done or failed) kept in the store."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from geo.errors import AlpClustersError, IngestError
from geo.records import DONE, FAILED, QUEUED, RUNNING, UploadRecord
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadOutcome, UploadRequest, upload

log = logging.getLogger(__name__)
PROGRESS_EVERY_S = 0.5


def outcome_json(outcome: UploadOutcome) -> dict[str, Any]:
    """What an upload answers: the dataset, its version and rows, and the report."""
    info = outcome.dataset
    stored = (
        {"dataset": info.id, "version": info.version, "n_rows": info.n_rows}
        if info is not None
        else {}
    )
    return {**stored, "created": outcome.created, "ok": outcome.ok, "report": outcome.report}


def error_json(exc: AlpClustersError) -> dict[str, Any]:
    """A failed upload's error, shaped like the problem+json body of the same error."""
    body: dict[str, Any] = {"code": exc.code, "title": exc.title, "detail": str(exc)}
    if isinstance(exc, IngestError):
        body["errors"] = exc.problems
        if exc.report is not None:
            body["report"] = exc.report
    return body


def sweep_orphans(upload_dir: Path) -> list[Path]:
    """Delete uploaded files left by service processes that are gone (killed mid-upload).

    Files are named ``{pid}-{uuid}.{ext}`` by the process that received them; a file whose
    process no longer runs belongs to no upload any more.
    """
    removed = []
    for path in upload_dir.glob("*-*") if upload_dir.is_dir() else ():
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class UploadRunner:
    """Runs uploads one at a time in a background thread (a store takes one writer)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload")
        self._futures: dict[str, Future[None]] = {}

    def submit(self, path: Path, request: UploadRequest) -> UploadRecord:
        """Queue ``path`` (which the runner deletes when done); return its record."""
        now = dt.datetime.now(dt.UTC)
        record = UploadRecord(
            id=uuid.uuid4().hex,
            dataset_id=request.dataset_id,
            status=QUEUED,
            progress=0.0,
            file_name=request.file_name,
            uploader=request.uploader,
            created_at=now,
            updated_at=now,
        )
        self.store.put_upload(record)
        self._futures[record.id] = self._pool.submit(self._run, record.id, path, request)
        return record

    def _run(self, upload_id: str, path: Path, request: UploadRequest) -> None:
        store = self.store
        store.set_upload(upload_id, status=RUNNING)
        last = [0.0]

        def progress(percent: float) -> None:
            if time.monotonic() - last[0] >= PROGRESS_EVERY_S:
                last[0] = time.monotonic()
                store.set_upload(upload_id, progress=round(percent, 1))

        try:
            outcome = upload(self.settings, store, path, request, progress=progress)
        except AlpClustersError as exc:
            store.set_upload(upload_id, status=FAILED, error=error_json(exc))
        except Exception:  # a bug: the trace goes to the log, not to the answer
            log.exception("upload %s failed", upload_id)
            error = {"code": "internal-error", "detail": "internal error; see the service log"}
            store.set_upload(upload_id, status=FAILED, error=error)
        else:
            store.set_upload(upload_id, status=DONE, progress=100.0, result=outcome_json(outcome))
        finally:
            path.unlink(missing_ok=True)
            self._futures.pop(upload_id, None)

    def wait(self, upload_id: str, timeout: float | None = None) -> None:
        future = self._futures.get(upload_id)
        if future is not None:
            future.result(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
