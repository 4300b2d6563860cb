"""Indicator tables: Eurostat loaders, in-memory tables into the store, the demo datasets."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from geo.boundaries import area_km2, load_boundaries, regions
from geo.errors import describe
from geo.formats import ReadOptions
from geo.settings import Settings
from geo.sources import locate, source
from geo.store import DatasetInfo, Store
from geo.uploads import UploadOutcome, UploadRequest, upload

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


def upload_frame(
    settings: Settings, store: Store, frame: pd.DataFrame, request: UploadRequest
) -> UploadOutcome:
    """Store an in-memory table through the upload pipeline (as a Parquet file, so it gets
    exactly the checks, NUTS repair and provenance of an uploaded file)."""
    with tempfile.TemporaryDirectory(prefix="alpclusters-") as tmp:
        path = Path(tmp) / f"{request.dataset_id}.parquet"
        frame.to_parquet(path, index=False)
        return upload(settings, store, path, request)


EUROSTAT_LICENCE = "Source: Eurostat. Re-use under the Eurostat copyright notice (CC BY 4.0)"

DEMO_TABLES = (
    UploadRequest(
        dataset_id="nama_10r_3gdp",
        title="GDP per inhabitant, NUTS 3",
        description="Gross domestic product at current market prices, euro per inhabitant "
        "(Eurostat nama_10r_3gdp, unit EUR_HAB), NUTS 3 regions.",
        source="Eurostat, nama_10r_3gdp",
        licence=EUROSTAT_LICENCE,
        uploader="alpclusters demo",
        read=ReadOptions(where={"unit": "EUR_HAB"}, indicator_from=["unit"]),
        labels={"EUR_HAB": ("GDP per inhabitant", "EUR_HAB")},
        levels=(3,),
    ),
    UploadRequest(
        dataset_id="demo_r_pjanaggr3",
        title="Population on 1 January, NUTS 3",
        description="Population on 1 January, both sexes, all ages (Eurostat "
        "demo_r_pjanaggr3, sex T, age TOTAL), NUTS 3 regions. Years before a region's "
        "boundaries changed carry codes of older NUTS versions; those rows are left out.",
        source="Eurostat, demo_r_pjanaggr3",
        licence=EUROSTAT_LICENCE,
        uploader="alpclusters demo",
        read=ReadOptions(where={"sex": "T", "age": "TOTAL"}, indicator_from=["unit"]),
        labels={"NR": ("Population on 1 January", "NR")},
        levels=(3,),
        on_problem="skip",
    ),
)

DENSITY = UploadRequest(
    dataset_id="population_density",
    title="Population density, NUTS 3",
    description="Population on 1 January (demo_r_pjanaggr3) divided by the region's area "
    "in km², measured in EPSG:3035 on the GISCO NUTS boundaries in use.",
    source="Derived from Eurostat demo_r_pjanaggr3 and GISCO NUTS boundaries",
    licence=EUROSTAT_LICENCE + "; © EuroGeographics for the administrative boundaries",
    uploader="alpclusters demo",
    labels={"PER_KM2": ("Population density", "persons per km²")},
    levels=(3,),
)


def derive_density(settings: Settings, store: Store, population_id: str) -> DatasetInfo:
    """Store population density (persons per km², EPSG:3035 areas) from a population dataset."""
    info = store.dataset(population_id)
    ind = info.indicators[0]
    pop = store.observations(population_id, [ind.code], ind.years)
    km2 = area_km2(regions(settings, 3))
    pop = pop[pop["geo"].isin(km2.index)]
    density = pop.assign(
        indicator="PER_KM2", value=pop["value"] / pop["geo"].map(km2).to_numpy(), flag=pop["flag"]
    )
    return _stored(upload_frame(settings, store, density, DENSITY))


def load_demo(settings: Settings, store: Store) -> list[DatasetInfo]:
    """Load the boundaries and the demo datasets (GDP per head, population, density)."""
    load_boundaries(settings)
    out = []
    for request in DEMO_TABLES:
        path = locate(settings, source(settings, "eurostat", request.dataset_id))
        outcome = upload(settings, store, path, request)
        for warning in outcome.report["warnings"]:
            _expected(warning)
        out.append(_stored(outcome))
    out.append(derive_density(settings, store, "demo_r_pjanaggr3"))
    return out


def _stored(outcome: UploadOutcome) -> DatasetInfo:
    assert outcome.dataset is not None, "upload() stores or raises"
    return outcome.dataset


def _expected(warning: dict[str, Any]) -> None:
    """The demo drops Eurostat aggregates, other levels and old codes on purpose."""
    log.info("%s", describe(warning))
