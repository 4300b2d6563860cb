"""Text tables (CSV, Eurostat TSV, SDMX-CSV, optionally gzip-compressed): sniffing and streaming."""

from __future__ import annotations

import codecs
import csv
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geo.formats.header import _classify, _detect_decimal, _find_header, _value_cells
from geo.formats.options import (
    DELIMITERS,
    HEAD_BYTES,
    HEAD_ROWS,
    SCAN_BYTES,
    Batch,
    Layout,
    ReadOptions,
    _check_width,
    _needed,
    _norm,
    _refuse,
    _role,
)
from geo.validation import Report

_TSV_HEADER = re.compile(r"^[^\t]*\\[^\t]*\t")
_TSV_CELL = r"^(?P<value>\S*)(?:\s+(?P<flag>\S+))?$"  # "12345.6 p", ":", ": c"


def _open(path: Path, gz: bool) -> IO[bytes]:
    import gzip

    return gzip.open(path, "rb") if gz else path.open("rb")  # type: ignore[return-value]


def _sniff_text(path: Path, options: ReadOptions, gz: bool) -> Layout:
    with _open(path, gz) as fh:
        head = fh.read(HEAD_BYTES)
        truncated = bool(fh.read(1))
    encoding = options.encoding or _detect_encoding(path, gz, head)
    lines = re.split(r"\r\n|\r|\n", head.decode(encoding, errors="replace").lstrip("\ufeff"))
    lines = lines[:-1] if truncated else lines
    if not any(line.strip() for line in lines):
        raise _refuse(path, "empty-file", "the file holds no text")
    compression = "gzip" if gz else None
    if options.format == "eurostat-tsv" or (not options.format and _TSV_HEADER.match(lines[0])):
        return _sniff_tsv(path, lines[0], encoding, compression, options)
    try:
        delimiter = options.delimiter or _detect_delimiter(path, lines)
        rows = list(csv.reader(lines[: HEAD_ROWS * 2], delimiter=delimiter))
    except csv.Error as exc:  # a cell over the csv module's field limit (128 KiB)
        too_long = "field larger" in str(exc)
        rule, why = ("cell-too-long", "a cell is too long") if too_long else ("unreadable-file", "")
        reason = why or f"cannot read the file as CSV: {exc}"
        raise _refuse(path, rule, reason, limit=too_long) from exc
    labels, header_rows, groups = _find_header(path, rows, rows, set(), options)
    sample = rows[header_rows:]
    sdmx = options.format == "sdmx-csv" or (
        not options.format and {"obs_value", "time_period"} <= {_norm(n) for n in labels}
    )
    names, roles, wide, dims = _classify(path, labels, groups, sample, options, sdmx)
    fmt = "wide" if wide else ("sdmx-csv" if sdmx else "tidy")
    decimal = options.decimal or _detect_decimal(
        _value_cells(names, roles, wide, sample), delimiter
    )
    return Layout(
        fmt,
        encoding,
        delimiter,
        decimal,
        None,
        header_rows,
        roles,
        tuple(names),
        wide,
        dims,
        compression=compression,
    )


def _detect_encoding(path: Path, gz: bool, head: bytes) -> str:
    """UTF-8 with BOM, UTF-8 (the whole file is checked), else Windows-1252 or Latin-1."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    with _open(path, gz) as fh:
        for block in iter(lambda: fh.read(SCAN_BYTES), b""):
            if block.isascii():
                continue
            try:
                decoder.decode(block)
            except UnicodeDecodeError:
                return _single_byte(fh, block)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


def _single_byte(fh: IO[bytes], block: bytes) -> str:
    """cp1252, unless the file has bytes cp1252 leaves undefined (then Latin-1)."""
    undefined = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
    while block:
        if undefined.search(block):
            return "latin-1"
        block = fh.read(SCAN_BYTES)
    return "cp1252"


def _detect_delimiter(path: Path, lines: list[str]) -> str:
    """The delimiter giving most fields, consistently over at least 60 % of the lines."""
    lines = [line for line in lines[:HEAD_ROWS] if line.strip()]
    best: tuple[str, int] | None = None
    for delimiter in DELIMITERS:
        counts = Counter(len(row) for row in csv.reader(lines, delimiter=delimiter))
        fields, times = counts.most_common(1)[0]
        if fields >= 2 and times >= 0.6 * len(lines) and (best is None or fields > best[1]):
            best = (delimiter, fields)
    if best is None:
        reason = "cannot tell how the columns are separated: use ',', ';' or a tab"
        raise _refuse(path, "unknown-delimiter", reason, lines[0][:80])
    return best[0]


def _sniff_tsv(
    path: Path, header: str, encoding: str, compression: str | None, options: ReadOptions
) -> Layout:
    """Eurostat TSV: ``freq,unit,geo\\TIME_PERIOD`` then one column per period."""
    cells = header.split("\t")
    _check_width(path, len(cells), options)
    packed_text, _, time_name = cells[0].partition("\\")
    packed = tuple(d.strip() for d in packed_text.split(","))
    geo = options.columns.get("geo") or next((d for d in packed if _role(d) == "geo"), None)
    if geo is None:
        raise _refuse(path, "no-region-column", f"no region among {list(packed)}", cells[0])
    roles = {"geo": geo, "time": time_name.strip() or "time"}
    unit = next((d for d in packed if _role(d) == "unit"), None)
    if unit:
        roles["unit"] = unit
    dims = tuple(d for d in packed if d != geo and _norm(d) != "freq")
    periods = [c.strip() for c in cells[1:]]
    wide = tuple((p, None, p) for p in periods)
    decimal = options.decimal or "."
    names = (cells[0].strip(), *periods)
    return Layout(
        "eurostat-tsv",
        encoding,
        "\t",
        decimal,
        None,
        1,
        roles,
        names,
        wide,
        dims,
        packed,
        compression,
    )


def _text_batches(
    path: Path, layout: Layout, options: ReadOptions, report: Report, batch_rows: int
) -> Iterator[Batch]:
    needed = _needed(layout, options)
    names = [f"c{j}" for j in range(len(layout.names))]
    read = [names[layout.names.index(n)] for n in needed]
    skipped = _Skipped(report, layout.delimiter)
    try:
        reader = _open_csv(path, layout, names, read, batch_rows, skipped)
    except pa.ArrowInvalid:  # nothing after the header, not even a line break
        if _has_data(path, layout):
            raise
        return
    record = 0
    for batch in _slices(reader, batch_rows):
        rows = _line_numbers(layout.header_rows + 1 + record, batch.num_rows, skipped.lines)
        record += batch.num_rows
        cols = {n: batch.column(r) for n, r in zip(needed, read, strict=True)}
        blank = np.logical_and.reduce([np.asarray(pc.equal(c, "")) for c in cols.values()])
        if blank.any():
            keep = pa.array(~blank)
            cols = {n: c.filter(keep) for n, c in cols.items()}
        if layout.packed:
            yield _unpack(cols, rows[~blank], layout, report)
        else:
            yield cols, rows[~blank], {}


def _has_data(path: Path, layout: Layout) -> bool:
    with _open(path, layout.compression == "gzip") as fh:
        return fh.read(HEAD_BYTES).count(b"\n") >= layout.header_rows


class _Skipped:
    """pyarrow's handler of lines with a wrong number of fields: report, remember, skip."""

    def __init__(self, report: Report, delimiter: str | None) -> None:
        self.report, self.delimiter = report, delimiter
        self.lines: list[int] = []

    def __call__(self, row: Any) -> str:
        if row.number is not None:  # known when parsing in one thread, as we do
            self.lines.append(row.number)
        reason = (
            f"expected {row.expected_columns} fields separated by {self.delimiter!r}, "
            f"found {row.actual_columns}"
        )
        try:
            text = row.text[:200]
        except UnicodeDecodeError:  # the line is not in the file's encoding either
            text = None
        self.report.add(row.number, None, text, "malformed-row", reason)
        return "skip"


def _open_csv(
    path: Path, layout: Layout, names: list[str], read: list[str], rows: int, skipped: _Skipped
) -> Any:
    """pyarrow's streaming CSV reader, every column as text, blank lines kept as rows."""
    import pyarrow.csv as pcsv

    encoding = layout.encoding if layout.encoding not in (None, "utf-8", "utf-8-sig") else "utf8"
    return pcsv.open_csv(
        pa.input_stream(str(path), compression=layout.compression),
        read_options=pcsv.ReadOptions(
            use_threads=False,  # one thread, so that skipped lines have their numbers
            block_size=min(max(rows * 40, 1 << 20), 1 << 26),
            skip_rows=layout.header_rows,
            column_names=names,
            encoding=encoding,
        ),
        parse_options=pcsv.ParseOptions(
            delimiter=layout.delimiter or ",", ignore_empty_lines=False, invalid_row_handler=skipped
        ),
        convert_options=pcsv.ConvertOptions(
            include_columns=read,
            column_types=dict.fromkeys(read, pa.large_string()),
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _slices(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)


def _line_numbers(first: int, n: int, skipped: list[int]) -> np.ndarray:
    """Line numbers of ``n`` records from ``first``, past the lines the parser skipped."""
    base = first + np.arange(n, dtype=np.int64)
    if not skipped:
        return base
    skips = np.sort(np.asarray(skipped, dtype=np.int64))
    lines = base
    while True:
        moved = base + np.searchsorted(skips, lines, side="right")
        if np.array_equal(moved, lines):
            return lines
        lines = moved


def _unpack(cols: dict[str, Any], rows: np.ndarray, layout: Layout, report: Report) -> Batch:
    """Eurostat TSV: split the packed dimensions, and "12345.6 p" into value and flag."""
    parts = pc.split_pattern(cols.pop(layout.names[0]), ",")
    good = np.asarray(pc.equal(pc.list_value_length(parts), len(layout.packed)))
    if not good.all():
        bad = np.flatnonzero(~good)
        taken = parts.take(pa.array(bad))
        cells = pc.binary_join(taken, pa.scalar(",", taken.type.value_type)).to_pylist()
        reason = f"expected the {len(layout.packed)} dimensions {','.join(layout.packed)}"
        report.extend(rows[bad], layout.names[0], cells, "malformed-row", reason)
        keep = pa.array(good)
        parts, rows = parts.filter(keep), rows[good]
        cols = {n: c.filter(keep) for n, c in cols.items()}
    for i, dim in enumerate(layout.packed):
        cols[dim] = pc.utf8_trim_whitespace(pc.list_element(parts, i))
    flags = {}
    for name, _, _ in layout.wide:
        cell = pc.utf8_trim_whitespace(cols[name])
        split = pc.extract_regex(cell, _TSV_CELL)
        cols[name] = pc.coalesce(pc.struct_field(split, "value"), cell)
        flags[name] = pc.struct_field(split, "flag")
    return cols, rows, flags
