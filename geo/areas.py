"""Named areas and code lists, resolved to the NUTS regions of one level."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import geopandas as gpd

from geo.boundaries import LEVELS
from geo.errors import InvalidParameterError, UnknownAreaError, UnknownRegionError, closest
from geo.settings import Settings


@dataclass(frozen=True)
class Area:
    """A named area: a title and the NUTS codes that it contains."""

    name: str
    title: str
    codes: tuple[str, ...]
    source: str | None = None
    every: bool = False  # every region of the boundaries in use (``codes`` is empty)


def named_areas(settings: Settings) -> dict[str, Area]:
    """Read the named areas of ``areas.toml``."""
    with (settings.nuts_dir / "areas.toml").open("rb") as fh:
        raw = tomllib.load(fh)
    return {
        name: Area(
            name=name,
            title=e["title"],
            codes=tuple(e.get("codes", ())),
            source=e.get("source"),
            every=bool(e.get("every", False)),
        )
        for name, e in raw.items()
    }


def area_codes(settings: Settings, area: str) -> tuple[str, ...]:
    """The NUTS codes of a named area, or of a comma-separated list of codes."""
    areas = named_areas(settings)
    key = area.strip()
    if key.lower() in areas:
        return areas[key.lower()].codes
    codes = tuple(c.strip().upper() for c in key.split(",") if c.strip())
    if not codes:
        raise UnknownAreaError(f"empty area; valid named areas: {sorted(areas)}")
    return codes


def resolve(settings: Settings, boundaries: gpd.GeoDataFrame, area: str, level: int) -> list[str]:
    """Return the sorted NUTS codes at ``level`` that lie within ``area``.

    Raises
    ------
    UnknownAreaError
        When ``area`` is neither a named area nor a list of known NUTS codes.
    InvalidParameterError
        When the area is defined by codes finer than ``level``.
    """
    if level not in LEVELS:
        raise InvalidParameterError(f"level must be one of {list(LEVELS)}, not {level!r}")
    named = named_areas(settings).get(area.strip().lower())
    if named is not None and named.every:
        return sorted(boundaries[boundaries["LEVL_CODE"] == level].index)
    codes = area_codes(settings, area)
    known = boundaries.index
    unknown = [c for c in codes if c not in known]
    if unknown:
        hints = [(c, closest(c, known)) for c in unknown[:5]]
        hint = "; ".join(f"{c}: did you mean {', '.join(h)}?" for c, h in hints if h)
        names = sorted(named_areas(settings))
        error = UnknownAreaError if len(codes) == 1 else UnknownRegionError
        raise error(
            f"unknown area or NUTS code {', '.join(unknown)}"
            + (f" ({hint})" if hint else "")
            + ". "
            f"Valid named areas: {names}; or give NUTS codes separated by commas."
        )
    finer = [c for c in codes if int(boundaries.at[c, "LEVL_CODE"]) > level]
    if finer:
        raise InvalidParameterError(
            f"area {area!r} contains codes of a level finer than {level}: {finer[:5]}; "
            f"choose level {max(int(boundaries.at[c, 'LEVL_CODE']) for c in finer)} or finer"
        )
    layer = boundaries[boundaries["LEVL_CODE"] == level].index
    prefixes = tuple(codes)
    return sorted(c for c in layer if c.startswith(prefixes))
