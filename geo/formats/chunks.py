"""Streaming a table as chunks of the tidy shape, assembled from each format's batches."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo.formats.columnar import _parquet_batches
from geo.formats.options import CHUNK_COLUMNS, Batch, Layout, ReadOptions, _refuse
from geo.formats.sheets import _xlsx_batches
from geo.formats.sniff import _check_columns, _check_file
from geo.formats.text import _text_batches
from geo.validation import Categories, Report


def read_chunks(
    path: Path,
    layout: Layout,
    options: ReadOptions = ReadOptions(),  # noqa: B008
    report: Report | None = None,
) -> Iterator[pd.DataFrame]:
    """Stream a table as chunks of at most ``options.chunk_rows`` rows of :data:`CHUNK_COLUMNS`.

    ``indicator``, ``geo``, ``time`` are text; ``value`` is the text as written, or a number
    where the file stores numbers (Parquet: a pyarrow-backed float column, whose nulls are
    empty cells and NaN a stored NaN; XLSX: object cells, None where empty); ``flag`` and
    ``unit`` are text or None;
    ``row`` is the row number the user sees (line in a text file, spreadsheet row, 1-based
    record in Parquet); ``column`` the source column of the value.

    Parameters
    ----------
    report
        Receives the lines the parser had to skip (a wrong number of fields). Without it,
        they raise an :class:`IngestError` once the file is read.

    Raises
    ------
    IngestError
        A file over ``max_bytes`` or ``max_rows``, unreadable, or with no row matching
        ``options.where``.
    """
    path = Path(path)
    _check_file(path, options)
    _check_columns(path, layout, options)
    own = report if report is not None else Report(str(path))
    seen = kept = 0
    try:
        for cols, rows, flags in _batches(path, layout, options, own):
            seen += len(rows)
            if options.max_rows is not None and seen > options.max_rows:
                row = int(rows[len(rows) - (seen - options.max_rows)])
                reason = f"the table has more than {options.max_rows} data rows"
                raise _refuse(path, "too-many-rows", reason, row=row, limit=True)
            if options.max_cell_chars is not None:
                _check_cells(path, cols, rows, options.max_cell_chars)
            chunk = _assemble(cols, rows, flags, layout, options)
            kept += len(chunk)
            for start in range(0, len(chunk), options.chunk_rows):
                yield chunk.iloc[start : start + options.chunk_rows].reset_index(drop=True)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _refuse(path, "unreadable-file", f"cannot read the file: {exc}") from exc
    if seen and not kept and options.where:
        raise _refuse(path, "no-matching-rows", f"no row matches {dict(options.where)}")
    if report is None:
        own.raise_if_any()


def _check_cells(path: Path, cols: dict[str, Any], rows: np.ndarray, limit: int) -> None:
    """Refuse the first cell longer than ``limit`` characters, naming its row and column."""
    for name, values in cols.items():
        if isinstance(values, pd.Series):  # XLSX value cells: numbers or text
            lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in values), np.int64)
        elif pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
            lengths = np.asarray(pc.fill_null(pc.utf8_length(values), 0))
        else:
            continue
        over = np.flatnonzero(lengths > limit)
        if len(over):
            k = int(over[0])
            reason = f"a cell of {int(lengths[k])} characters; at most {limit} are accepted"
            cell = str(values[k])[:40] + "…"
            row = int(rows[k])
            raise _refuse(path, "cell-too-long", reason, cell, row, column=name, limit=True)


def region_codes(path: Path, layout: Layout, options: ReadOptions = ReadOptions()) -> set[str]:  # noqa: B008
    """The distinct region codes of a table (before any check), reading as little as the
    format allows: the region column only of a tidy text or Parquet file."""
    geo = layout.columns.get("geo")
    if geo is None or layout.packed or layout.format not in ("tidy", "wide", "parquet"):
        chunks = read_chunks(path, layout, options, Report(str(path), max_problems=0))
        return {code.strip() for chunk in chunks for code in chunk["geo"]}
    narrow = dataclasses.replace(options, where={})
    focused = dataclasses.replace(layout, columns={"geo": geo}, dimensions=(), wide=())
    codes: set[str] = set()
    try:
        for cols, _, _ in _batches(path, focused, narrow, Report(str(path), max_problems=0)):
            codes.update(str(c).strip() for c in pc.unique(cols[geo]).to_pylist() if c is not None)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise _refuse(path, "unreadable-file", f"cannot read the file: {exc}") from exc
    return codes


def _batches(path: Path, layout: Layout, options: ReadOptions, report: Report) -> Iterator[Batch]:
    """Raw columns of a few rows at a time (fewer for wide tables, which melt into more)."""
    batch_rows = max(options.chunk_rows // max(len(layout.wide), 1), 1)
    if layout.format == "parquet":
        return _parquet_batches(path, layout, options, batch_rows)
    if layout.format == "xlsx":
        return _xlsx_batches(path, layout, options, batch_rows)
    return _text_batches(path, layout, options, report, batch_rows)


def _label(values: Any) -> pa.Array:
    """A column of names or codes as text, nulls as empty text."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    return pc.fill_null(values.cast(pa.large_string()), "")


def _values(values: Any) -> pd.Series:
    """A value column: text as written, numbers stored as numbers (null = empty cell)."""
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
        return pd.Series(pd.arrays.ArrowExtensionArray(values.cast(pa.float64())))
    return values.cast(pa.large_string()).to_pandas()


def _indicator_spec(layout: Layout, options: ReadOptions) -> tuple[list[str], str | None]:
    """Columns whose values name the indicator, or a constant name."""
    if options.indicator_from:
        return list(options.indicator_from), None
    if "indicator" in layout.columns:
        return [layout.columns["indicator"]], None
    if options.indicator:
        return [], options.indicator
    if layout.dimensions:
        return list(layout.dimensions), None
    if "unit" in layout.columns:
        return [layout.columns["unit"]], None
    return [], "value"


def _assemble(
    cols: dict[str, Any],
    rows: np.ndarray,
    flags: dict[str, pa.Array],
    layout: Layout,
    options: ReadOptions,
) -> pd.DataFrame:
    values = {c for c, _, _ in layout.wide} | {layout.columns.get("value")}
    labels = {n: _label(c) for n, c in cols.items() if n not in values}
    keep = np.ones(len(rows), dtype=bool)
    for name, wanted in options.where.items():
        keep &= np.asarray(pc.equal(pc.utf8_trim_whitespace(labels[name]), str(wanted)))
    if not keep.all():
        labels, cols, flags = (_filter(d, keep) for d in (labels, cols, flags))
        rows = rows[keep]
    names, constant = _indicator_spec(layout, options)
    dot = pa.scalar(".", pa.large_string())
    joined = pc.binary_join_element_wise(*[labels[n] for n in names], dot) if names else None
    shared = {
        "geo": pc.utf8_trim_whitespace(labels[layout.columns["geo"]]).to_pandas(),
        "unit": _optional(labels.get(layout.columns.get("unit", ""))),
        "row": rows,
    }
    time = labels.get(layout.columns.get("time", ""))
    flag = labels.get(layout.columns.get("flag", ""))
    pieces = []
    for col, own, year in layout.wide or ((layout.columns["value"], None, None),):
        indicator: Any = constant if joined is None else joined
        if own is not None:
            if joined is not None:
                indicator = pc.binary_join_element_wise(pa.scalar(own, joined.type), joined, dot)
            else:
                indicator = own
        piece = {
            "indicator": indicator if isinstance(indicator, str) else indicator.to_pandas(),
            "time": year if year is not None else time.to_pandas(),  # type: ignore[union-attr]
            "value": _values(cols[col]),
            "flag": _optional(flags.get(col, flag)),
            "column": col,
        }
        pieces.append(pd.DataFrame({**shared, **piece}, columns=list(CHUNK_COLUMNS)))
    if len(pieces) == 1:
        return pieces[0]
    chunk = pd.concat(pieces, ignore_index=True)
    return chunk.iloc[np.argsort(chunk["row"].to_numpy(), kind="stable")].reset_index(drop=True)


def _filter(columns: dict[str, Any], keep: np.ndarray) -> dict[str, Any]:
    mask = pa.array(keep)
    return {
        n: c[keep].reset_index(drop=True) if isinstance(c, pd.Series) else c.filter(mask)
        for n, c in columns.items()
    }


def _optional(values: pa.Array | None) -> Any:
    """Text or None (flags, units)."""
    return None if values is None else Categories.of(values).objects()
