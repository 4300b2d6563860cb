"""Emerging hot spots and similar regions, assembled from the store for the service and the
maps: the library results of :mod:`geo.emerging` and :mod:`geo.similar` joined to the
regions' names and geometry.

Nothing here imports a web framework or folium; every bad input raises a
:mod:`geo.errors` exception naming the value and the allowed ones.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.areas import resolve
from geo.atlas import NAME_COLUMNS, area_title
from geo.boundaries import layer_key, load_boundaries
from geo.defaults import DEFAULT_ALPHA, DEFAULT_PERMUTATIONS
from geo.defaults import DEFAULT_SEED as DEFAULT_SEED
from geo.emerging import MIN_YEARS, category_counts, emerging_hot_spots
from geo.errors import InvalidParameterError, UnknownRegionError, closest
from geo.hotspots import MIN_REGIONS
from geo.settings import Settings
from geo.similar import similar_regions, standardise
from geo.store import DatasetInfo, IndicatorInfo, Store
from geo.weights import WeightsSpec, cached_weights

PANEL_COVERAGE = 0.75  # default years: those with values for three quarters of the regions
EVERY_REGION = "europe"  # the named area of every region of the boundaries in use
_CACHE_SIZE = 16
_cache: OrderedDict[tuple[Any, ...], pd.DataFrame] = OrderedDict()
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class EmergingParams:
    """What an emerging hot-spot analysis ran with, every default resolved."""

    dataset: str
    version: int
    indicator: str
    years: list[int]
    area: str
    level: int
    weights: str
    permutations: int
    seed: int
    alpha: float
    correction: str
    inference: str


@dataclass(frozen=True)
class EmergingView:
    """An emerging hot-spot result: ``regions`` holds the names (``NAME_LATN``,
    ``NUTS_NAME``, ``CNTR_CODE``), the geometry (EPSG:4326) and the columns of
    :func:`geo.emerging.emerging_hot_spots`, indexed by region; ``counts`` the regions
    per category (all 17)."""

    params: EmergingParams
    dataset: DatasetInfo
    indicator: IndicatorInfo
    area_title: str
    regions: gpd.GeoDataFrame
    counts: pd.Series

    def year_lists(self, code: int) -> list[list[int]]:
        """Per region, the years whose bin is ``code`` (+1 hot, -1 cold)."""
        bins = self.regions[[f"bin_{y}" for y in self.params.years]].to_numpy()
        years = np.asarray(self.params.years)
        return [years[row == code].tolist() for row in bins]


def pick_indicator(info: DatasetInfo, indicator: str | None) -> IndicatorInfo:
    """The named indicator of ``info`` (default: its first)."""
    codes = [i.code for i in info.indicators]
    if not codes:
        raise InvalidParameterError(f"dataset {info.id!r} has no indicator")
    code = indicator or codes[0]
    found = next((i for i in info.indicators if i.code == code), None)
    if found is None:
        raise InvalidParameterError(
            f"dataset {info.id!r} has no indicator {code!r}; valid indicators: {codes}"
        )
    return found


def _panel_years(
    obs: pd.DataFrame, ind: IndicatorInfo, ids: list[str], start: int | None, end: int | None
) -> list[int]:
    """The years asked for, or by default those in which the indicator has values for at
    least three quarters of the area's regions (:data:`PANEL_COVERAGE`)."""
    if start is not None and end is not None and start > end:
        raise InvalidParameterError(f"start ({start}) must not be after end ({end})")
    if start is None and end is None:
        share = obs.dropna(subset=["value"]).groupby("time")["geo"].nunique() / max(len(ids), 1)
        years = sorted(int(y) for y in share[share >= PANEL_COVERAGE].index)
    else:
        lo, hi = start or min(ind.years, default=0), end or max(ind.years, default=0)
        years = [y for y in ind.years if lo <= y <= hi]
    if len(years) < MIN_YEARS:
        raise InvalidParameterError(
            f"emerging hot spots need at least {MIN_YEARS} years; {ind.code!r} has "
            f"{len(years)} here ({years}); its years: {ind.years}. Give start and end."
        )
    return years


def _work_limit(settings: Settings, n: int, years: int, permutations: int) -> None:
    work = n * years * max(permutations, 1)
    if work > settings.background_work:
        raise InvalidParameterError(
            f"{n} regions x {years} years x {permutations} permutations = {work:,} is over "
            f"the limit of {settings.background_work:,.0f} computed on request; ask for "
            "fewer permutations, fewer years or a smaller area"
        )


def emerging_view(
    settings: Settings,
    store: Store,
    dataset_id: str,
    *,
    indicator: str | None = None,
    start: int | None = None,
    end: int | None = None,
    area: str = "alpine-space",
    level: int = 3,
    weights: str = "queen",
    permutations: int = DEFAULT_PERMUTATIONS,
    seed: int = DEFAULT_SEED,
    alpha: float = DEFAULT_ALPHA,
    correction: str = "fdr",
    inference: str = "permutation",
    scheduler: Any = "threads",
) -> EmergingView:
    """Emerging hot spots of one indicator of a dataset over ``area`` at ``level``.

    Years: ``start`` to ``end`` (every year of the indicator between them), by default
    every year in which the indicator covers three quarters of the area's regions; at least
    :data:`geo.emerging.MIN_YEARS`. ``permutations`` may not exceed
    ``settings.max_permutations``, nor regions x years x permutations
    ``settings.background_work``. Results are kept for repeated requests (page, GeoJSON,
    CSV) per dataset content and parameters.
    """
    if not 0 <= permutations <= settings.max_permutations:
        raise InvalidParameterError(
            f"permutations must lie between 0 and {settings.max_permutations}, not {permutations}"
        )
    spec = str(WeightsSpec.parse(weights))
    info = store.dataset(dataset_id)
    ind = pick_indicator(info, indicator)
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, area, level)
    obs = store.observations(info.id, [ind.code], ind.years, geos=ids, version=info.version)
    years = _panel_years(obs, ind, ids, start, end)
    with_values = obs[obs["time"].isin(years)].dropna(subset=["value"])["geo"].nunique()
    if with_values < MIN_REGIONS:
        raise InvalidParameterError(
            f"{ind.code!r} of {info.id!r} has values for {with_values} regions of area {area!r} "
            f"at NUTS level {level} in {years[0]}-{years[-1]}; at least {MIN_REGIONS} needed"
        )
    _work_limit(settings, len(ids), len(years), permutations)
    params = EmergingParams(
        info.id, info.version, ind.code, years, area, level, spec, permutations, seed,
        alpha, correction, inference,
    )  # fmt: skip
    key = (info.content_hash, layer_key(settings), tuple(ids), repr(params))
    result = _cached(key)
    if result is None:
        panel = obs[obs["time"].isin(years)].pivot_table(
            index="geo", columns="time", values="value", aggfunc="first"
        )
        panel = panel.reindex(index=ids, columns=years)
        w = cached_weights(
            layer.loc[ids, ["geometry"]], spec, settings.cache_dir, layer_key(settings)
        )
        result = emerging_hot_spots(
            panel, w, permutations=permutations, seed=seed, alpha=alpha,
            correction=correction, inference=inference, scheduler=scheduler,
        )  # fmt: skip
        _remember(key, result)
    regions = gpd.GeoDataFrame(
        layer.loc[ids, [*NAME_COLUMNS, "geometry"]].join(result), geometry="geometry", crs=4326
    )
    regions.index.name = "region"
    title = area_title(settings, area)
    return EmergingView(params, info, ind, title, regions, category_counts(result))


def _cached(key: tuple[Any, ...]) -> pd.DataFrame | None:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key].copy()
    return None


def _remember(key: tuple[Any, ...], result: pd.DataFrame) -> None:
    with _cache_lock:
        _cache[key] = result.copy()
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


# -- similar regions ----------------------------------------------------------------------


@dataclass(frozen=True)
class SimilarView:
    """The regions most similar to ``region``: ``regions`` holds the chosen region (rank 0,
    distance 0) then the similar ones by rank, with names, geometry, ``distance``, ``rank``,
    the ``z_<indicator>`` of :func:`geo.similar.similar_regions` and the raw
    ``value_<indicator>``."""

    region: str
    level: int
    year: int
    datasets: list[DatasetInfo]
    indicators: list[IndicatorInfo]
    area: str
    area_title: str
    k: int
    exclude_country: bool
    compared: int
    regions: gpd.GeoDataFrame
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def similar(self) -> gpd.GeoDataFrame:
        """The similar regions only (rank 1 and on)."""
        return self.regions[self.regions["rank"] >= 1]


def split_list(text: str | None) -> list[str]:
    """The non-empty items of a comma-separated list."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _indicators(
    store: Store, datasets: list[str], indicators: list[str]
) -> tuple[list[DatasetInfo], list[tuple[DatasetInfo, IndicatorInfo]]]:
    """The datasets and the chosen (dataset, indicator) pairs; codes must be unique."""
    infos = [store.dataset(d) for d in dict.fromkeys(datasets)]
    pairs = [(info, ind) for info in infos for ind in info.indicators]
    codes = [ind.code for _i, ind in pairs]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise InvalidParameterError(f"indicators {twice} are in more than one of {datasets}")
    if indicators:
        unknown = [c for c in indicators if c not in codes]
        if unknown:
            raise InvalidParameterError(f"unknown indicators {unknown}; valid indicators: {codes}")
        pairs = [p for p in pairs if p[1].code in indicators]
    if not pairs:
        raise InvalidParameterError(f"datasets {datasets} have no indicator")
    return infos, pairs


def _values(
    store: Store, pairs: list[tuple[DatasetInfo, IndicatorInfo]], ids: list[str], years: list[int]
) -> pd.DataFrame:
    """A (region, year) x indicator table of the chosen indicators over ``ids``."""
    parts = []
    for info, ind in pairs:
        obs = store.observations(info.id, [ind.code], years, geos=ids, version=info.version)
        if obs.empty:
            continue
        parts.append(
            obs.pivot_table(index=["geo", "time"], values="value", aggfunc="first")["value"]
            .rename(ind.code)
            .astype(float)
        )
    return pd.concat(parts, axis=1) if parts else pd.DataFrame()


def _pick_year(table: pd.DataFrame, region: str, year: int | None, years: list[int]) -> int:
    """``year``, or the latest year in which ``region`` has a value of every indicator."""
    complete = table.dropna()
    have = sorted({int(t) for g, t in complete.index if g == region})
    if year is not None:
        if year not in have:
            raise InvalidParameterError(
                f"{region} lacks a value of {list(table.columns)} in {year}; years where it "
                f"has all of them: {have or 'none'} (of {years})"
            )
        return year
    if not have:
        raise InvalidParameterError(
            f"{region} has no year with a value of every indicator {list(table.columns)}; "
            "choose other indicators or datasets"
        )
    return have[-1]


def _region_level(layer: gpd.GeoDataFrame, region: str) -> int:
    if region not in layer.index:
        hint = closest(region, layer.index)
        raise UnknownRegionError(
            f"unknown NUTS code {region!r}" + (f"; did you mean {', '.join(hint)}?" if hint else "")
        )
    return int(layer.at[region, "LEVL_CODE"])


def similar_view(
    settings: Settings,
    store: Store,
    region: str,
    datasets: list[str],
    *,
    indicators: list[str] | None = None,
    year: int | None = None,
    k: int = 5,
    exclude_country: bool = False,
    area: str | None = None,
) -> SimilarView:
    """The ``k`` regions most like ``region`` (JRC S3 benchmarking, :mod:`geo.similar`).

    The indicators are those of ``datasets`` (default: all of them; codes must be
    unique); the year is ``year`` or the latest in which the region has all of them; the
    regions compared are those of ``area`` (default: every region) at the region's NUTS
    level that have every indicator that year. Standardisation runs over them all.
    """
    if not datasets:
        raise InvalidParameterError("give at least one dataset id")
    if not 1 <= k <= 100:
        raise InvalidParameterError(f"k must lie between 1 and 100, not {k}")
    layer = load_boundaries(settings)
    level = _region_level(layer, region)
    chosen = area or EVERY_REGION
    ids = resolve(settings, layer, chosen, level)
    if region not in ids:
        raise InvalidParameterError(f"{region} is not among the regions of area {chosen!r}")
    infos, pairs = _indicators(store, datasets, indicators or [])
    years = sorted({y for _info, ind in pairs for y in ind.years})
    table = _values(store, pairs, ids, years)
    if table.empty or region not in set(table.index.get_level_values(0)):
        raise InvalidParameterError(
            f"{region} has no value of {[i.code for _d, i in pairs]} in {datasets} "
            f"(at NUTS level {level})"
        )
    yr = _pick_year(table, region, year, years)
    present = set(table.index.get_level_values(0))
    values = table.xs(yr, level=1).reindex([r for r in ids if r in present])
    result = similar_regions(values, region, k, exclude_country=exclude_country)
    own = pd.DataFrame({"region": [region], "distance": [0.0], "rank": [0]})
    rows = pd.concat([own, result], ignore_index=True).set_index("region")
    z = [c for c in result.columns if c.startswith("z_")]
    rows[z] = rows[z].astype(float)
    standard, _constant = standardise(values.dropna())
    rows.loc[region, z] = standard.loc[region, [c[2:] for c in z]].to_numpy()
    raw = values.loc[rows.index].add_prefix("value_")
    regions = gpd.GeoDataFrame(
        layer.loc[rows.index, [*NAME_COLUMNS, "geometry"]].join(rows).join(raw),
        geometry="geometry",
        crs=4326,
    )
    regions.index.name = "region"
    return SimilarView(
        region, level, yr, infos, [ind for _d, ind in pairs], chosen,
        area_title(settings, chosen), k, exclude_country,
        int(values.dropna().shape[0]), regions,
        list(result.attrs.get("notes", [])), list(result.attrs.get("dropped", [])),
    )  # fmt: skip
