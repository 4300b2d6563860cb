"""Statisticians' uploads: read any supported table, repair its NUTS version, validate it
and store it as a new version of a dataset, with its report and provenance.

The file is streamed in chunks (:mod:`geo.formats`) through the validator
(:mod:`geo.validation`); valid rows are kept in compact categorical columns, so memory
grows with the observations kept, not with the file. Nothing is written until the whole
file has been read and checked; the version is then written in one transaction.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import union_categoricals

from geo.boundaries import load_boundaries
from geo.errors import IngestError, PermissionDeniedError
from geo.formats import Layout, ReadOptions, read_chunks, region_codes, sniff
from geo.nuts_versions import Detection, code_lists, conversion, detect, other_versions
from geo.records import DatasetInfo
from geo.sandbox import isolated
from geo.settings import Settings
from geo.store import Store
from geo.validation import Report, Validator

# Eurostat aggregates that are not NUTS regions (EU27_2020, EA20, EFTA, ...).
AGGREGATE = re.compile(r"^(EU\d*|EA\d*|EEA\d*|EFTA|EU27_\d{4}|EU28|EA\d+_\d{4})$")
OnProblem = Literal["refuse", "skip"]
Progress = Callable[[float], None]


@dataclass(frozen=True)
class UploadRequest:
    """What to store: the dataset's description and how to read and check the file."""

    dataset_id: str
    title: str = ""
    description: str = ""
    source: str = ""
    licence: str = ""
    uploader: str = ""
    read: ReadOptions = field(default_factory=ReadOptions)
    labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    on_problem: OnProblem = "refuse"
    years: tuple[int, int] = (1900, 2100)
    levels: tuple[int, ...] | None = None  # keep only these NUTS levels (Eurostat tables mix them)
    file_name: str = ""  # as the user named it (default: the path's name)
    scope: tuple[str, ...] | None = None  # NUTS prefixes the uploader may write; None: any
    actor: str = ""  # the account that uploads (the audit log's "who")
    lineage: Mapping[str, Any] | None = None  # a derived dataset's inputs and operation


@dataclass(frozen=True)
class UploadOutcome:
    """The stored (or, for a dry run, checked) version and the validation report."""

    report: dict[str, Any]
    dataset: DatasetInfo | None = None
    created: bool = False

    @property
    def ok(self) -> bool:
        return not self.report["problems"] and not self.report["more_problems"]


@dataclass
class _Checked:
    layout: Layout
    detection: Detection
    validator: Validator
    table: pd.DataFrame
    dropped: dict[str, int] = field(default_factory=dict)


def upload(
    settings: Settings,
    store: Store,
    path: Path,
    request: UploadRequest,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> UploadOutcome:
    """Validate ``path`` and store it as a new version of ``request.dataset_id``.

    Raises
    ------
    IngestError
        With every problem (up to the report's limit) when the file is refused: unless
        ``request.on_problem == "skip"``, any problem refuses the whole file. A dry run
        returns the report instead of raising.
    """
    checked = _read(settings, Path(path), request, progress)
    _within_scope(checked, request)
    report = _report(checked, request)
    refused = checked.validator.report.problems or checked.validator.report.more_problems
    if refused and request.on_problem == "refuse":
        if dry_run:
            return UploadOutcome(report)
        raise IngestError(request.file_name or str(path), report["problems"], report=report)
    if dry_run:
        return UploadOutcome(report)
    info, created = _store(settings, store, checked, request, report)
    if created:
        target = f"dataset {info.id} version {info.version}"
        actor = request.actor or request.uploader or "anonymous"
        store.accounts.record(actor, "upload", target, info.content_hash)
    if progress:
        progress(100.0)
    return UploadOutcome(report, info, created)


def _within_scope(checked: _Checked, request: UploadRequest) -> None:
    """Refuse a table with regions outside the uploader's NUTS scope, naming them."""
    if request.scope is None or not len(checked.table):
        return
    codes = checked.table["geo"].astype(str).unique()
    outside = sorted({c for c in codes if not c.startswith(request.scope)})
    if outside:
        shown = ", ".join(outside[:20]) + (" …" if len(outside) > 20 else "")
        raise PermissionDeniedError(
            f"{request.actor or 'this account'} may upload regions under "
            f"{list(request.scope)} only; {len(outside)} region(s) of "
            f"{request.file_name or 'the file'} lie outside: {shown}",
            regions=outside,
        )


def _read(
    settings: Settings, path: Path, request: UploadRequest, progress: Progress | None
) -> _Checked:
    """:func:`check_file`, in a child process with limits when ``settings.parse_isolated``;
    errors name the file as the user named it, not where it waits on disk."""
    name = request.file_name or path.name
    try:
        if not settings.parse_isolated:
            return check_file(settings, path, request, progress)
        return isolated(
            check_file,
            settings,
            path,
            request,
            name=name,
            timeout_s=settings.parse_timeout_s,
            memory_bytes=settings.parse_memory_bytes,
            progress=progress,
        )
    except IngestError as exc:
        raise exc.renamed(str(path), name) from None


def check_file(
    settings: Settings, path: Path, request: UploadRequest, progress: Progress | None = None
) -> _Checked:
    """Read and validate the whole file; keep the valid rows."""
    name = request.file_name or path.name
    layout = sniff(path, request.read)
    detection = _detect(settings, path, layout, request.read)
    target = settings.nuts_year
    source = detection.version or target
    change = conversion(settings, source, target)
    known = set(load_boundaries(settings).index)
    validator = Validator(
        name,
        known,
        recode=change.renames,
        flagged=change.flagged,
        other_versions=other_versions(settings, target),
        years=request.years,
        decimal=layout.decimal,
        max_rows=request.read.max_rows,
        columns=layout.columns,
    )
    not_mapped = code_lists(settings).get(target, frozenset()) - known
    dropped: dict[str, int] = {}
    parts = []
    size = max(path.stat().st_size, 1)
    for chunk in read_chunks(path, layout, request.read, report=validator.report):
        chunk = _drop_unmapped(chunk, not_mapped, validator.report, dropped)
        if request.levels is not None:
            chunk = _keep_levels(chunk, request.levels, validator.report, dropped)
        parts.append(_compact(validator.check(chunk)))
        if progress:
            progress(min(90.0, 90.0 * _position(chunk, layout, size)))
    validator.finish()
    return _Checked(layout, detection, validator, _concat(parts), dropped)


def _detect(settings: Settings, path: Path, layout: Layout, options: ReadOptions) -> Detection:
    """The NUTS version of the table's codes (read from the region column alone)."""
    return detect(settings, region_codes(path, layout, options))


def _drop_unmapped(
    chunk: pd.DataFrame, not_mapped: Iterable[str], report: Report, dropped: dict[str, int]
) -> pd.DataFrame:
    """Drop Eurostat aggregates (EU27_2020, ...) and extra-regio codes (``..ZZ``): valid
    in the tables, but no region on the map. One warning per code."""
    geo = chunk["geo"].astype(str).str.strip()
    skip = geo.isin(not_mapped) | geo.str.match(AGGREGATE)
    if not skip.any():
        return chunk
    for code, rows in chunk.loc[skip, "row"].groupby(geo[skip]):
        if code not in dropped:
            reason = "not a region of the map (an aggregate or extra-regio code); rows dropped"
            report.add(int(rows.iloc[0]), "geo", code, "not-a-map-region", reason, warning=True)
        dropped[code] = dropped.get(code, 0) + len(rows)
    return chunk[~skip]


def _keep_levels(
    chunk: pd.DataFrame, levels: tuple[int, ...], report: Report, dropped: dict[str, int]
) -> pd.DataFrame:
    """Keep the rows of the NUTS levels asked for; one warning per other level."""
    level = chunk["geo"].astype(str).str.strip().str.len() - 2
    skip = ~level.isin(levels)
    for lev, rows in chunk.loc[skip, "row"].groupby(level[skip]):
        key = f"level {lev}"
        if key not in dropped:
            reason = (
                f"NUTS level {lev} is not among the levels asked for {list(levels)}; rows dropped"
            )
            report.add(
                int(rows.iloc[0]),
                "geo",
                chunk.at[rows.index[0], "geo"],
                "other-level",
                reason,
                warning=True,
            )
        dropped[key] = dropped.get(key, 0) + len(rows)
    return chunk[~skip]


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical codes for the repeated texts: about 20 bytes per observation."""
    out = frame.copy()
    for column in ("indicator", "geo", "flag", "unit"):
        out[column] = out[column].astype("category")
    out["time"] = out["time"].astype(np.int32)
    return out


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame(columns=["indicator", "geo", "time", "value", "flag", "unit"])
    out = {}
    for column in list(parts[0].columns):
        if isinstance(parts[0][column].dtype, pd.CategoricalDtype):
            joined = union_categoricals([p[column] for p in parts], ignore_order=True)
            out[column] = pd.Series(joined).cat.remove_unused_categories()
        else:
            out[column] = pd.Series(np.concatenate([p[column].to_numpy() for p in parts]))
        for part in parts:  # each column is held once: drop it from the chunks
            del part[column]
    return pd.DataFrame(out)


def _position(chunk: pd.DataFrame, layout: Layout, size: int) -> float:
    """Share of a text file read so far, estimated from the row numbers (for progress)."""
    if chunk.empty:
        return 0.0
    return min(1.0, float(chunk["row"].iloc[-1]) * 40.0 / size) if layout.delimiter else 0.5


def _report(checked: _Checked, request: UploadRequest) -> dict[str, Any]:
    validator = checked.validator
    return {
        **validator.report.describe(),
        "layout": checked.layout.describe(),
        "nuts": {
            **checked.detection.describe(),
            "recoded": validator.summary.get("recoded", {}),
            "dropped": checked.dropped,
        },
        "summary": {k: v for k, v in validator.summary.items() if k != "recoded"},
        "content_hash": validator.content_hash,
        "on_problem": request.on_problem,
        **({"lineage": dict(request.lineage)} if request.lineage else {}),
    }


def _store(
    settings: Settings,
    store: Store,
    checked: _Checked,
    request: UploadRequest,
    report: dict[str, Any],
) -> tuple[DatasetInfo, bool]:
    table = checked.table
    content_hash = checked.validator.content_hash
    if request.on_problem == "skip":
        key = ["indicator", "geo", "time"]
        duplicated = table.duplicated(key, keep=False)
        if duplicated.any():
            table = table[~duplicated].reset_index(drop=True)
            content_hash = _rehash(settings, table, request)
    if table.empty:
        raise IngestError(
            request.file_name or request.dataset_id,
            [_problem(request, "no rows are left to store after the problems")],
            report=report,
        )
    meta = {
        "id": request.dataset_id,
        "title": request.title,
        "description": request.description,
        "source": request.source,
        "licence": request.licence,
        "owner": request.uploader,
    }
    version = {
        "content_hash": content_hash,
        "nuts_year": settings.nuts_year,
        "source_nuts_year": checked.detection.version,
        "uploader": request.uploader,
        "file_name": request.file_name,
        "format": "derived" if request.lineage else checked.layout.format,
        "report": report,
    }
    return store.put_version(meta, version, _labels(checked, request), table)


def _rehash(settings: Settings, table: pd.DataFrame, request: UploadRequest) -> str:
    """The content hash of a table changed after validation (rows dropped)."""
    validator = Validator(request.dataset_id, set(table["geo"].astype(str)), years=(-32768, 32767))
    validator.check(_as_chunk(table))
    validator.finish()
    return validator.content_hash


def _as_chunk(table: pd.DataFrame) -> pd.DataFrame:
    """A validated table in the shape of :func:`geo.formats.read_chunks` chunks."""
    chunk = pd.DataFrame(
        {
            "indicator": table["indicator"].astype(str),
            "geo": table["geo"].astype(str),
            "time": table["time"].astype(str),
            "value": table["value"].astype(float),
            "flag": table["flag"].astype(object).where(table["flag"].notna(), None),
            "unit": table["unit"].astype(object).where(table["unit"].notna(), None)
            if "unit" in table
            else None,
        }
    )
    chunk["row"] = np.arange(1, len(chunk) + 1)
    chunk["column"] = "value"
    return chunk


def _labels(checked: _Checked, request: UploadRequest) -> dict[str, tuple[str, str]]:
    """Indicator code -> (label, unit): given labels, else the code and its one unit."""
    out = {}
    indicators = checked.validator.summary.get("indicators", {})
    column = checked.table["indicator"]
    codes = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else column
    for code in pd.unique(pd.Series(codes).astype(str)):
        units = indicators.get(code, {}).get("units", [])
        unit = units[0] if len(units) == 1 else ""
        out[code] = request.labels.get(code, (code, unit))
    return out


def _problem(request: UploadRequest, reason: str) -> dict[str, Any]:
    return {
        "file": request.file_name or request.dataset_id,
        "row": None,
        "column": None,
        "value": None,
        "rule": "nothing-to-store",
        "reason": reason,
    }
