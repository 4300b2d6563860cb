"""Observations packed into slices (one per indicator and year) and unpacked again.

A slice holds the region codes joined by ``,``, the values as float64 little-endian bytes
(NaN for a missing value) and the flags joined by ``,`` (``None`` when the slice has no
flag at all). Region codes and Eurostat flags never contain a comma (the validator checks).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd


def pack(table: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Slices of a table with the columns ``indicator, geo, time, value, flag``.

    Regions are sorted within a slice, so equal tables give equal slices. The texts are
    handled as categorical codes (sorted categories, so codes sort as the texts do); a
    slice's region codes and flags become text one slice at a time.
    """
    indicator, indicators = _codes(table["indicator"])
    geo, geos = _codes(table["geo"])
    flag, flags = _codes(table["flag"])  # a missing flag is the empty text
    time = table["time"].to_numpy(dtype=np.int32)
    order = np.lexsort((geo, time, indicator))
    indicator, time, geo, flag = indicator[order], time[order], geo[order], flag[order]
    value = table["value"].to_numpy(dtype="<f8", na_value=np.nan)[order]
    del order
    change = (indicator[1:] != indicator[:-1]) | (time[1:] != time[:-1])
    bounds = [0, *(np.flatnonzero(change) + 1).tolist(), len(table)]
    has_flag = np.asarray([bool(f) for f in flags])
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if start == stop:
            continue
        codes = flag[start:stop]
        yield {
            "indicator": str(indicators[indicator[start]]),
            "time": int(time[start]),
            "n_rows": stop - start,
            "n_values": int(np.isfinite(value[start:stop]).sum()),
            "geos": ",".join(geos[geo[start:stop]]),
            "vals": value[start:stop].tobytes(),
            "flags": ",".join(flags[codes]) if has_flag[codes].any() else None,
        }


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and their texts, the texts sorted; missing values are the empty text."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        column = column.astype("category")
    texts = np.asarray(column.cat.categories.astype(str), dtype=object)
    codes = column.cat.codes.to_numpy().astype(np.int32)
    if (codes < 0).any():
        texts = np.append(texts, "")
        codes[codes < 0] = len(texts) - 1
    rank = np.argsort(texts, kind="stable")
    position = np.empty(len(rank), dtype=np.int32)
    position[rank] = np.arange(len(rank), dtype=np.int32)
    return position[codes], texts[rank]


def unpack(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The ``indicator, geo, time, value, flag`` table of some slices."""
    parts = []
    for row in rows:
        geos = row["geos"].split(",")
        flags = row["flags"].split(",") if row["flags"] is not None else [""] * len(geos)
        parts.append(
            pd.DataFrame(
                {
                    "indicator": row["indicator"],
                    "geo": geos,
                    "time": int(row["time"]),
                    "value": np.frombuffer(bytes(row["vals"]), dtype="<f8"),
                    "flag": flags,
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "indicator": pd.Series(dtype=str),
                "geo": pd.Series(dtype=str),
                "time": pd.Series(dtype=np.int64),
                "value": pd.Series(dtype=float),
                "flag": pd.Series(dtype=object),
            }
        )
    out = pd.concat(parts, ignore_index=True)
    out["flag"] = out["flag"].where(out["flag"] != "", None)
    return out
