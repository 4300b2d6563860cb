"""Feature collections for GIS clients: NUTS levels, dataset versions, analysis results.

A :class:`Collection` is a GeoDataFrame in EPSG:4326 (longitude, latitude) indexed by a
stable feature id, with its description, extents and queryable properties. The OGC API,
the exports and the vector tiles are all drawn from it (see ``services/routers/ogc.py``).

Collection ids:

* ``nuts-{year}-level-{L}``: the NUTS regions of level L of the boundaries in use;
* ``dataset-{id}-v{version}-level-{L}``: one feature per region and year, the indicator
  values as properties and ``datetime`` the year (as ``YYYY-01-01``);
* ``analysis-{id}-regions`` / ``analysis-{id}-catchments``: an analysis's per-region
  statistics (one feature per region, indicator and year) and its catchments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd

from geo.boundaries import LEVELS, load_boundaries, regions
from geo.errors import NotFoundError
from geo.records import DONE
from geo.settings import Settings
from geo.store import Store

GISCO_ATTRIBUTION = "© EuroGeographics for the administrative boundaries (GISCO, Eurostat)"
_NUTS = re.compile(r"^nuts-(\d{4})-level-([0-3])$")
_DATASET = re.compile(r"^dataset-(.+)-v(\d+)-level-([0-3])$")
_ANALYSIS = re.compile(r"^analysis-([0-9a-f]+)-(regions|catchments)$")


class UnknownCollectionError(NotFoundError):
    code = "unknown-collection"
    title = "Unknown collection"


@dataclass(frozen=True)
class Collection:
    """Features in EPSG:4326 indexed by their id; ``time`` holds each feature's year (or
    nothing) for ``datetime`` filters."""

    id: str
    title: str
    description: str
    features: gpd.GeoDataFrame
    attribution: str
    queryables: tuple[str, ...] = ()
    time: pd.Series | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bbox(self) -> list[float]:
        """Spatial extent (lon/lat) of every feature."""
        if self.features.empty:
            return [-180.0, -90.0, 180.0, 90.0]
        return [float(v) for v in self.features.total_bounds]

    @property
    def interval(self) -> list[str | None] | None:
        """Temporal extent as ISO instants, or None for timeless collections."""
        if self.time is None or self.time.empty:
            return None
        return [
            f"{int(self.time.min())}-01-01T00:00:00Z",
            f"{int(self.time.max())}-12-31T23:59:59Z",
        ]


def collection_ids(settings: Settings, store: Store) -> Iterator[str]:
    """Every collection id: NUTS levels, dataset versions x levels, finished analyses."""
    for level in LEVELS:
        yield f"nuts-{settings.nuts_year}-level-{level}"
    for info in store.datasets():
        for version in range(1, info.version + 1):
            for level in _dataset_levels(store, info.id, version):
                yield f"dataset-{info.id}-v{version}-level-{level}"
    for record in store.analyses(limit=1000):
        if record.status == DONE:
            yield f"analysis-{record.id}-regions"
            yield f"analysis-{record.id}-catchments"


def _dataset_levels(store: Store, dataset_id: str, version: int) -> list[int]:
    """The NUTS levels of a version's region codes (from its upload report)."""
    report = store.version(dataset_id, version).report or {}
    found: set[int] = set()
    for info in report.get("summary", {}).get("indicators", {}).values():
        found.update(int(v) for v in info.get("levels", []))
    if not found:  # a version without a report: look at the codes themselves
        geos = store.observations(dataset_id, version=version)["geo"].drop_duplicates()
        found = {len(g) - 2 for g in geos if 2 <= len(g) <= 5}
    return sorted(found)


def load_collection(settings: Settings, store: Store, collection_id: str) -> Collection:
    """The collection with this id, or :class:`UnknownCollectionError` naming valid ones."""
    if match := _NUTS.match(collection_id):
        year, level = int(match[1]), int(match[2])
        if year == settings.nuts_year:
            return nuts_collection(settings, level)
    elif match := _DATASET.match(collection_id):
        return dataset_collection(settings, store, match[1], int(match[2]), int(match[3]))
    elif match := _ANALYSIS.match(collection_id):
        return analysis_collection(settings, store, match[1], match[2])
    valid = list(collection_ids(settings, store))
    raise UnknownCollectionError(f"unknown collection {collection_id!r}; valid: {valid}")


def nuts_collection(settings: Settings, level: int) -> Collection:
    layer = regions(settings, level)
    return Collection(
        id=f"nuts-{settings.nuts_year}-level-{level}",
        title=f"NUTS {settings.nuts_year} regions, level {level}",
        description=f"GISCO NUTS {settings.nuts_year} regions of level {level} "
        f"(scale 1:{settings.nuts_scale.lstrip('0').rstrip('M')} million), all countries.",
        features=layer.rename_axis("id"),
        attribution=GISCO_ATTRIBUTION,
        queryables=(
            "NUTS_ID",
            "CNTR_CODE",
            "LEVL_CODE",
            "NAME_LATN",
            "MOUNT_TYPE",
            "URBN_TYPE",
            "COAST_TYPE",
        ),
        keywords=("NUTS", "regions", "GISCO"),
    )


def dataset_collection(
    settings: Settings, store: Store, dataset_id: str, version: int, level: int
) -> Collection:
    """One feature per region and year of a dataset version, indicators as columns."""
    info = store.dataset(dataset_id, version)
    obs = store.observations(dataset_id, version=version)
    obs = obs[obs["geo"].str.len() == level + 2]
    if obs.empty:
        raise UnknownCollectionError(
            f"dataset {dataset_id!r} version {version} has no NUTS level {level} regions"
        )
    wide = obs.pivot_table(
        index=["geo", "time"], columns="indicator", values="value", aggfunc="first", dropna=False
    )
    wide = wide.reindex(columns=[i.code for i in info.indicators if i.code in wide.columns])
    observed = pd.MultiIndex.from_frame(obs[["geo", "time"]].drop_duplicates())
    wide = wide[wide.index.isin(observed)].reset_index()  # region-years with an observation
    layer = load_boundaries(settings)
    wide = wide[wide["geo"].isin(layer.index)]
    frame = gpd.GeoDataFrame(
        {
            "NUTS_ID": wide["geo"].to_numpy(),
            "NAME_LATN": layer.loc[wide["geo"], "NAME_LATN"].to_numpy(),
            "year": wide["time"].astype(int).to_numpy(),
            "datetime": [f"{int(t)}-01-01" for t in wide["time"]],
            **{c: wide[c].to_numpy(dtype=float) for c in wide.columns if c not in ("geo", "time")},
        },
        geometry=layer.loc[wide["geo"], "geometry"].to_numpy(),
        crs=4326,
        index=pd.Index(
            [f"{g}-{int(t)}" for g, t in zip(wide["geo"], wide["time"], strict=True)], name="id"
        ),
    )
    return Collection(
        id=f"dataset-{dataset_id}-v{version}-level-{level}",
        title=f"{info.title} (version {version}, NUTS level {level})",
        description=info.description,
        features=frame,
        attribution="; ".join(filter(None, (info.source, info.licence, GISCO_ATTRIBUTION))),
        queryables=("NUTS_ID", "year"),
        time=pd.Series(frame["year"].to_numpy(), index=frame.index),
        keywords=("indicators", dataset_id),
    )


def analysis_collection(
    settings: Settings, store: Store, analysis_id: str, part: str
) -> Collection:
    """An analysis's regions (one feature per region, indicator and year) or catchments."""
    record = store.analysis(analysis_id)
    if record.status != DONE or record.regions is None or record.catchments is None:
        raise UnknownCollectionError(f"analysis {analysis_id!r} has no results (yet)")
    params = record.params
    title = f"Analysis {analysis_id}: {params.get('method')} of {params.get('dataset')}"
    if part == "catchments":
        catch = record.catchments
        frame = catch.set_index(_ids(catch, ("indicator", "year", "catchment")))
        queryables: tuple[str, ...] = ("indicator", "year", "catchment")
    else:
        table = record.regions
        layer = load_boundaries(settings)
        frame = gpd.GeoDataFrame(
            table.reset_index(drop=True),
            geometry=layer.loc[table["region"], "geometry"].to_numpy(),
            crs=4326,
        ).set_index(_ids(table, ("region", "indicator", "year")))
        queryables = ("region", "indicator", "year", "status")
    return Collection(
        id=f"analysis-{analysis_id}-{part}",
        title=f"{title} — {part}",
        description="Parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())),
        features=frame,
        attribution=GISCO_ATTRIBUTION,
        queryables=tuple(q for q in queryables if q in frame.columns),
        time=pd.Series(frame["year"].to_numpy(dtype=np.int64), index=frame.index)
        if "year" in frame
        else None,
        keywords=("hot spots", "catchments"),
    )


def _ids(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Index:
    """Feature ids: the columns' values joined by ``-`` (e.g. ``AT332-EUR_HAB-2018``)."""
    return pd.Index(frame[list(columns)].astype(str).agg("-".join, axis=1), name="id")
