"""Parsing cells: numbers as written or stored, years, flags and other categories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geo.validation.keys import _text_hash

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
