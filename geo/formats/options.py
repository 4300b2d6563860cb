"""What to read and what was detected: options, layouts, constants and shared helpers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from geo.errors import IngestError, TooLargeError
from geo.validation import Report

FORMATS = ("tidy", "wide", "xlsx", "eurostat-tsv", "sdmx-csv", "parquet")
CHUNK_COLUMNS = ("indicator", "geo", "time", "value", "flag", "unit", "row", "column")
DELIMITERS = (",", ";", "\t")
HEAD_BYTES = 1 << 20  # bytes of a text file examined by sniff
HEAD_ROWS = 200  # rows examined to find the header and sample the values
SCAN_BYTES = 1 << 24  # block size of the encoding scan
# Column names (lower case, non-alphanumerics as "_") that give a column its role.
ROLES = {
    "geo": r"geo|geo_?(code|id)|nuts|nuts_?[0-3]|nuts_?([0-3]_?)?(id|code)|region(_?(id|code))?",
    "time": r"time|year|time_?period|period",
    "value": r"values?|obs_?value",
    "indicator": r"indicator(_?code)?|variable|measure|series",
    "unit": r"units?|unit_?measure",
    "flag": r"flags?|obs_?flag|obs_?status",
}
# Eurostat SDMX-CSV columns that are neither observations nor dimensions naming an indicator.
SDMX_OTHER = {"dataflow", "last_update", "structure", "structure_id", "action", "conf_status"}
MAGIC = {b"PAR1": "parquet", b"PK\x03\x04": "xlsx", b"\x1f\x8b": "gzip"}

_YEAR = re.compile(r"\s*(1[89]\d\d|2[01]\d\d)(\.0*)?\s*")

WideColumn = tuple[str, str | None, str | None]  # source column, its indicator, its year
Batch = tuple[dict[str, Any], np.ndarray, dict[str, pa.Array]]  # columns, rows, cell flags


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file; every ``None`` is detected.

    Parameters
    ----------
    format
        One of :data:`FORMATS`. ``tidy``/``wide`` force a layout, also in XLSX and Parquet.
    sheet
        XLSX sheet name or 0-based index; the first sheet by default.
    encoding, delimiter, decimal
        Text files: detected among UTF-8 (with or without BOM) and Windows-1252/Latin-1,
        ``,`` ``;`` and tab, ``.`` and ``,``.
    indicator
        The indicator code of a table that names none (no indicator column, wide by year).
    where
        Keep only rows whose column equals the value, e.g. ``{"unit": "EUR_HAB"}``.
    indicator_from
        Columns whose values, joined with ``.``, name the indicator.
    chunk_rows
        Rows per chunk (observations, for wide tables).
    max_bytes, max_rows
        Refuse larger files, or tables with more data rows.
    max_columns, max_cell_chars
        Refuse tables with more columns, or with a longer cell (characters) in a column read.
    max_unpacked_bytes
        Refuse an XLSX workbook or a gzip-compressed file that unpacks to more bytes (zip
        bombs); an XLSX holding other archives is refused whatever its size.
    columns
        Role (geo, time, value, indicator, unit, flag) -> source column, overriding detection.
    """

    format: str | None = None
    sheet: str | int | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    indicator: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    indicator_from: Sequence[str] | None = None
    chunk_rows: int = 200_000
    max_bytes: int | None = None
    max_rows: int | None = None
    max_columns: int | None = None
    max_cell_chars: int | None = None
    max_unpacked_bytes: int | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """What :func:`sniff` detected (or the options forced).

    Attributes
    ----------
    format
        One of :data:`FORMATS`; text files are ``tidy``, ``wide``, ``eurostat-tsv`` or
        ``sdmx-csv``, while ``xlsx`` and ``parquet`` may be tidy or wide (see ``wide``).
    header_rows
        Lines (rows) before the first data row.
    columns
        Role (geo, time, value, indicator, unit, flag; those present) -> source column.
    names
        Every source column, in file order (unique; empty header cells are "column N").
    wide
        The value columns of a wide table as (column, indicator, year), None where another
        column gives the indicator or the year.
    dimensions
        Columns whose values, joined with ".", name the indicator by default (Eurostat).
    packed
        The dimensions packed in the first column of a Eurostat TSV (``freq,unit,geo``).
    compression
        ``gzip`` for a compressed text file.
    """

    format: str
    encoding: str | None
    delimiter: str | None
    decimal: str
    sheet: str | None
    header_rows: int
    columns: dict[str, str]
    names: tuple[str, ...] = ()
    wide: tuple[WideColumn, ...] = ()
    dimensions: tuple[str, ...] = ()
    packed: tuple[str, ...] = ()
    compression: str | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able summary for the upload report."""
        out: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("format", "encoding", "delimiter", "decimal", "sheet", "header_rows")
        }
        out["columns"] = dict(self.columns)
        if self.wide:
            by = "year" if all(t for _, _, t in self.wide) else "indicator"
            out["wide"] = {"by": by, "columns": [c for c, _, _ in self.wide]}
        if self.dimensions:
            out["indicator_from"] = list(self.dimensions)
        if self.packed:
            out["dimensions"] = list(self.packed)
        return out


def _refuse(
    path: Path,
    rule: str,
    reason: str,
    value: object = None,
    row: int | None = None,
    *,
    column: str | None = None,
    limit: bool = False,
) -> IngestError:
    """The error refusing a whole file; ``limit``: because it is over a configured limit."""
    report = Report(str(path))
    report.add(row, column, value, rule, reason)
    return (TooLargeError if limit else IngestError)(str(path), report.problems)


def _check_width(path: Path, columns: int, options: ReadOptions) -> None:
    """Refuse a table with more columns than ``options.max_columns`` (before reading it)."""
    if options.max_columns is not None and columns > options.max_columns:
        reason = f"the table has {columns} columns; at most {options.max_columns} are accepted"
        raise _refuse(path, "too-many-columns", reason, columns, limit=True)


def _norm(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")


def _role(name: str) -> str | None:
    norm = _norm(name)
    return next((r for r, p in ROLES.items() if re.fullmatch(p, norm)), None)


def _year(name: str) -> str | None:
    match = _YEAR.fullmatch(name)
    return match.group(1) if match else None


def _text(cell: object) -> str:
    """A spreadsheet or Parquet cell as the text a user sees (2019.0 -> "2019")."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _needed(layout: Layout, options: ReadOptions) -> list[str]:
    """The source columns to read, in file order."""
    wanted = {*layout.columns.values(), *layout.dimensions, *options.where}
    wanted |= {c for c, _, _ in layout.wide} | set(options.indicator_from or ())
    if layout.packed:
        wanted.add(layout.names[0])
    return [n for n in layout.names if n in wanted]
