"""Reading and validating tidy indicator tables (``geo, time, value[, flag, ...]``)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geo.errors import IngestError, closest

REQUIRED = ("geo", "time", "value")
MISSING_MARKERS = ("", ":", "NaN", "nan", "NA")
MAX_PROBLEMS = 100
DELIMITERS = (",", ";", "\t")


@dataclass
class Report:
    """Problems found in one file; each names the file, row, column, value and reason."""

    file: str
    header_rows: int = 1  # spreadsheet row of the first data row, minus one
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, row: int | None, column: str | None, value: object, reason: str, warning: bool = False
    ) -> None:
        target = self.warnings if warning else self.problems
        if len(target) < MAX_PROBLEMS:
            target.append(
                {
                    "file": self.file,
                    "row": None if row is None else int(row) + 1 + self.header_rows,
                    "column": column,
                    "value": None if value is None or value != value else str(value),
                    "reason": reason,
                }
            )

    def raise_if_any(self) -> None:
        if self.problems:
            raise IngestError(self.file, self.problems)


def read_table(path: Path) -> tuple[pd.DataFrame, int]:
    """Read CSV (as text) or Parquet; return the frame and the number of header rows."""

    def refuse(reason: str, value: object = None) -> IngestError:
        return IngestError(
            str(path),
            [{"file": str(path), "row": None, "column": None, "value": value, "reason": reason}],
        )

    if not path.is_file():
        raise refuse("no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path), 0
    if suffix not in (".csv", ".txt", ".tsv"):
        raise refuse("unsupported file type; use .csv or .parquet", suffix)
    with path.open("r", encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    if not header.strip():
        raise refuse("the file is empty")
    sep = max(DELIMITERS, key=header.count) if any(d in header for d in DELIMITERS) else ","
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8-sig")
    return frame, 1


def prepare(
    frame: pd.DataFrame,
    report: Report,
    *,
    where: Mapping[str, str] | None = None,
    indicator_from: Sequence[str] | None = None,
    known_geo: Collection[str] | None = None,
    drop_unknown: bool = False,
) -> pd.DataFrame:
    """Validate a tidy table and return ``indicator, geo, time, value, flag``.

    Parameters
    ----------
    where
        Keep only the rows whose column equals the value, e.g. ``{"unit": "EUR_HAB"}``.
    indicator_from
        Columns whose values, joined with ``.``, name the indicator. By default the
        ``indicator`` column, else ``unit``, else one indicator named ``value``.
    known_geo
        Valid region codes; others are problems (or dropped with a warning).

    Raises
    ------
    IngestError
        With every problem found, up to :data:`MAX_PROBLEMS`.
    """
    if frame.empty:
        report.add(None, None, None, "the table has no data rows")
    for col in [*REQUIRED, *(where or {}), *(indicator_from or [])]:
        if col not in frame.columns:
            report.add(None, col, None, f"required column missing; found {list(frame.columns)}")
    report.raise_if_any()
    for col, wanted in (where or {}).items():
        frame = frame[frame[col].astype(str) == str(wanted)]
    if frame.empty:
        report.add(None, None, None, f"no rows match the filter {dict(where or {})}")
        report.raise_if_any()
    out = pd.DataFrame(index=frame.index)
    out["indicator"] = _indicator(frame, indicator_from)
    out["geo"] = frame["geo"].astype(str).str.strip()
    out["time"] = _integers(frame["time"], "time", report)
    out["value"] = _numbers(frame["value"], "value", report)
    flag = frame["flag"].astype("string").str.strip() if "flag" in frame else pd.NA
    out["flag"] = flag.replace("", pd.NA) if "flag" in frame else flag
    if known_geo is not None:
        out = _check_geo(out, known_geo, report, drop_unknown)
    dup = out.duplicated(["indicator", "geo", "time"], keep=False)
    for idx in out.index[dup]:
        row = out.loc[idx]
        report.add(
            idx,
            "geo",
            row["geo"],
            f"duplicate key: indicator {row['indicator']}, geo {row['geo']}, "
            f"time {row['time']} occurs more than once",
        )
    report.raise_if_any()
    return out.reset_index(drop=True)


def _indicator(frame: pd.DataFrame, indicator_from: Sequence[str] | None) -> pd.Series:
    cols = list(indicator_from or ([c for c in ("indicator", "unit") if c in frame][:1]))
    if not cols:
        return pd.Series("value", index=frame.index)
    out = frame[cols[0]].astype(str)
    for col in cols[1:]:
        out = out.str.cat(frame[col].astype(str), sep=".")
    return out


def _integers(col: pd.Series, name: str, report: Report) -> pd.Series:
    num = pd.to_numeric(col.astype(str).str.strip(), errors="coerce")
    bad = num.isna() | (num != num.round())
    for idx in col.index[bad]:
        report.add(idx, name, col[idx], "not a whole year")
    return num.fillna(0).astype(int)


def _numbers(col: pd.Series, name: str, report: Report) -> pd.Series:
    if pd.api.types.is_numeric_dtype(col):
        num = col.astype(float)
        bad = pd.Series(False, index=col.index)
    else:
        text = col.astype(str).str.strip()
        missing = text.isin(MISSING_MARKERS)
        num = pd.to_numeric(text.where(~missing), errors="coerce")
        bad = num.isna() & ~missing
    for idx in col.index[bad]:
        report.add(
            idx, name, col[idx], "not a number (use '.' as decimal mark, ':' or empty for missing)"
        )
    for idx in col.index[np.isinf(num.to_numpy(dtype=float, na_value=np.nan))]:
        report.add(idx, name, col[idx], "infinite values are not allowed")
    return num.astype(float)


def _check_geo(
    out: pd.DataFrame, known: Collection[str], report: Report, drop_unknown: bool
) -> pd.DataFrame:
    """Report codes outside ``known``: every row as a problem, or once per code as a warning."""
    unknown = ~out["geo"].isin(known)
    if drop_unknown:
        for code, rows in out.index[unknown].to_series().groupby(out["geo"][unknown]):
            report.add(
                rows.iloc[0],
                "geo",
                code,
                f"not a NUTS code of the layer in use; {len(rows)} rows dropped",
                warning=True,
            )
        return out[~unknown]
    hints: dict[str, list[str]] = {}
    for idx in out.index[unknown][:MAX_PROBLEMS]:
        code = out.at[idx, "geo"]
        hint = hints.setdefault(code, closest(code, known, n=1))
        report.add(
            idx,
            "geo",
            code,
            "unknown NUTS code" + (f"; closest valid code: {hint[0]}" if hint else ""),
        )
    return out


def content_hash(table: pd.DataFrame) -> str:
    """SHA-256 of the normalised table, independent of row order."""
    ordered = table.sort_values(["indicator", "geo", "time"]).reset_index(drop=True)
    digest = hashlib.sha256(pd.util.hash_pandas_object(ordered, index=False).to_numpy())
    return digest.hexdigest()
