"""Finding the header rows, the columns' roles, a wide table's value columns, the decimal mark."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from geo.formats.options import (
    SDMX_OTHER,
    ReadOptions,
    WideColumn,
    _check_width,
    _norm,
    _refuse,
    _role,
    _year,
)

_NUTS = re.compile(r"[A-Z]{2}[0-9A-Z]{0,3}")
_NUMERIC = re.compile(r"\s*[+-]?[\d.,]*\d[\d.,]*([eE][+-]?\d+)?\s*|\s*:\s*")


def _detect_decimal(cells: list[str], delimiter: str | None) -> str:
    """',' when numbers such as 1,5 outnumber 1.5 (or, with ';', only 1.234 occurs)."""
    comma = sum(bool(re.fullmatch(r"[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+", c)) for c in cells)
    dot = sum(bool(re.fullmatch(r"[+-]?(\d+|\d{1,3}(,\d{3})+)\.\d+", c)) for c in cells)
    grouped = sum(bool(re.fullmatch(r"[+-]?\d{1,3}(\.\d{3})+", c)) for c in cells)
    dot -= grouped
    if comma > dot or (comma == dot == 0 and grouped and delimiter == ";"):
        return ","
    return "."


def _find_header(
    path: Path,
    raw: list[list[str]],
    filled: list[list[str]],
    covered: set[tuple[int, int]],
    options: ReadOptions,
) -> tuple[list[str], int, list[str]]:
    """Column names, rows before the first data row, and group labels above the names.

    The header is the first row naming a region column; rows below it with an empty region
    cell that name columns the header left empty (or spanned by a merged cell) continue it.
    Each column is named by its lowest header cell; ``filled`` has merged cells filled in.
    """
    wanted = options.columns.get("geo")
    found = (
        (h, j)
        for h, row in enumerate(filled[:50])
        for j, cell in enumerate(row)
        if cell == wanted or (wanted is None and _role(cell) == "geo")
    )
    h, g = next(found, (-1, -1))
    if h < 0:
        first = next((row for row in raw if any(row)), [])
        reason = f"no region column (named e.g. geo, NUTS_ID, nuts_code, region); found {first}"
        raise _refuse(path, "no-region-column", reason)
    end = h + 1
    while end < min(len(raw), h + 4) and _continues(raw[h], raw[end], g, covered, h):
        end += 1
    width = max(len(row) for row in filled[max(h - 2, 0) : end])
    names, groups = [], []
    for j in range(width):
        cells = [_cell(filled[i], j) for i in range(h, end) if _cell(filled[i], j)]
        name = cells[-1] if cells else ""
        above = [_cell(filled[i], j) for i in range(max(h - 2, 0), end)]
        groups.append(next((c for c in reversed(above) if c and c != name), ""))
        names.append(name)
    return names, end, groups


def _cell(row: list[str], j: int) -> str:
    return row[j] if j < len(row) else ""


def _continues(
    header: list[str], row: list[str], g: int, covered: set[tuple[int, int]], h: int
) -> bool:
    if _cell(row, g):
        return False
    return any(cell and (not _cell(header, j) or (h, j) in covered) for j, cell in enumerate(row))


def _unique(names: list[str], groups: list[str]) -> list[str]:
    """Unique, non-empty names: a repeated name gets its group label, then a number."""
    counts = Counter(names)
    out = [
        f"{g} {n}" if counts[n] > 1 and g else n or f"column {j + 1}"
        for j, (n, g) in enumerate(zip(names, groups, strict=True))
    ]
    seen: Counter[str] = Counter()
    for j, name in enumerate(out):
        seen[name] += 1
        out[j] = name if seen[name] == 1 else f"{name}.{seen[name] - 1}"
    return out


def _classify(
    path: Path,
    labels: list[str],
    groups: list[str],
    sample: list[list[Any]],
    options: ReadOptions,
    sdmx: bool,
) -> tuple[list[str], dict[str, str], tuple[WideColumn, ...], tuple[str, ...]]:
    """Unique column names, their roles, a wide table's value columns, indicator columns.

    ``labels`` are the header cells (``groups`` the labels above them). Of several columns
    named like a region column, the one whose sampled cells look most like NUTS codes wins.
    """
    _check_width(path, len(labels), options)
    names = _unique(labels, groups)
    roles: dict[str, str] = {}
    for j in sorted(range(len(names)), key=lambda j: -_codes_in(sample, j)):
        role = _role(names[j])
        if role and role not in roles:
            roles[role] = names[j]
    roles.update(options.columns)
    taken = set(roles.values()) | set(options.where) | set(options.indicator_from or ())
    wide: tuple[WideColumn, ...] = ()
    if options.format != "tidy" and ("value" not in roles or options.format == "wide"):
        wide = _by_year(names, labels, groups, taken) or (
            _by_indicator(names, sample, taken) if "time" in roles else ()
        )
    if not wide and "value" not in roles:
        reason = "no value column: name it 'value' or 'OBS_VALUE', or use one column per year"
        raise _refuse(path, "no-value-column", reason)
    if "time" not in roles and not all(t for _, _, t in wide):
        raise _refuse(path, "no-time-column", "no time column: name it 'time' or 'year'")
    dims: tuple[str, ...] = ()
    if sdmx:
        skip = {roles.get(r) for r in ("geo", "time", "value", "flag")}
        dims = tuple(n for n in names if n not in skip and _norm(n) not in SDMX_OTHER | {"freq"})
    return names, roles, wide, dims


def _codes_in(sample: list[list[Any]], j: int) -> int:
    """How many sampled cells of column ``j`` look like NUTS codes (AT, AT3, AT31, AT312)."""
    return sum(bool(_NUTS.fullmatch(str(row[j]).strip())) for row in sample if j < len(row))


def _by_year(
    names: list[str], labels: list[str], groups: list[str], taken: set[str]
) -> tuple[WideColumn, ...]:
    """One column per year; distinct group labels above the years name the indicators."""
    years = [
        (n, g, y)
        for n, label, g in zip(names, labels, groups, strict=True)
        if n not in taken and (y := _year(label))
    ]
    distinct = {g for _, g, _ in years}
    return tuple((n, g if len(distinct) > 1 and g else None, y) for n, g, y in years)


def _by_indicator(
    names: list[str], sample: list[list[Any]], taken: set[str]
) -> tuple[WideColumn, ...]:
    """One column per indicator: the other columns whose sampled cells are mostly numbers."""
    out = []
    for j, name in enumerate(names):
        cells = [row[j] for row in sample if j < len(row) and row[j] not in (None, "")]
        numeric = sum(isinstance(c, int | float) or bool(_NUMERIC.fullmatch(str(c))) for c in cells)
        if name not in taken and cells and numeric >= 0.5 * len(cells):
            out.append((name, name, None))
    return tuple(out)


def _value_cells(
    names: list[str], roles: dict[str, str], wide: tuple[WideColumn, ...], sample: list[list[Any]]
) -> list[str]:
    """The sampled text cells of the value column(s), to detect the decimal mark."""
    cols = [c for c, _, _ in wide] or [roles["value"]]
    index = [names.index(c) for c in cols if c in names]
    return [
        str(row[j]).strip()
        for row in sample
        for j in index
        if j < len(row) and isinstance(row[j], str)
    ]
