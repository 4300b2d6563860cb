"""The chunk validator: per-chunk checks and the whole-table checks of one upload."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo.errors import InvalidParameterError, closest
from geo.validation.cells import (
    _NUMBER,
    FLAG_LETTERS,
    FLAG_PATTERN,
    Categories,
    Numbers,
    _mask,
    arrow_strings,
    parse_numbers,
    parse_years,
)
from geo.validation.keys import _Interner, _mix, _value_bits
from geo.validation.report import MAX_PROBLEMS, Report

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
