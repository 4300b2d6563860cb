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

SLICE_COLUMNS = ("indicator", "time", "n_rows", "n_values", "geos", "vals", "flags")


def pack(table: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Slices of a table with the columns ``indicator, geo, time, value, flag``.

    Regions are sorted within a slice, so equal tables give equal slices.
    """
    ordered = table.sort_values(["indicator", "time", "geo"], kind="stable")
    indicator = ordered["indicator"].astype(str).to_numpy()
    time = ordered["time"].to_numpy(dtype=np.int64)
    geo = ordered["geo"].astype(str).to_numpy()
    value = ordered["value"].to_numpy(dtype="<f8", na_value=np.nan)
    flag = ordered["flag"].astype(object).where(ordered["flag"].notna(), "").to_numpy()
    change = (indicator[1:] != indicator[:-1]) | (time[1:] != time[:-1])
    bounds = [0, *(np.flatnonzero(change) + 1).tolist(), len(ordered)]
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        if start == stop:
            continue
        flags = flag[start:stop]
        yield {
            "indicator": str(indicator[start]),
            "time": int(time[start]),
            "n_rows": stop - start,
            "n_values": int(np.isfinite(value[start:stop]).sum()),
            "geos": ",".join(geo[start:stop]),
            "vals": value[start:stop].tobytes(),
            "flags": ",".join(flags) if any(flags) else None,
        }


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
