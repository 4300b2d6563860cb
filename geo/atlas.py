"""What the planners' atlas shows, computed without drawing: indicator slices, the
neighbours of an analysis's regions, and Moran scatterplots.

:mod:`maps` draws these; nothing here imports folium or a web framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.areas import named_areas, resolve
from geo.boundaries import layer_key, load_boundaries
from geo.errors import InvalidParameterError
from geo.settings import Settings
from geo.store import AnalysisRecord, DatasetInfo, IndicatorInfo, Store
from geo.weights import SpatialWeights, cached_weights

NAME_COLUMNS = ["NAME_LATN", "NUTS_NAME", "CNTR_CODE"]


@dataclass(frozen=True)
class IndicatorSlice:
    """One indicator of a dataset over an area and level, for one or more years.

    ``values`` is a (region × year) table, NaN where the dataset has no value; ``flags``
    holds the Eurostat flags the same way (``""`` for none). ``regions`` carries the names
    and geometry (EPSG:4326), indexed like ``values``.
    """

    dataset: DatasetInfo
    indicator: IndicatorInfo
    area: str
    area_title: str
    level: int
    years: list[int]
    regions: gpd.GeoDataFrame
    values: pd.DataFrame
    flags: pd.DataFrame

    def year_frame(self, year: int) -> gpd.GeoDataFrame:
        """The regions with ``value`` and ``flag`` of one year."""
        return self.regions.assign(value=self.values[year], flag=self.flags[year])


def indicator_slice(
    settings: Settings,
    store: Store,
    dataset_id: str,
    *,
    indicator: str | None = None,
    level: int = 3,
    area: str = "alpine-space",
    version: int | None = None,
) -> IndicatorSlice:
    """Every year of one indicator over the regions of ``area`` at ``level``.

    The default indicator is the dataset's first. Raises
    :class:`~geo.errors.InvalidParameterError` naming the valid indicators, or when the
    indicator has no value in the area at that level.
    """
    info = store.dataset(dataset_id, version)
    codes = [i.code for i in info.indicators]
    code = indicator or codes[0]
    ind = next((i for i in info.indicators if i.code == code), None)
    if ind is None:
        raise InvalidParameterError(
            f"dataset {info.id!r} has no indicator {code!r}; valid indicators: {codes}"
        )
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, area, level)
    obs = store.observations(info.id, [code], ind.years, geos=ids, version=info.version)
    if obs["value"].notna().sum() == 0:
        raise InvalidParameterError(
            f"indicator {code!r} of {info.id!r} has no value at NUTS level {level} in "
            f"area {area!r}; its data are at other levels or elsewhere"
        )
    years = sorted(int(y) for y in obs["time"].unique())
    values = obs.pivot_table(index="geo", columns="time", values="value", aggfunc="first")
    flags = obs.assign(flag=obs["flag"].fillna("")).pivot_table(
        index="geo", columns="time", values="flag", aggfunc="first"
    )
    values = values.reindex(index=ids, columns=years)
    flags = flags.reindex(index=ids, columns=years).fillna("")
    regions = gpd.GeoDataFrame(layer.loc[ids, [*NAME_COLUMNS, "geometry"]], crs=4326)
    title = area_title(settings, area)
    return IndicatorSlice(info, ind, area, title, level, years, regions, values, flags)


def area_title(settings: Settings, area: str) -> str:
    """The title of a named area, or the codes of a custom one."""
    named = named_areas(settings).get(area.strip().lower())
    return named.title if named else area


def analysis_weights(settings: Settings, record: AnalysisRecord) -> SpatialWeights:
    """The spatial weights an analysis was computed with (read from the weights cache)."""
    if record.regions is None:
        raise InvalidParameterError(f"analysis {record.id} has no regions table")
    ids = sorted(record.regions["region"].astype(str).unique())
    layer = load_boundaries(settings).loc[ids]
    return cached_weights(
        layer[["geometry"]], record.params["weights"], settings.cache_dir, layer_key(settings)
    )


def neighbour_lists(weights: SpatialWeights) -> dict[str, list[str]]:
    """The neighbours' ids of every region, in the weights' order."""
    adj = weights.adjacency
    return {
        str(rid): [str(x) for x in weights.ids[adj.indices[adj.indptr[i] : adj.indptr[i + 1]]]]
        for i, rid in enumerate(weights.ids)
    }


QUADRANTS = ("High-High", "Low-High", "Low-Low", "High-Low")


@dataclass(frozen=True)
class MoranScatter:
    """The Moran scatterplot of one series: standardised values against their spatial lag.

    ``z`` is the value minus the mean over the regions with a value, divided by the
    standard deviation (``ddof=0``); ``lag`` is the mean ``z`` of a region's neighbours
    (row-standardised weights among the regions with a value). Regions without a value
    or without neighbours are left out of the points. ``slope`` is global Moran's I of the
    row-standardised weights, ``n / S0 · sum(z · lag) / sum(z²)`` with the sums over every
    region with a value (those without neighbours count in ``n`` and ``sum(z²)`` only);
    without such regions it is the least-squares slope of the points through the origin.
    """

    ids: np.ndarray
    z: np.ndarray
    lag: np.ndarray
    slope: float

    @property
    def quadrant(self) -> np.ndarray:
        """``High-High``, ``Low-High``, ``Low-Low`` or ``High-Low`` per region."""
        high, high_lag = self.z >= 0, self.lag >= 0
        index = np.where(high, np.where(high_lag, 0, 3), np.where(high_lag, 1, 2))
        return np.asarray(QUADRANTS, dtype=object)[index]


def moran_scatter(values: pd.Series, weights: SpatialWeights) -> MoranScatter:
    """The Moran scatterplot of ``values`` (indexed by region id) on ``weights``."""
    y_all = values.reindex(weights.ids).to_numpy(dtype=float)
    valid = np.isfinite(y_all)
    sub = weights.subset(valid)
    y = y_all[valid]
    std = y.std()
    z = (y - y.mean()) / std if std > 0 else np.zeros_like(y)
    card = sub.cardinalities
    lag = np.divide(sub.adjacency @ z, card, out=np.full(len(z), np.nan), where=card > 0)
    keep = card > 0
    zz = float(np.dot(z, z))
    slope = (
        len(z) / keep.sum() * float(np.dot(z[keep], lag[keep])) / zz if zz and keep.any() else 0.0
    )
    return MoranScatter(sub.ids[keep], z[keep], lag[keep], float(slope))


@dataclass(frozen=True)
class ResultView:
    """One indicator of a finished analysis over all its years, for the result map.

    ``table`` holds the analysis's rows of this indicator (every year), ``regions`` the
    names and geometry of its regions, ``catchments`` its catchments of every year;
    ``summaries`` and ``scatters`` are keyed by year.
    """

    record: AnalysisRecord
    indicator: IndicatorInfo
    dataset: DatasetInfo
    years: list[int]
    year: int
    regions: gpd.GeoDataFrame
    table: pd.DataFrame
    catchments: gpd.GeoDataFrame
    summaries: dict[int, dict[str, Any]]
    scatters: dict[int, MoranScatter]
    neighbours: dict[str, list[str]]

    def year_table(self, year: int) -> pd.DataFrame:
        """The statistics of one year, indexed by region in the order of ``regions``."""
        rows = self.table[self.table["year"] == year].set_index("region")
        return rows.reindex(self.regions.index)


def result_view(
    settings: Settings, store: Store, record: AnalysisRecord, indicator: str, year: int
) -> ResultView:
    """Everything the result map shows of ``indicator``, with ``year`` shown first.

    ``record`` must be done and hold its tables (see :func:`geo.analysis.series_layers`
    for the errors of one that is not).
    """
    from geo.analysis import series_layers

    series_layers(settings, record, indicator, year)  # raises for unfinished analyses
    assert record.regions is not None and record.catchments is not None
    table = record.regions[record.regions["indicator"] == indicator]
    ids = sorted(table["region"].astype(str).unique())
    regions = gpd.GeoDataFrame(
        load_boundaries(settings).loc[ids, [*NAME_COLUMNS, "geometry"]], crs=4326
    )
    info = store.dataset(record.dataset_id, record.params.get("version"))
    ind = next((i for i in info.indicators if i.code == indicator), None)
    if ind is None:
        ind = IndicatorInfo(indicator, indicator, "", [], 0)
    weights = analysis_weights(settings, record)
    years = [int(y) for y in record.params["years"]]
    summaries = {
        int(s["year"]): s
        for s in (record.summary or {}).get("series", [])
        if s["indicator"] == indicator
    }
    scatters = {
        y: moran_scatter(table[table["year"] == y].set_index("region")["value"], weights)
        for y in years
    }
    catch = record.catchments[record.catchments["indicator"] == indicator]
    return ResultView(
        record,
        ind,
        info,
        years,
        year,
        regions,
        table,
        catch,
        summaries,
        scatters,
        neighbour_lists(weights),
    )
