"""Validating chunks of indicator tables, with a report naming every problem.

:func:`geo.formats.read_chunks` turns an upload of any layout into chunks of one tidy shape
(``indicator, geo, time, value, flag, unit, row, column``); a :class:`Validator` checks them
one by one, returns the valid rows normalised, and finds the whole-table problems (duplicate
keys, mixed NUTS levels, no data) in :meth:`Validator.finish` without holding the table.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo.errors import IngestError, InvalidParameterError, closest

MAX_PROBLEMS = 100
FLAG_LETTERS = "bcdefnprsuz"
FLAG_PATTERN = f"^[{FLAG_LETTERS}]+$"

# Numbers as written: plain, grouped by thousands with a decimal part (unambiguous), and
# grouped without one (ambiguous: "1.234" is 1.234 or 1234), for each decimal mark.
_NUMBER = {
    ".": r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$",
    ",": r"^[+-]?(\d+(,\d*)?|,\d+)([eE][+-]?\d+)?$",
}
_GROUPED = {".": r"^[+-]?\d{1,3}(,\d{3})+\.\d+$", ",": r"^[+-]?\d{1,3}(\.\d{3})+,\d+$"}
_AMBIGUOUS = {".": r"^[+-]?\d{1,3}(,\d{3})+$", ",": r"^[+-]?\d{1,3}(\.\d{3})+$"}
_NAN = r"^[+-]?nan$"
_INF = r"^[+-]?inf(inity)?$"
_WHOLE = r"^[+-]?\d+(\.0*)?$"

Reason = str | Callable[[int], str]  # a text, or the text for the i-th finding


def _finding(file: str, row: object, column: object, value: object, rule: str, reason: str) -> dict:
    return {
        "file": file,
        "row": None if row is None else int(row),  # type: ignore[call-overload]
        "column": None if column is None else str(column),
        "value": None if value is None else str(value),
        "rule": rule,
        "reason": reason,
    }


@dataclass
class Report:
    """Problems and warnings found in one file.

    Each finding is ``{"file", "row", "column", "value", "rule", "reason"}``: ``row`` as the
    user sees it (line of a text file, spreadsheet row, Parquet record), ``rule`` a short code
    such as ``unknown-nuts-code``.

    Attributes
    ----------
    problems, warnings
        The first ``max_problems`` findings of each kind.
    more_problems, more_warnings
        How many more were found but not listed.
    counts
        Rule -> every finding of that rule, listed or not.
    """

    file: str
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    max_problems: int = MAX_PROBLEMS
    more_problems: int = 0
    more_warnings: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def add(
        self,
        row: int | None,
        column: str | None,
        value: object,
        rule: str,
        reason: str,
        warning: bool = False,
    ) -> None:
        """Record one finding; ``row`` is the row number the user sees in the file."""
        self.extend([row], column, [value], rule, reason, warning)

    def extend(
        self,
        rows: Sequence[int | None] | np.ndarray,
        column: str | None | Sequence[str] | np.ndarray,
        values: Sequence[object] | np.ndarray,
        rule: str,
        reason: Reason,
        warning: bool = False,
        total: int | None = None,
    ) -> None:
        """Record one finding per row.

        Parameters
        ----------
        column
            The source column of every finding, or one per finding.
        reason
            A text, or a function giving the text of the i-th finding (called only for the
            findings that are listed).
        total
            The number of findings of which these are the first (default: as many as rows).
        """
        target = self.warnings if warning else self.problems
        n = len(rows)
        room = min(n, max(self.max_problems - len(target), 0))
        for i in range(room):
            col = column if column is None or isinstance(column, str) else column[i]
            text = reason if isinstance(reason, str) else reason(i)
            target.append(_finding(self.file, rows[i], col, values[i], rule, text))
        more = max(n if total is None else total, n) - room
        if warning:
            self.more_warnings += more
        else:
            self.more_problems += more
        self.counts[rule] = self.counts.get(rule, 0) + room + more

    @property
    def ok(self) -> bool:
        """True when no problem was found (warnings allowed)."""
        return not self.problems and not self.more_problems

    def describe(self) -> dict[str, Any]:
        """JSON-able summary: the listed findings, how many more there are, counts per rule."""
        return {
            "file": self.file,
            "problems": self.problems,
            "warnings": self.warnings,
            "more_problems": self.more_problems,
            "more_warnings": self.more_warnings,
            "counts": dict(self.counts),
        }

    def raise_if_any(self) -> None:
        """Raise :class:`IngestError` listing the problems (and how many were not listed)."""
        if self.ok:
            return
        problems = list(self.problems)
        if self.more_problems:
            reason = f"and {self.more_problems} more problems not listed"
            problems.append(_finding(self.file, None, None, None, "more-problems", reason))
        raise IngestError(self.file, problems)


# -- parsing strings -----------------------------------------------------------------------


def arrow_strings(values: pd.Series | pa.Array | pa.ChunkedArray) -> pa.Array:
    """The values as one Arrow ``large_string`` array (None stays null)."""
    if isinstance(values, pd.Series) and values.dtype == object:
        codes, uniques = pd.factorize(values.to_numpy())
        texts = [u if isinstance(u, str) else str(u) for u in uniques]
        values = pa.array(texts, pa.large_string()).take(pa.array(codes, mask=codes < 0))
    elif isinstance(values, pd.Series):
        values = pa.array(values)
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.large_string():
        values = values.cast(pa.large_string())
    return values


def _mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, null counting as False."""
    return np.asarray(pc.fill_null(values, False), dtype=bool)


@dataclass
class Numbers:
    """Numbers parsed from cells: values (NaN where missing or bad) and masks per finding."""

    values: np.ndarray
    missing: np.ndarray
    problems: dict[str, np.ndarray]
    warnings: dict[str, np.ndarray]


def parse_numbers(values: pd.Series | pa.Array, decimal: str = ".") -> Numbers:
    """Parse cells as written in a file, or as numbers stored by Parquet or XLSX.

    Parameters
    ----------
    values
        Text, numbers (null: an empty cell), or spreadsheet cells (object: numbers, text
        and None).
    decimal
        The decimal mark of the text.

    Returns
    -------
    Numbers
        Empty cells and ``:`` are missing. Problems: ``non-numeric``, ``nan-value`` and
        ``infinite-value`` (written or stored), ``ambiguous-number`` (``1.234`` with the
        decimal mark ``,``: 1.234 or 1234?). Warning: ``thousands-separator`` for grouped
        numbers with a decimal part (``1.234,5``), which are read.
    """
    if isinstance(values, pd.Series) and values.dtype == object:
        return _parse_objects(values.to_numpy(), decimal)
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        return _parse_stored(array)
    return _parse_text(arrow_strings(array), decimal)


def _parse_stored(array: pa.Array | pa.ChunkedArray) -> Numbers:
    """Numbers stored as numbers: null is missing; a stored NaN or infinity is a problem."""
    missing = np.asarray(array.is_null())
    num = np.asarray(pc.fill_null(array.cast(pa.float64()), np.nan), dtype=np.float64)
    nan = np.isnan(num) & ~missing
    return Numbers(num, missing, {"nan-value": nan, "infinite-value": np.isinf(num)}, {})


def _parse_text(text: pa.Array, decimal: str) -> Numbers:
    missing = _mask(pc.or_(pc.is_null(text), pc.is_in(text, pa.array(["", ":"]))))
    present = pc.if_else(pa.array(missing), pa.scalar(None, text.type), text)
    if decimal == ".":
        try:
            num = _floats(pc.cast(present, pa.float64()))
        except pa.ArrowInvalid:
            pass
        else:
            nan = np.isnan(num) & ~missing
            return Numbers(num, missing, {"nan-value": nan, "infinite-value": np.isinf(num)}, {})
    return _parse_slowly(text, decimal)


def _floats(array: pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, np.nan), dtype=np.float64)


def _parse_slowly(text: pa.Array, decimal: str) -> Numbers:
    """Classify every cell: number, grouped number, ambiguous, NaN, infinity or not a number."""
    text = pc.utf8_trim_whitespace(text)
    missing = _mask(pc.or_(pc.is_null(text), pc.is_in(text, pa.array(["", ":"]))))
    plain = _mask(pc.match_substring_regex(text, _NUMBER[decimal]))
    grouped = _mask(pc.match_substring_regex(text, _GROUPED[decimal]))
    ambiguous = _mask(pc.match_substring_regex(text, _AMBIGUOUS[decimal]))
    nan = _mask(pc.match_substring_regex(text, _NAN, ignore_case=True))
    inf = _mask(pc.match_substring_regex(text, _INF, ignore_case=True))
    sep = "," if decimal == "." else "."
    readable = pc.replace_substring(text, sep, "") if decimal == "." else text
    if decimal == ",":
        readable = pc.replace_substring(pc.replace_substring(text, ".", ""), ",", ".")
    ok = pa.array(plain | grouped)
    num = _floats(pc.cast(pc.if_else(ok, readable, pa.scalar(None, text.type)), pa.float64()))
    bad = ~(missing | plain | grouped | ambiguous | nan | inf)
    problems = {"non-numeric": bad, "ambiguous-number": ambiguous, "nan-value": nan}
    problems["infinite-value"] = inf
    return Numbers(num, missing, problems, {"thousands-separator": grouped})


def _parse_objects(cells: np.ndarray, decimal: str) -> Numbers:
    """Spreadsheet cells: numbers, text (parsed as written), empty (None) or other types."""
    is_number = np.fromiter(
        (isinstance(v, int | float) and not isinstance(v, bool) for v in cells), bool, len(cells)
    )
    stored = pa.array([float(v) if n else None for v, n in zip(cells, is_number, strict=True)])
    text = pa.array(
        [
            None if n else ("" if v is None else str(v))
            for v, n in zip(cells, is_number, strict=True)
        ],
        pa.large_string(),
    )
    a, b = _parse_stored(stored), _parse_text(text, decimal)
    values = np.where(is_number, a.values, b.values)
    missing = np.where(is_number, False, b.missing)
    problems = {r: np.where(is_number, a.problems.get(r, False), m) for r, m in b.problems.items()}
    return Numbers(values, missing, problems, b.warnings)


def parse_years(values: pd.Series | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Whole years from text (``2019``, `` 2019``, ``2019.0``); returns years and a bad mask."""
    text = pc.fill_null(arrow_strings(values), "")
    try:
        return np.asarray(pc.cast(text, pa.int64()), dtype=np.int64), np.zeros(len(text), bool)
    except pa.ArrowInvalid:
        pass
    text = pc.utf8_trim_whitespace(text)
    whole = _mask(pc.match_substring_regex(text, _WHOLE))
    digits = pc.replace_substring_regex(text, r"\.0*$", "")
    years = pc.cast(pc.if_else(pa.array(whole), digits, "0"), pa.int64())
    return np.asarray(years, dtype=np.int64), ~whole


@dataclass
class Categories:
    """A column of few distinct texts (flags, units): codes into stripped, distinct names.

    The code -1 stands for an empty or missing cell.
    """

    codes: np.ndarray
    names: list[str]

    @classmethod
    def of(cls, values: pd.Series | pa.Array | None, n: int = 0) -> Categories:
        """Encode a column (``None``: ``n`` missing cells)."""
        if values is None:
            return cls(np.full(n, -1, dtype=np.int64), [])
        if isinstance(values, pd.Series) and values.dtype == object:
            codes, uniques = pd.factorize(values.to_numpy())
            texts = [str(u).strip() for u in uniques]
        else:
            encoded = pc.dictionary_encode(arrow_strings(values))
            codes = np.asarray(pc.fill_null(encoded.indices, -1), dtype=np.int64)
            texts = [t.strip() for t in encoded.dictionary.to_pylist()]
        index: dict[str, int] = {}
        remap = np.array([index.setdefault(t, len(index)) if t else -1 for t in texts] + [-1])
        return cls(remap[codes], list(index))

    def take(self, keep: np.ndarray) -> Categories:
        return Categories(self.codes[keep], self.names)

    def objects(self) -> pd.Series:
        """The texts as an object Series, None where empty."""
        return pd.Series(np.array([*self.names, None], dtype=object)[self.codes], dtype=object)

    def hashes(self) -> np.ndarray:
        table = [_text_hash(t) for t in self.names]
        return np.array([*table, 0], dtype=np.uint64)[self.codes]


# -- keys, hashes and per-indicator facts ----------------------------------------------------

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective scramble of 64-bit words."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


class _Interner:
    """Small integer ids for strings (indicators, codes), with a stable 64-bit hash each."""

    def __init__(self, limit: int) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []
        self.hashes: list[int] = []
        self.limit = limit

    def encode(self, values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        """Ids and hashes of ``values`` (no nulls)."""
        encoded = pc.dictionary_encode(values)
        local = [self._id(s) for s in encoded.dictionary.to_pylist()]
        index = np.asarray(encoded.indices, dtype=np.int64)
        ids = np.asarray(local, dtype=np.uint64)[index] if local else np.zeros(0, np.uint64)
        hashes = np.asarray(self.hashes, dtype=np.uint64)[ids.astype(np.int64)]
        return ids, hashes

    def _id(self, text: str) -> int:
        if text not in self.ids:
            if len(self.names) >= self.limit:
                raise InvalidParameterError(f"more than {self.limit} distinct values of a key")
            self.ids[text] = len(self.names)
            self.names.append(text)
            self.hashes.append(_text_hash(text))
        return self.ids[text]


def _value_bits(values: np.ndarray) -> np.ndarray:
    clean = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN, and -0.0 as 0.0
    return clean.view(np.uint64)


EMPTY = pd.DataFrame(
    {
        "indicator": pd.Series([], dtype="str"),
        "geo": pd.Series([], dtype="str"),
        "time": pd.Series([], dtype=np.int64),
        "value": pd.Series([], dtype=np.float64),
        "flag": pd.Series([], dtype=object),
        "unit": pd.Series([], dtype=object),
    }
)


@dataclass
class _Levels:
    """Rows of one NUTS level within one indicator: how many, and the first few."""

    count: int = 0
    rows: list[int] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)


REASONS = {
    "not-a-year": "not a year: use whole years such as 2019 (no quarters or months)",
    "missing-nuts-code": "no NUTS code in this row",
    "missing-indicator": "no indicator named in this row",
    "nan-value": "NaN is not a value: use ':' or an empty cell for a missing value",
    "infinite-value": "infinite values are not allowed",
    "unknown-flag": f"unknown Eurostat flag: use letters of '{FLAG_LETTERS}' (e.g. p, e, bp)",
}


class Validator:
    """Validate the chunks of one table against the NUTS codes of the boundary layer in use.

    Parameters
    ----------
    file
        The file name used in the report.
    known
        The valid NUTS codes of the boundary layer in use (all levels).
    recode
        One-to-one renames from the table's NUTS version to the boundaries' version; applied,
        counted in ``summary["recoded"]`` and warned about once per code.
    flagged
        Codes that were split, merged or changed, with a human explanation: problems.
    other_versions
        Codes valid only in another NUTS version, with that version's year: problems.
    years
        The range of acceptable years (inclusive).
    max_problems
        How many problems (and warnings) the report lists; the rest are counted.
    decimal
        The decimal mark of numbers written as text.
    max_rows
        Refuse tables with more data rows.
    columns
        Role -> source column name (:attr:`geo.formats.Layout.columns`), to name the
        columns in the report as the user knows them.

    Attributes
    ----------
    report : Report
        The findings so far.
    summary : dict
        ``data_rows`` (rows of the file), ``rows_read`` and ``rows_kept`` (observations: a
        row of a wide table holds several), ``rows_missing`` (kept without a value),
        ``indicators`` (code -> ``years``, ``units``, ``levels``, after :meth:`finish`) and
        ``recoded`` (old code -> ``{"new": code, "rows": n}``).
    content_hash : str
        After :meth:`finish`: SHA-256 over the sorted 64-bit hashes of the kept rows,
        independent of row order, chunking and file format.

    Notes
    -----
    Duplicate keys are found with exact 64-bit key codes (indicator id, region id, year),
    not hashes, so no collision can ever refuse a valid file; ``finish`` needs about 20
    bytes per kept row.
    """

    def __init__(
        self,
        file: str,
        known: Collection[str],
        *,
        recode: Mapping[str, str] = {},  # noqa: B006 - read only
        flagged: Mapping[str, str] = {},  # noqa: B006
        other_versions: Mapping[str, int] = {},  # noqa: B006
        years: tuple[int, int] = (1900, 2100),
        max_problems: int = MAX_PROBLEMS,
        decimal: str = ".",
        max_rows: int | None = None,
        columns: Mapping[str, str] = {},  # noqa: B006
    ) -> None:
        if not 0 <= years[1] - years[0] < 1 << 16:
            raise InvalidParameterError(f"years must be a range of under 65,536 years: {years}")
        if decimal not in _NUMBER:
            raise InvalidParameterError(f"decimal must be '.' or ',', not {decimal!r}")
        self.report = Report(file, max_problems=max_problems)
        self.summary: dict[str, Any] = {
            "data_rows": 0,
            "rows_read": 0,
            "rows_kept": 0,
            "rows_missing": 0,
            "indicators": {},
            "recoded": {},
        }
        self.content_hash = ""
        self._known = pa.array(sorted(set(known)), pa.large_string())
        self._known_list = self._known.to_pylist()
        self._recode = (
            pa.array(list(recode), pa.large_string()),
            pa.array(list(recode.values()), pa.large_string()),
        )
        self._flagged, self._other = dict(flagged), dict(other_versions)
        self._years, self._decimal, self._max_rows = years, decimal, max_rows
        self._names = {r: columns.get(r, r) for r in ("geo", "time", "indicator", "flag")}
        self._indicators, self._geos = _Interner(1 << 24), _Interner(1 << 24)
        self._keys: list[np.ndarray] = []
        self._rows: list[np.ndarray] = []
        self._hashes: list[np.ndarray] = []
        self._years_of: dict[int, set[int]] = {}
        self._units_of: dict[int, set[str]] = {}
        self._levels: dict[tuple[int, int], _Levels] = {}
        self._hints: dict[str, str] = {}
        self._limit_row: int | None = None
        self._last_row = -1

    # -- per chunk ---------------------------------------------------------------------------

    def check(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Validate one chunk; return its valid rows normalised, record the problems.

        Returns ``indicator`` (str), ``geo`` (str, after recoding), ``time`` (int64),
        ``value`` (float64, NaN for a missing value), ``flag`` and ``unit`` (str or None).
        Rows are final only if :meth:`finish` finds no problem (duplicates are found there).
        """
        n = len(chunk)
        self.summary["rows_read"] += n
        rows = chunk["row"].to_numpy(dtype=np.int64)
        if n == 0 or self._over_limit(rows):
            return EMPTY.copy()
        ok = np.ones(n, dtype=bool)
        geo = self._check_geo(arrow_strings(chunk["geo"]), rows, ok)
        time = self._check_time(chunk["time"], rows, ok)
        numbers = self._check_values(chunk["value"], chunk["column"], rows, ok)
        flag = self._check_flags(Categories.of(chunk["flag"]), rows, ok)
        indicator = self._check_indicator(arrow_strings(chunk["indicator"]), rows, ok)
        unit = Categories.of(chunk["unit"])
        if not ok.all():
            keep = pa.array(ok)
            geo, indicator = geo.filter(keep), indicator.filter(keep)
            flag, unit, time, rows = flag.take(ok), unit.take(ok), time[ok], rows[ok]
        values = numbers.values[ok]
        self.summary["rows_kept"] += len(values)
        self.summary["rows_missing"] += int(numbers.missing[ok].sum())
        if len(values):
            self._track(indicator, geo, flag, unit, time, values, rows)
        return pd.DataFrame(
            {
                "indicator": indicator.to_pandas(),
                "geo": geo.to_pandas(),
                "time": time,
                "value": values,
                "flag": flag.objects(),
                "unit": unit.objects(),
            }
        )

    def _over_limit(self, rows: np.ndarray) -> bool:
        """Count the file's data rows (a row of a wide table comes as several cells)."""
        starts = np.flatnonzero(np.diff(rows, prepend=self._last_row) != 0)
        self._last_row = int(rows[-1])
        before = self.summary["data_rows"]
        self.summary["data_rows"] = before + len(starts)
        if self._max_rows is None or before + len(starts) <= self._max_rows:
            return False
        if self._limit_row is None:
            self._limit_row = int(rows[starts[self._max_rows - before]])
        return True

    def _rows_problem(
        self,
        rows: np.ndarray,
        bad: np.ndarray,
        values: Any,
        role: str,
        rule: str,
        reason: str | Callable[[Any], str],
    ) -> None:
        """Report each bad row once (a row of a wide table gives several cells)."""
        idx = np.flatnonzero(bad)
        if idx.size == 0:
            return
        _, first = np.unique(rows[idx], return_index=True)
        idx = idx[np.sort(first)]
        shown = idx[: self.report.max_problems]
        cells = _take(values, shown)
        why = reason if isinstance(reason, str) else (lambda i: reason(cells[i]))
        self.report.extend(rows[shown], self._names[role], cells, rule, why, total=idx.size)

    def _check_geo(self, geo: pa.Array, rows: np.ndarray, ok: np.ndarray) -> pa.Array:
        geo = self._apply_recode(geo, rows)
        bad = ~_mask(pc.is_in(geo, value_set=self._known))
        if not bad.any():
            return geo
        ok &= ~bad
        codes = np.asarray(geo.filter(pa.array(bad)).to_numpy(zero_copy_only=False), dtype=object)
        rules = {code: self._geo_rule(code) for code in set(codes)}
        for rule in sorted(set(rules.values())):
            which = np.zeros(len(geo), dtype=bool)
            which[np.flatnonzero(bad)[[rules[c] == rule for c in codes]]] = True
            self._rows_problem(rows, which, geo, "geo", rule, self._geo_reason)
        return geo

    def _geo_rule(self, code: str) -> str:
        if not code:
            return "missing-nuts-code"
        if code in self._flagged:
            return "nuts-code-not-convertible"
        return "nuts-code-other-version" if code in self._other else "unknown-nuts-code"

    def _geo_reason(self, code: str) -> str:
        if not code:
            return REASONS["missing-nuts-code"]
        if code in self._flagged:
            return (
                f"{code}: {self._flagged[code]}; it cannot be converted automatically to the "
                "NUTS version of the boundaries in use"
            )
        if code in self._other:
            return f"{code} is a NUTS {self._other[code]} code, not valid in the boundaries in use"
        if code not in self._hints:
            upper = code.upper()
            hint = [upper] if upper in self._known_list else closest(upper, self._known_list, 1)
            self._hints[code] = f"; closest valid code: {hint[0]}" if hint else ""
        return "unknown NUTS code" + self._hints[code]

    def _apply_recode(self, geo: pa.Array, rows: np.ndarray) -> pa.Array:
        if not len(self._recode[0]):
            return geo
        index = pc.index_in(geo, value_set=self._recode[0])
        hit = _mask(pc.is_valid(index))
        if not hit.any():
            return geo
        old = pc.dictionary_encode(geo.filter(pa.array(hit)))
        positions = np.asarray(old.indices)
        _, first, counts = np.unique(positions, return_index=True, return_counts=True)
        for code, at, count in zip(old.dictionary.to_pylist(), first, counts, strict=True):
            new = self._recode[1][self._recode[0].index(code).as_py()].as_py()
            entry = self.summary["recoded"].setdefault(code, {"new": new, "rows": 0})
            if entry["rows"] == 0:
                reason = f"{code} recoded to {new} (same region, code of the boundaries in use)"
                self.report.add(
                    int(rows[hit][at]), self._names["geo"], code, "recoded", reason, True
                )
            entry["rows"] += int(count)
        return pc.coalesce(pc.take(self._recode[1], index), geo)

    def _check_time(self, time: pd.Series, rows: np.ndarray, ok: np.ndarray) -> np.ndarray:
        years, bad = parse_years(time)
        lo, hi = self._years
        out = ~bad & ((years < lo) | (years > hi))
        self._rows_problem(rows, bad, time, "time", "not-a-year", REASONS["not-a-year"])
        reason = f"year out of range: only {lo} to {hi} are accepted"
        self._rows_problem(rows, out, time, "time", "year-out-of-range", reason)
        ok &= ~(bad | out)
        return years

    def _check_values(
        self, values: pd.Series, columns: pd.Series, rows: np.ndarray, ok: np.ndarray
    ) -> Numbers:
        numbers = parse_numbers(values, self._decimal)
        d, sep = self._decimal, "," if self._decimal == "." else "."
        reasons = {
            **REASONS,
            "non-numeric": f"not a number (decimal mark '{d}'; ':' or an empty cell for missing)",
            "ambiguous-number": f"ambiguous number: with the decimal mark '{d}', '{sep}' would "
            "group thousands; write the number without grouping",
            "thousands-separator": f"read with '{sep}' as thousands separator",
        }
        for warning, found in ((False, numbers.problems), (True, numbers.warnings)):
            for rule, mask in found.items():
                idx = np.flatnonzero(mask)
                if idx.size:
                    shown = idx[: self.report.max_problems]
                    cols, cells = _take(columns, shown), _take(values, shown)
                    why = reasons[rule]
                    self.report.extend(rows[shown], cols, cells, rule, why, warning, idx.size)
                if not warning:
                    ok &= ~mask
        return numbers

    def _check_flags(self, flag: Categories, rows: np.ndarray, ok: np.ndarray) -> Categories:
        known = [re.fullmatch(FLAG_PATTERN, name) is not None for name in flag.names]
        bad = np.array([not k for k in known] + [False])[flag.codes]
        if bad.any():
            idx = np.flatnonzero(bad)
            shown = idx[: self.report.max_problems]
            rule, cells = "unknown-flag", [flag.names[c] for c in flag.codes[shown]]
            why = REASONS[rule]
            self.report.extend(rows[shown], self._names["flag"], cells, rule, why, total=idx.size)
            ok &= ~bad
        return flag

    def _check_indicator(self, indicator: pa.Array, rows: np.ndarray, ok: np.ndarray) -> pa.Array:
        indicator = pc.utf8_trim_whitespace(pc.fill_null(indicator, ""))
        empty = _mask(pc.equal(indicator, ""))
        rule = "missing-indicator"
        self._rows_problem(rows, empty, indicator, "indicator", rule, REASONS[rule])
        ok &= ~empty
        return indicator

    def _track(
        self,
        indicator: pa.Array,
        geo: pa.Array,
        flag: Categories,
        unit: Categories,
        time: np.ndarray,
        value: np.ndarray,
        rows: np.ndarray,
    ) -> None:
        """Keep what the whole-table checks need: key codes, row numbers, row hashes, facts."""
        ind_ids, ind_hash = self._indicators.encode(indicator)
        geo_ids, geo_hash = self._geos.encode(geo)
        offset = (time - self._years[0]).astype(np.uint64)
        self._keys.append((ind_ids << np.uint64(40)) | (geo_ids << np.uint64(16)) | offset)
        self._rows.append(rows.astype(np.int32 if rows.max() < 1 << 31 else np.int64))
        h = _mix(_mix(unit.hashes() + np.uint64(1)) ^ flag.hashes())
        h = _mix(_mix(h ^ _value_bits(value)) ^ time.astype(np.uint64))
        self._hashes.append(_mix(_mix(h ^ geo_hash) ^ ind_hash))
        for combo in pc.unique(pa.array((ind_ids << np.uint64(16)) | offset)).to_pylist():
            self._years_of.setdefault(combo >> 16, set()).add(self._years[0] + (combo & 0xFFFF))
        pairs = ind_ids.astype(np.int64) * (len(unit.names) + 1) + unit.codes + 1
        for pair in pc.unique(pa.array(pairs)).to_pylist():
            i, u = divmod(pair, len(unit.names) + 1)
            if u:
                self._units_of.setdefault(i, set()).add(unit.names[u - 1])
        self._track_levels(ind_ids, geo_ids, rows)

    def _track_levels(self, ind_ids: np.ndarray, geo_ids: np.ndarray, rows: np.ndarray) -> None:
        lengths = np.array([len(name) for name in self._geos.names], dtype=np.int64)
        geo_index = geo_ids.astype(np.int64)
        combos = ind_ids.astype(np.int64) * 256 + np.clip(lengths[geo_index] - 2, 0, 255)
        for item in pc.value_counts(pa.array(combos)).to_pylist():
            combo, count = item["values"], item["counts"]
            entry = self._levels.setdefault((combo // 256, combo % 256), _Levels())
            entry.count += count
            room = self.report.max_problems - len(entry.rows)
            if room > 0:
                at = np.flatnonzero(combos == combo)[:room]
                entry.rows.extend(rows[at].tolist())
                entry.codes.extend(self._geos.names[g] for g in geo_index[at])

    # -- whole table -------------------------------------------------------------------------

    def finish(self) -> Report:
        """Whole-table checks, the summary and the content hash; returns the report."""
        if self.summary["rows_read"] == 0:
            self.report.add(None, None, None, "no-data-rows", "the table has no data rows")
        if self._limit_row is not None:
            rows = self.summary["data_rows"]
            reason = f"the table has {rows} data rows; at most {self._max_rows} are accepted"
            self.report.add(self._limit_row, None, None, "too-many-rows", reason)
        self._find_duplicates()
        self._find_mixed_levels()
        hashes = np.concatenate([np.zeros(0, np.uint64), *self._hashes])
        self._hashes = [hashes]
        hashes.sort()
        digest = hashlib.sha256(b"alpclusters-table-1\0" + hashes.astype("<u8").tobytes())
        self.content_hash = digest.hexdigest()
        self._keys, self._rows, self._hashes = [], [], []  # per-row arrays: no longer needed
        self.summary["indicators"] = {
            name: {
                "years": sorted(self._years_of.get(i, ())),
                "units": sorted(self._units_of.get(i, ())),
                "levels": sorted(lev for (j, lev) in self._levels if j == i),
            }
            for i, name in enumerate(self._indicators.names)
        }
        return self.report

    def _find_duplicates(self) -> None:
        if not self._keys:
            return
        ordered = np.concatenate(self._keys)
        ordered.sort()
        dup = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        del ordered
        if not dup.size:
            return
        hits = [np.isin(k, dup) for k in self._keys]
        keys = np.concatenate([k[m] for k, m in zip(self._keys, hits, strict=True)])
        rows = np.concatenate([r[m] for r, m in zip(self._rows, hits, strict=True)])
        order = np.lexsort((rows, keys))
        keys, rows = keys[order], rows[order]
        starts = np.r_[0, np.flatnonzero(keys[1:] != keys[:-1]) + 1]
        counts = np.diff(np.r_[starts, len(keys)])
        first, times = np.repeat(rows[starts], counts), np.repeat(counts, counts)
        by_row = np.argsort(rows, kind="stable")
        keys, rows, first, times = keys[by_row], rows[by_row], first[by_row], times[by_row]
        geos = [self._geos.names[int(k >> 16) & 0xFFFFFF] for k in keys[: self.report.max_problems]]

        def reason(i: int) -> str:
            indicator = self._indicators.names[int(keys[i] >> 40)]
            year = self._years[0] + int(keys[i] & 0xFFFF)
            return (
                f"duplicate key: indicator {indicator}, geo {geos[i]}, time {year} occurs "
                f"{times[i]} times (first in row {first[i]})"
            )

        total = len(rows)
        self.report.extend(
            rows[: len(geos)], self._names["geo"], geos, "duplicate-key", reason, total=total
        )

    def _find_mixed_levels(self) -> None:
        by_indicator: dict[int, dict[int, _Levels]] = {}
        for (i, level), entry in self._levels.items():
            by_indicator.setdefault(i, {})[level] = entry
        for i, levels in by_indicator.items():
            if len(levels) < 2:
                continue
            main = max(levels, key=lambda lev: levels[lev].count)
            counts = ", ".join(f"NUTS {lev}: {e.count} rows" for lev, e in sorted(levels.items()))
            name = self._indicators.names[i]
            for level, entry in sorted(levels.items()):
                if level == main:
                    continue
                reason = (
                    f"indicator {name} mixes NUTS levels ({counts}); this NUTS {level} code is "
                    f"not at the table's level {main}"
                )
                self.report.extend(
                    entry.rows,
                    self._names["geo"],
                    entry.codes,
                    "mixed-nuts-levels",
                    reason,
                    total=entry.count,
                )


def _take(values: Any, idx: np.ndarray) -> list[Any]:
    """The cells at positions ``idx`` of a pandas Series or Arrow array, as Python objects."""
    if isinstance(values, pd.Series):
        return values.iloc[idx].tolist()
    return values.take(pa.array(idx)).to_pylist()
