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


# NACE Rev. 2 sections and their aggregates as Eurostat's regional accounts publish them.
NACE_LABELS = {
    "TOTAL": "Total - all NACE activities",
    "A": "Agriculture, forestry and fishing",
    "B-E": "Industry (except construction)",
    "C": "Manufacturing",
    "F": "Construction",
    "G-I": "Wholesale and retail trade, transport, accommodation and food service activities",
    "G-J": "Wholesale and retail trade, transport, accommodation, food service, information "
    "and communication",
    "J": "Information and communication",
    "K": "Financial and insurance activities",
    "K-N": "Financial and insurance, real estate, professional, scientific, technical, "
    "administrative and support service activities",
    "L": "Real estate activities",
    "M_N": "Professional, scientific and technical; administrative and support service "
    "activities",
    "O-Q": "Public administration, defence, education, human health and social work",
    "O-U": "Public administration, education, health, arts, entertainment, other services",
    "R-U": "Arts, entertainment and recreation; other service activities",
}
EMPLOYMENT = UploadRequest(
    dataset_id="nama_10r_3empers",
    title="Employment by NACE Rev. 2 activity, NUTS 3",
    description="Employed persons, thousands, by NACE Rev. 2 section (Eurostat "
    "nama_10r_3empers, 2013 and 2018, published in NUTS 2024 codes with 2013 back-cast onto "
    "2024 boundaries, recoded to the NUTS version in use). AT and DE give six sectors, FR, IT "
    "and SI all fifteen; the sector codes overlap (G-J = G-I + J). Regions whose 2024 code "
    "has no one-to-one counterpart are left out.",
    source="Eurostat, nama_10r_3empers",
    licence=EUROSTAT_LICENCE,
    uploader="alpclusters demo",
    labels={code: (label, "THS") for code, label in NACE_LABELS.items()},
    levels=(3,),
    on_problem="skip",
)
LQ_MANUFACTURING = "lq_manufacturing"
SECTOR_SHARES = "employment_shares"


def load_employment(settings: Settings, store: Store) -> DatasetInfo:
    """Employment by sector at NUTS 3, 2013 and 2018, as one dataset (``nace_r2``: the
    indicator)."""
    years = [load_eurostat(settings, f"nama_10r_3empers_{y}")[0] for y in (2013, 2018)]
    table = pd.concat(years, ignore_index=True).rename(columns={"nace_r2": "indicator"})
    frame = table[["indicator", "geo", "time", "value", "flag"]]
    return _stored(upload_frame(settings, store, frame, EMPLOYMENT))


def derive_manufacturing_lq(settings: Settings, store: Store) -> DatasetInfo:
    """The location quotient of manufacturing (C) at NUTS 3 across the Alpine Space, 2018,
    against the Alpine Space's own total."""
    from geo.derived import DerivedSpec, Operand, derive

    spec = DerivedSpec(
        name=LQ_MANUFACTURING,
        title="Location quotient of manufacturing (NACE C), NUTS 3, Alpine Space, 2018",
        kind="lq",
        source=Operand(dataset=EMPLOYMENT.dataset_id),
        sectors=["C"],
        area="alpine-space",
        level=3,
        years=[2018],
        reference="area",
    )
    return _stored(derive(settings, store, spec, actor="alpclusters demo"))


def derive_sector_shares(settings: Settings, store: Store) -> DatasetInfo:
    """Each sector's share of the region's employment (NUTS 3, 2013 and 2018): the profile
    that similar regions are compared by (the six sectors every country gives: A, B-E, F,
    G-J, K-N, O-U)."""
    from geo.derived import DerivedSpec, Operand, derive

    spec = DerivedSpec(
        name=SECTOR_SHARES,
        title="Employment shares by NACE Rev. 2 activity",
        kind="share",
        source=Operand(dataset=EMPLOYMENT.dataset_id),
        denominator=Operand(dataset=EMPLOYMENT.dataset_id, indicator="TOTAL"),
    )
    return _stored(derive(settings, store, spec, actor="alpclusters demo"))


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
    """Load the boundaries and the demo datasets (GDP per head, population, density,
    employment by sector and the location quotient of manufacturing)."""
    load_boundaries(settings)
    out = []
    for request in DEMO_TABLES:
        path = locate(settings, source(settings, "eurostat", request.dataset_id))
        outcome = upload(settings, store, path, request)
        for warning in outcome.report["warnings"]:
            _expected(warning)
        out.append(_stored(outcome))
    out.append(derive_density(settings, store, "demo_r_pjanaggr3"))
    out.append(load_employment(settings, store))
    out.append(derive_manufacturing_lq(settings, store))
    out.append(derive_sector_shares(settings, store))
    return out


def _stored(outcome: UploadOutcome) -> DatasetInfo:
    assert outcome.dataset is not None, "upload() stores or raises"
    return outcome.dataset


def _expected(warning: dict[str, Any]) -> None:
    """The demo drops Eurostat aggregates, other levels and old codes on purpose."""
    log.info("%s", describe(warning))
