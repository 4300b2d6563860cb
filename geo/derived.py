"""Derived indicators: ratios and specialisation metrics computed from stored datasets and
stored as datasets of their own, with their lineage.

A :class:`DerivedSpec` names the operation, its input datasets (at a version, by default
the latest) and its parameters. :func:`derive` reads the inputs' observations, computes the
operation in dask (one task per year, or per pair of years for shift-share, on the
configured scheduler) with :mod:`geo.specialisation`, and stores the result through the
upload pipeline (the same checks, NUTS codes and provenance as an uploaded table). The
version's report carries the lineage: operation, parameters, and each input's dataset,
version and content hash.

Both inputs are stored in the NUTS version of the boundaries in use (uploads are recoded),
so a numerator and a denominator from tables of different NUTS versions are aligned by
construction; the years used are those both have, and the regions those both have.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from geo import __version__
from geo.areas import resolve
from geo.boundaries import area_km2, load_boundaries
from geo.engine import compute, connect
from geo.errors import InvalidParameterError
from geo.records import DatasetInfo
from geo.settings import Settings
from geo.store import Store
from geo.uploads import UploadOutcome, UploadRequest

Kind = Literal[
    "ratio", "per_km2", "share", "lq", "krugman", "hoover", "shift_share", "strong", "stars"
]
# The EU-27 member states (NUTS country codes): the "eu" reference is their regions.
EU27 = (
    *("AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "HR", "HU"),
    *("IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"),
)
SECTOR_KINDS = ("lq", "krugman", "hoover", "shift_share", "strong", "stars")


class Operand(BaseModel):
    """A stored dataset (latest version unless given), optionally one of its indicators."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=128)
    version: int | None = Field(default=None, ge=1)
    indicator: str | None = Field(default=None, max_length=256)


class DerivedSpec(BaseModel):
    """What to derive.

    ``ratio``: source / denominator x ``scale`` (per capita: population as denominator);
    ``per_km2``: source per km² of the region (EPSG:3035 area); ``share``: source /
    denominator (both may be indicators of one dataset); ``lq``, ``krugman``, ``hoover``,
    ``strong``, ``stars``: of a sector table (its indicators are sector codes, ``total`` the
    all-sector one) against ``reference``; ``shift_share``: between ``years[0]`` and
    ``years[-1]``.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=128, description="The new dataset's id.")
    title: str = Field(default="", max_length=500)
    kind: Kind
    source: Operand
    denominator: Operand | None = None
    scale: float = Field(default=1.0, gt=0)
    sectors: list[str] | None = Field(default=None, max_length=100)
    total: str = Field(default="TOTAL", max_length=256)
    reference: Literal["area", "eu", "national"] | list[str] = "area"
    area: str = Field(default="all", max_length=2000)
    level: int | None = Field(default=None, ge=0, le=3)
    years: list[int] | None = Field(default=None, max_length=200)

    @field_validator("years")
    @classmethod
    def _sorted(cls, years: list[int] | None) -> list[int] | None:
        return sorted(set(years)) if years else None


def derive(
    settings: Settings, store: Store, spec: DerivedSpec, *, actor: str = ""
) -> UploadOutcome:
    """Compute ``spec`` and store it as the next version of dataset ``spec.name``."""
    from geo.indicators import upload_frame

    inputs = [_info(store, spec.source)]
    if spec.denominator is not None:
        inputs.append(_info(store, spec.denominator))
    frame, labels = _compute(settings, store, spec, inputs)
    labels = _named(spec, labels, inputs)
    if frame["value"].notna().sum() == 0:
        raise InvalidParameterError(f"{spec.kind} of {spec.source.dataset} gives no value")
    lineage = {
        "operation": spec.kind,
        "parameters": spec.model_dump(mode="json"),
        "inputs": [
            {"dataset": i.id, "version": i.version, "content_hash": i.content_hash} for i in inputs
        ],
        "software": f"alpclusters {__version__}",
    }
    request = UploadRequest(
        dataset_id=spec.name,
        title=spec.title or f"{spec.kind} of {spec.source.dataset}",
        description=_describe(spec),
        source=f"AlpClusters, derived from {', '.join(i.id for i in inputs)}",
        licence=inputs[0].licence,
        uploader=actor or "alpclusters",
        actor=actor,
        labels=labels,
        lineage=lineage,
    )
    return upload_frame(settings, store, frame, request)


def _info(store: Store, operand: Operand) -> DatasetInfo:
    info = store.dataset(operand.dataset, operand.version)
    codes = {i.code for i in info.indicators}
    if operand.indicator is not None and operand.indicator not in codes:
        raise InvalidParameterError(
            f"dataset {info.id} has no indicator {operand.indicator!r}; it has {sorted(codes)}"
        )
    return info


def _observations(store: Store, operand: Operand, info: DatasetInfo, years: Any) -> pd.DataFrame:
    indicators = [operand.indicator] if operand.indicator else None
    obs = store.observations(info.id, indicators, years, version=info.version)
    return obs[["indicator", "geo", "time", "value"]]


def _compute(
    settings: Settings, store: Store, spec: DerivedSpec, inputs: list[DatasetInfo]
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    obs = _observations(store, spec.source, inputs[0], spec.years)
    if spec.kind in SECTOR_KINDS:  # the whole table: a reference may lie outside the area
        return _sector_measure(settings, obs, spec)
    obs = _within(settings, obs, spec)
    if spec.kind == "per_km2":
        km2 = area_km2(load_boundaries(settings).loc[lambda b: b.index.isin(obs["geo"])])
        den = pd.DataFrame({"geo": km2.index, "den": km2.to_numpy()})
        return _divided(obs, den, ["geo"], spec, "PER_KM2", "per km²")
    if spec.denominator is None:
        raise InvalidParameterError(f"{spec.kind} needs a denominator dataset")
    other = _observations(store, spec.denominator, inputs[1], spec.years)
    if spec.denominator.indicator is None and other["indicator"].nunique() > 1:
        raise InvalidParameterError(
            f"the denominator {inputs[1].id} has several indicators; name one"
        )
    den = other.drop(columns="indicator").rename(columns={"value": "den"})
    suffix = "SHARE" if spec.kind == "share" else f"PER_{other['indicator'].iloc[0]}"
    unit = "share" if spec.kind == "share" else f"per {other['indicator'].iloc[0]}"
    return _divided(obs, den, ["geo", "time"], spec, suffix, unit)


def _within(settings: Settings, obs: pd.DataFrame, spec: DerivedSpec) -> pd.DataFrame:
    """The observations of the area's regions at the level asked for (default: all)."""
    level = obs["geo"].str.len() - 2
    if spec.level is not None:
        obs = obs[level == spec.level]
    if spec.area.strip().lower() != "all":
        lev = spec.level if spec.level is not None else int(level.mode().iloc[0])
        obs = obs[
            obs["geo"].isin(set(resolve(settings, load_boundaries(settings), spec.area, lev)))
        ]
    if obs.empty:
        raise InvalidParameterError(f"no observation of {spec.source.dataset} in the area")
    return obs.reset_index(drop=True)


def _divided(
    obs: pd.DataFrame,
    den: pd.DataFrame,
    on: list[str],
    spec: DerivedSpec,
    suffix: str,
    unit: str,
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    joined = obs.merge(den, on=on, how="inner")
    value = joined["value"] / joined["den"].where(joined["den"] != 0) * spec.scale
    out = joined.assign(indicator=joined["indicator"] + "_" + suffix, value=value)
    labels = {code: (code.replace("_", " "), unit) for code in out["indicator"].unique()}
    return out[["indicator", "geo", "time", "value"]], labels


def _sector_measure(
    settings: Settings, obs: pd.DataFrame, spec: DerivedSpec
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """A specialisation measure of a sector table, one dask task per year (or pair)."""
    import dask

    from geo import specialisation as sp

    table = obs.rename(columns={"geo": "region", "indicator": "sector", "time": "year"})
    regions = _regions(settings, table, spec)
    reference = _reference(table, spec, regions)
    sectors = spec.sectors
    years = sorted(table["year"].unique())
    if spec.kind == "shift_share":
        if len(years) < 2:
            raise InvalidParameterError("shift_share needs two years with data")
        start, end = int(years[0]), int(years[-1])
        pair = table[table["year"].isin([start, end])]
        tasks = [
            dask.delayed(sp.shift_share)(
                pair, start, end, sectors, regions=regions, reference=reference, total=spec.total
            )
        ]
    else:
        measure = _MEASURES[spec.kind]
        tasks = [
            dask.delayed(measure)(table[table["year"] == y], sectors, regions, reference, spec)
            for y in years
        ]
    parts = compute(tasks, connect(settings.scheduler))
    return _long(spec.kind, pd.concat(parts, ignore_index=True), int(years[-1]))


def _regions(settings: Settings, table: pd.DataFrame, spec: DerivedSpec) -> list[str]:
    """The analysed regions: the area's at the level (default: every region but totals)."""
    codes = table["region"].str.len()
    level = spec.level if spec.level is not None else int((codes - 2).mode().iloc[0])
    here = sorted(set(table.loc[codes - 2 == level, "region"]))
    if spec.area.strip().lower() == "all":
        return here
    keep = set(resolve(settings, load_boundaries(settings), spec.area, level))
    chosen = [r for r in here if r in keep]
    if not chosen:
        raise InvalidParameterError(f"no region of {spec.area!r} at level {level} has data")
    return chosen


def _reference(table: pd.DataFrame, spec: DerivedSpec, regions: list[str]) -> Any:
    """The specialisation module's reference for ``spec.reference``."""
    if spec.reference == "eu":
        level = len(regions[0]) - 2
        eu = table.loc[
            table["region"].str[:2].isin(EU27) & (table["region"].str.len() - 2 == level),
            "region",
        ]
        return sorted(set(eu))
    if isinstance(spec.reference, list):
        missing = sorted(set(spec.reference) - set(table["region"]))
        if missing:
            raise InvalidParameterError(f"reference regions without data: {missing[:20]}")
        return spec.reference
    return spec.reference  # "area" or "national"


def _lq(table: pd.DataFrame, sectors: Any, regions: Any, ref: Any, spec: Any) -> pd.DataFrame:
    from geo.specialisation import location_quotients

    return location_quotients(table, sectors, regions=regions, reference=ref, total=spec.total)


def _krugman(table: pd.DataFrame, sectors: Any, regions: Any, ref: Any, spec: Any) -> Any:
    from geo.specialisation import disjoint_sectors, krugman_index

    chosen = sectors or disjoint_sectors(set(table["sector"]) - {spec.total})
    return krugman_index(table, chosen, regions=regions, reference=ref)


def _hoover(table: pd.DataFrame, sectors: Any, regions: Any, ref: Any, spec: Any) -> Any:
    from geo.specialisation import disjoint_sectors, hoover_index

    chosen = sectors or disjoint_sectors(set(table["sector"]) - {spec.total})
    return hoover_index(table, chosen, regions=regions, reference=ref)


def _strong(table: pd.DataFrame, sectors: Any, regions: Any, ref: Any, spec: Any) -> Any:
    from geo.specialisation import strong_clusters

    return strong_clusters(_lq(table, sectors, regions, ref, spec))


def _stars(table: pd.DataFrame, sectors: Any, regions: Any, ref: Any, spec: Any) -> Any:
    from geo.specialisation import cluster_stars

    return cluster_stars(_lq(table, sectors, regions, ref, spec))


_MEASURES: dict[str, Callable[..., pd.DataFrame]] = {
    "lq": _lq,
    "krugman": _krugman,
    "hoover": _hoover,
    "strong": _strong,
    "stars": _stars,
}
# kind -> (result column, indicator prefix, unit); None prefix: one indicator per region
_COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "lq": [("lq", "LQ", "location quotient")],
    "krugman": [("krugman", "KRUGMAN", "index")],
    "hoover": [("hoover", "HOOVER", "index")],
    "strong": [("strong", "STRONG", "flag (1: strong cluster)")],
    "stars": [("stars", "STARS", "stars (0-3)")],
    "shift_share": [
        ("national_share", "NS", "persons (as the table)"),
        ("industry_mix", "IM", "persons (as the table)"),
        ("regional_shift", "RS", "persons (as the table)"),
    ],
}


def _long(
    kind: str, result: pd.DataFrame, end: int
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """The result table as observations ``indicator, geo, time, value`` and their labels."""
    frames, labels = [], {}
    for column, prefix, unit in _COLUMNS[kind]:
        if column not in result.columns:
            raise InvalidParameterError(f"{kind} gave no {column!r} column")
        by_sector = "sector" in result.columns
        code = prefix + "_" + result["sector"].astype(str) if by_sector else pd.Series(prefix)
        part = pd.DataFrame(
            {
                "indicator": code if by_sector else prefix,
                "geo": result["region"],
                "time": result["year"] if "year" in result.columns else end,
                "value": result[column].astype(float),
            }
        )
        frames.append(part)
        for c in part["indicator"].unique():
            labels[str(c)] = (str(c).replace("_", " "), unit)
    return pd.concat(frames, ignore_index=True), labels


_NAMES = {
    "LQ": "Location quotient",
    "STRONG": "Strong cluster",
    "STARS": "Cluster stars",
    "NS": "National share",
    "IM": "Industry mix",
    "RS": "Regional shift",
    "KRUGMAN": "Krugman dissimilarity index",
    "HOOVER": "Hoover index",
}


def _named(
    spec: DerivedSpec, labels: dict[str, tuple[str, str]], inputs: list[DatasetInfo]
) -> dict[str, tuple[str, str]]:
    """Labels a planner reads ("Location quotient: Manufacturing"), from the inputs' own."""
    source = {i.code: i.label for i in inputs[0].indicators}
    den = ""
    if spec.denominator is not None:
        by_code = {i.code: i.label for i in inputs[1].indicators}
        den = by_code.get(spec.denominator.indicator or "", "") or inputs[1].title
    out = {}
    for code, (_label, unit) in labels.items():
        if spec.kind in SECTOR_KINDS:
            prefix, _, sector = code.partition("_")
            name = _NAMES.get(prefix, prefix)
            label = f"{name}: {source.get(sector, sector)}" if sector else name
        else:
            base = next((c for c in source if code.startswith(c + "_")), code)
            what = source.get(base, base)
            label = {
                "per_km2": f"{what} per km²",
                "share": f"{what}, share of {den}",
            }.get(spec.kind, f"{what} per {den}")
        out[code] = (label, unit)
    return out


def _describe(spec: DerivedSpec) -> str:
    ref = spec.reference if isinstance(spec.reference, str) else ", ".join(spec.reference)
    parts = [f"{spec.kind} of {spec.source.dataset}"]
    if spec.denominator is not None:
        parts.append(f"over {spec.denominator.dataset}")
    if spec.kind in SECTOR_KINDS:
        parts.append(f"reference: {ref}; area: {spec.area}")
    return "; ".join(parts)
