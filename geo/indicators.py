"""Indicator tables: Eurostat loaders, ingestion into the store, the demo datasets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from geo.boundaries import area_km2, load_boundaries, regions
from geo.errors import describe
from geo.ingest import Report, content_hash, prepare, read_table
from geo.settings import Settings
from geo.sources import locate, source
from geo.store import DatasetInfo, Store

log = logging.getLogger(__name__)

# Eurostat SDMX-CSV column names -> the tidy names used throughout AlpClusters.
SDMX_RENAME = {
    "TIME_PERIOD": "time",
    "OBS_VALUE": "value",
    "OBS_FLAG": "flag",
    "LAST UPDATE": "last_update",
    "DATAFLOW": "dataflow",
}


def load_eurostat(settings: Settings, key: str) -> tuple[pd.DataFrame, str]:
    """A Eurostat table from the mirror or the SDMX-CSV download, with tidy column names.

    Returns the table and the file it was read from.
    """
    path = locate(settings, source(settings, "eurostat", key))
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.rename(columns=SDMX_RENAME), str(path)


@dataclass(frozen=True)
class TableSpec:
    """How to turn a tidy table into a dataset."""

    dataset_id: str
    title: str
    description: str = ""
    source: str = ""
    licence: str = ""
    where: Mapping[str, str] = field(default_factory=dict)
    indicator_from: Sequence[str] | None = None
    labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    level: int | None = None
    drop_unknown: bool = False


def ingest_frame(
    settings: Settings,
    store: Store,
    frame: pd.DataFrame,
    spec: TableSpec,
    file: str,
    header_rows: int = 0,
    on_warning: Callable[[dict[str, Any]], None] | None = None,
) -> DatasetInfo:
    """Validate ``frame`` against the NUTS layer in use and store it as ``spec.dataset_id``.

    Warnings (such as codes dropped with ``drop_unknown``) go to ``on_warning``, else to the
    log.
    """
    layer = load_boundaries(settings)
    known = layer.index if spec.level is None else regions(settings, spec.level).index
    report = Report(file, header_rows=header_rows)
    table = prepare(
        frame,
        report,
        where=spec.where,
        indicator_from=spec.indicator_from,
        known_geo=set(known),
        drop_unknown=spec.drop_unknown,
    )
    for warning in report.warnings:
        if on_warning is not None:
            on_warning(warning)
        else:
            log.warning("%s", describe(warning))
    codes = list(dict.fromkeys(table["indicator"]))
    labels = {c: spec.labels.get(c, (c, c.split(".")[-1])) for c in codes}
    meta = {
        "id": spec.dataset_id,
        "title": spec.title,
        "description": spec.description,
        "source": spec.source,
        "licence": spec.licence,
        "nuts_year": settings.nuts_year,
        "content_hash": content_hash(table),
    }
    return store.put_dataset(meta, labels, table)


def ingest_file(
    settings: Settings,
    store: Store,
    path: Path,
    spec: TableSpec,
    on_warning: Callable[[dict[str, Any]], None] | None = None,
) -> DatasetInfo:
    """Read a CSV or Parquet tidy table and store it."""
    frame, header_rows = read_table(path)
    return ingest_frame(settings, store, frame, spec, str(path), header_rows, on_warning)


EUROSTAT_LICENCE = "Source: Eurostat. Re-use under the Eurostat copyright notice (CC BY 4.0)"

DEMO_TABLES = (
    (
        "nama_10r_3gdp",
        TableSpec(
            dataset_id="nama_10r_3gdp",
            title="GDP per inhabitant, NUTS 3",
            description="Gross domestic product at current market prices, euro per inhabitant "
            "(Eurostat nama_10r_3gdp, unit EUR_HAB), NUTS 3 regions.",
            source="Eurostat, nama_10r_3gdp",
            licence=EUROSTAT_LICENCE,
            where={"unit": "EUR_HAB"},
            indicator_from=["unit"],
            labels={"EUR_HAB": ("GDP per inhabitant", "EUR_HAB")},
            level=3,
            drop_unknown=True,
        ),
    ),
    (
        "demo_r_pjanaggr3",
        TableSpec(
            dataset_id="demo_r_pjanaggr3",
            title="Population on 1 January, NUTS 3",
            description="Population on 1 January, both sexes, all ages (Eurostat "
            "demo_r_pjanaggr3, sex T, age TOTAL), NUTS 3 regions.",
            source="Eurostat, demo_r_pjanaggr3",
            licence=EUROSTAT_LICENCE,
            where={"sex": "T", "age": "TOTAL"},
            indicator_from=["unit"],
            labels={"NR": ("Population on 1 January", "NR")},
            level=3,
            drop_unknown=True,
        ),
    ),
)

DENSITY = TableSpec(
    dataset_id="population_density",
    title="Population density, NUTS 3",
    description="Population on 1 January (demo_r_pjanaggr3) divided by the region's area "
    "in km², measured in EPSG:3035 on the GISCO NUTS boundaries in use.",
    source="Derived from Eurostat demo_r_pjanaggr3 and GISCO NUTS boundaries",
    licence=EUROSTAT_LICENCE + "; © EuroGeographics for the administrative boundaries",
    labels={"PER_KM2": ("Population density", "persons per km²")},
    level=3,
)


def derive_density(settings: Settings, store: Store, population_id: str) -> DatasetInfo:
    """Store population density (persons per km², EPSG:3035 areas) from a population dataset."""
    info = store.dataset(population_id)
    ind = info.indicators[0]
    pop = store.observations(population_id, [ind.code], ind.years)
    layer = regions(settings, 3)
    km2 = area_km2(layer)
    pop = pop[pop["geo"].isin(km2.index)]
    density = pop.assign(
        indicator="PER_KM2", value=pop["value"] / pop["geo"].map(km2).to_numpy(), flag=pop["flag"]
    )
    return ingest_frame(settings, store, density, DENSITY, f"derived from {population_id}")


def load_demo(settings: Settings, store: Store) -> list[DatasetInfo]:
    """Load the boundaries and the demo datasets (GDP per head, population, density)."""
    load_boundaries(settings)
    out = []
    for key, spec in DEMO_TABLES:
        frame, path = load_eurostat(settings, key)
        out.append(ingest_frame(settings, store, frame, spec, path, on_warning=_expected))
    out.append(derive_density(settings, store, "demo_r_pjanaggr3"))
    return out


def _expected(warning: dict[str, Any]) -> None:
    """The demo drops Eurostat aggregates and codes of other levels on purpose."""
    log.info("%s", describe(warning))
