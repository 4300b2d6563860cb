"""XLSX workbooks: sniffing a sheet (merged cells included) and streaming its rows."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from geo.formats.header import _cell, _classify, _detect_decimal, _find_header, _value_cells
from geo.formats.options import HEAD_ROWS, Batch, Layout, ReadOptions, _needed, _refuse, _text

_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\b[^>]*?\bref="([A-Z]+\d+(?::[A-Z]+\d+)?)"')


def _sniff_xlsx(path: Path, options: ReadOptions) -> Layout:
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = _worksheet(path, wb, options.sheet)
        head = [list(r) for r in ws.iter_rows(max_row=HEAD_ROWS, values_only=True)]
        merges = _merges(path, ws)
        title = ws.title
    finally:
        wb.close()
    raw = [[_text(v) for v in row] for row in head]
    filled, covered = _fill(raw, merges)
    labels, header_rows, groups = _find_header(path, raw, filled, covered, options)
    sample = head[header_rows:]
    names, roles, wide, dims = _classify(path, labels, groups, sample, options, False)
    decimal = options.decimal or _detect_decimal(_value_cells(names, roles, wide, sample), None)
    return Layout("xlsx", None, None, decimal, title, header_rows, roles, tuple(names), wide, dims)


def _fill(
    raw: list[list[str]], merges: list[tuple[int, int, int, int]]
) -> tuple[list[list[str]], set[tuple[int, int]]]:
    """The rows with merged cells filled from their top-left cell, and the cells so filled."""
    filled = [list(row) for row in raw]
    covered: set[tuple[int, int]] = set()
    for c0, r0, c1, r1 in merges:
        if r0 > len(raw):
            continue
        top = _cell(raw[r0 - 1], c0 - 1)
        for r, c in ((r, c) for r in range(r0 - 1, min(r1, len(raw))) for c in range(c0 - 1, c1)):
            if (r, c) != (r0 - 1, c0 - 1):
                covered.add((r, c))
                filled[r].extend([""] * (c + 1 - len(filled[r])))
                filled[r][c] = top
    return filled, covered


def _worksheet(path: Path, wb: Any, sheet: str | int | None) -> Any:
    try:
        return wb.worksheets[sheet or 0] if not isinstance(sheet, str) else wb[sheet]
    except (IndexError, KeyError) as exc:
        reason = f"no sheet {sheet!r}; the workbook has {wb.sheetnames}"
        raise _refuse(path, "unknown-sheet", reason, sheet) from exc


def _merges(path: Path, ws: Any) -> list[tuple[int, int, int, int]]:
    """Merged ranges (min_col, min_row, max_col, max_row) of a read-only sheet.

    openpyxl's read-only mode does not report them, so the sheet's XML is scanned for its
    ``mergeCell`` elements, which follow the cell data.
    """
    from openpyxl.utils.cell import range_boundaries

    member = str(getattr(ws, "_worksheet_path", "")).lstrip("/")
    found: list[bytes] = []
    with zipfile.ZipFile(path) as zf:
        if member not in zf.namelist():
            return []
        with zf.open(member) as fh:
            tail = b""
            for block in iter(lambda: fh.read(1 << 20), b""):
                text = tail + block
                cut = max(len(text) - 1024, 0)  # a match may run on into the next block
                found += [m.group(1) for m in _MERGE.finditer(text) if m.start() < cut]
                tail = text[cut:]
            found += [m.group(1) for m in _MERGE.finditer(tail)]
    return sorted({range_boundaries(ref.decode()) for ref in found})


def _xlsx_batches(
    path: Path, layout: Layout, options: ReadOptions, batch_rows: int
) -> Iterator[Batch]:
    import openpyxl

    needed = _needed(layout, options)
    index = [layout.names.index(n) for n in needed]
    values = {c for c, _, _ in layout.wide} | {layout.columns.get("value")}
    labels = {j + 1 for j, n in zip(index, needed, strict=True) if n not in values}
    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb[layout.sheet] if layout.sheet else wb.worksheets[0]
        fill = _MergeFill(_merges(path, ws), layout.header_rows, labels)
        cells: list[list[Any]] = []
        rows: list[int] = []
        start = layout.header_rows + 1
        for r, line in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
            row = fill(r, index, [line[j] if j < len(line) else None for j in index])
            if any(v is not None and v != "" for v in row):
                cells.append(row)
                rows.append(r)
            if len(cells) >= batch_rows:
                yield _xlsx_batch(needed, values, cells, rows)
                cells, rows = [], []
        if cells:
            yield _xlsx_batch(needed, values, cells, rows)
    finally:
        wb.close()


class _MergeFill:
    """Fills the cells of merged ranges in label columns with the range's top-left value."""

    def __init__(self, merges: list[tuple[int, int, int, int]], header_rows: int, cols: set[int]):
        self.covered: dict[tuple[int, int], tuple[int, int]] = {}
        for c0, r0, c1, r1 in merges:
            if r0 > header_rows:
                for r in range(r0, r1 + 1):
                    cells = [(r, c) for c in range(c0, c1 + 1) if c in cols and (r, c) != (r0, c0)]
                    self.covered.update(dict.fromkeys(cells, (r0, c0)))
        self.tops = set(self.covered.values())
        self.seen: dict[tuple[int, int], Any] = {}

    def __call__(self, r: int, index: list[int], row: list[Any]) -> list[Any]:
        if not self.covered:
            return row
        for k, j in enumerate(index):
            if (r, j + 1) in self.tops:
                self.seen[(r, j + 1)] = row[k]
            elif (r, j + 1) in self.covered:
                row[k] = self.seen.get(self.covered[(r, j + 1)])
        return row


def _xlsx_batch(
    needed: list[str], values: set[str | None], cells: list[list[Any]], rows: list[int]
) -> Batch:
    cols: dict[str, Any] = {}
    for k, name in enumerate(needed):
        column = [row[k] for row in cells]
        if name in values:
            cols[name] = pd.Series(column, dtype=object)
        else:
            cols[name] = pa.array([_text(v) for v in column], pa.large_string())
    return cols, np.asarray(rows, dtype=np.int64), {}
