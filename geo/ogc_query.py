"""OGC API – Features query parameters as library values: ``limit``, ``bbox`` with
``bbox-crs``, ``datetime``, ``crs``, ``properties`` and equality on queryable properties.

Every invalid value raises :class:`~geo.errors.InvalidParameterError` naming the value and
what is allowed (the service answers 400, /req/core/query-param-invalid).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely

from geo.crs import CRS84, CrsInfo, bbox_area, canonical, crs_info
from geo.errors import InvalidParameterError

LIMIT_DEFAULT = 100
LIMIT_MAX = 10_000
# Query parameters of /items besides the collection's queryable properties.
ITEMS_PARAMETERS = ("f", "limit", "offset", "bbox", "bbox-crs", "datetime", "crs", "properties")


def check_parameters(given: Iterable[str], allowed: Iterable[str]) -> None:
    """Refuse query parameters that the API does not define (/req/core/query-param-unknown)."""
    valid = list(allowed)
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise InvalidParameterError(f"unknown query parameter(s) {unknown}; valid here: {valid}")


def clamp_limit(limit: int) -> int:
    """``limit`` of at least 1; above :data:`LIMIT_MAX` it is served as the maximum
    (/req/core/fc-limit-response-1: never more features than the advertised maximum)."""
    if limit < 1:
        raise InvalidParameterError(f"limit must be at least 1, not {limit}")
    return min(limit, LIMIT_MAX)


def parse_bbox(text: str, bbox_crs: str | None) -> shapely.Geometry:
    """The lon/lat area of ``bbox`` (4 or 6 comma-separated numbers in ``bbox-crs``'s axis
    order, CRS84 by default)."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise InvalidParameterError(
            f"bbox {text!r} must be 4 or 6 comma-separated numbers"
        ) from None
    if len(values) not in (4, 6):
        raise InvalidParameterError(
            f"bbox {text!r} has {len(values)} numbers; give 4 (or 6 with heights)"
        )
    info = crs_info(canonical(bbox_crs) if bbox_crs else CRS84)
    area = bbox_area(values, info)
    if not np.isfinite(shapely.get_coordinates(area)).all():
        raise InvalidParameterError(f"bbox {text!r} lies outside the area of {info.uri}")
    return area


_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC interval ``[start, end)``; None for an open end."""

    start: dt.datetime | None
    end: dt.datetime | None

    def years(self) -> tuple[int | None, int | None]:
        """First and last calendar year that the interval intersects."""
        first = self.start.year if self.start else None
        last = None
        if self.end is not None:
            jan1 = dt.datetime(self.end.year, 1, 1, tzinfo=dt.UTC)
            last = self.end.year if self.end > jan1 else self.end.year - 1
        return first, last


def _instant(text: str) -> tuple[dt.datetime, dt.datetime]:
    """An RFC 3339 date-time as ``[t, t + 1 µs)``; a year, month or date as its span."""
    if match := _DATE.match(text):
        year, month, day = int(match[1]), int(match[2] or 0), int(match[3] or 0)
        try:
            start = dt.datetime(year, month or 1, day or 1, tzinfo=dt.UTC)
        except ValueError:
            raise InvalidParameterError(f"datetime {text!r} is not a valid date") from None
        if day:
            return start, start + dt.timedelta(days=1)
        if month:
            nxt = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
            return start, nxt
        return start, dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    try:
        stamp = dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameterError(
            f"datetime {text!r} is not an RFC 3339 date-time (2019-01-01T00:00:00Z), "
            "a date (2019-01-01) or a year (2019)"
        ) from None
    if "T" not in text.upper():
        raise InvalidParameterError(f"datetime {text!r}: separate date and time with 'T'")
    stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
    return stamp, stamp + dt.timedelta(microseconds=1)


def parse_datetime(text: str) -> TimeRange:
    """``datetime``: an instant or an interval ``start/end`` with ``..`` or empty open ends."""
    value = text.strip()
    if "/" not in value:
        return TimeRange(*_instant(value))
    if value.count("/") != 1:
        raise InvalidParameterError(f"datetime {text!r}: an interval has one '/'")
    left, right = (part.strip() for part in value.split("/"))
    if left in ("", "..") and right in ("", ".."):
        raise InvalidParameterError(f"datetime {text!r}: an interval needs one bound at least")
    start: dt.datetime | None = None if left in ("", "..") else _instant(left)[0]
    end: dt.datetime | None = None if right in ("", "..") else _instant(right)[1]
    if start is not None and end is not None and start >= end:
        raise InvalidParameterError(f"datetime {text!r}: the interval ends before it starts")
    return TimeRange(start, end)


def typed_value(series: pd.Series, name: str, value: str) -> Any:
    """A query value as the column's type (for equality filters)."""
    kind = series.dtype.kind if not isinstance(series.dtype, pd.StringDtype) else "O"
    if pd.api.types.is_bool_dtype(series.dtype):
        if value.lower() not in ("true", "false"):
            raise InvalidParameterError(f"{name}={value!r}: expected true or false")
        return value.lower() == "true"
    if kind in "iu" or pd.api.types.is_integer_dtype(series.dtype):
        try:
            return int(value)
        except ValueError:
            raise InvalidParameterError(f"{name}={value!r}: expected an integer") from None
    if kind == "f":
        try:
            return float(value)
        except ValueError:
            raise InvalidParameterError(f"{name}={value!r}: expected a number") from None
    return value


@dataclass(frozen=True)
class ItemQuery:
    """What ``/items`` selects and how it writes the features."""

    crs: CrsInfo = field(default_factory=lambda: crs_info(CRS84))
    area: shapely.Geometry | None = None  # lon/lat
    time: TimeRange | None = None
    equals: tuple[tuple[str, tuple[str, ...]], ...] = ()
    properties: tuple[str, ...] | None = None


def parse_properties(text: str, available: Iterable[str]) -> tuple[str, ...]:
    """``properties=a,b``: the properties to return, each one of ``available``."""
    names = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    valid = list(available)
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise InvalidParameterError(f"unknown properties {unknown}; valid: {valid}")
    return names
