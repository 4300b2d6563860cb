"""Analyses: hot spots and catchments over several indicators and years in one dask graph."""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from geo.areas import resolve
from geo.boundaries import layer_key, load_boundaries
from geo.catchments import catchment_labels, catchments
from geo.defaults import (
    COVERAGE_FOR_DEFAULT_YEAR,
    DEFAULT_ALPHA,
    DEFAULT_PERMUTATIONS,
    DEFAULT_SEED,
)
from geo.engine import Progress, connect, panel_cube, run_panel
from geo.errors import AnalysisNotReadyError, InvalidParameterError
from geo.hotspots import LISA_CODES, MIN_REGIONS, HotSpotResult, Options, panel
from geo.settings import Settings
from geo.store import DONE, RUNNING, AnalysisRecord, DatasetInfo, Store, canonical_json
from geo.weights import SpatialWeights, WeightsSpec, cached_weights


class AnalysisParams(BaseModel):
    """What to analyse. Everything but the dataset has a documented default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(description="Dataset id, as listed by GET /datasets.")
    version: int | None = Field(
        default=None,
        ge=1,
        description="Dataset version; default: the latest when the analysis is submitted "
        "(recorded, so the analysis stays reproducible when newer versions arrive).",
    )
    indicators: list[str] | Literal["all"] | None = Field(
        default=None,
        description='Indicator codes, or "all"; default: the dataset\'s first indicator.',
    )
    years: list[int] | Literal["all"] | None = Field(
        default=None,
        description='Years, or "all" (every year with data for the indicators); default: '
        "the latest year in which the indicator covers at least 95 % of the area's regions "
        "(else its latest year).",
    )
    level: int = Field(default=3, ge=0, le=3, description="NUTS level 0-3.")
    area: str = Field(
        default="alpine-space",
        description="A named area (alpine-space, austria, ...) or comma-separated NUTS codes.",
    )
    method: Literal["gi_star", "local_moran"] = Field(
        default="gi_star", description="Getis-Ord Gi* hot spots or Local Moran's I (LISA)."
    )
    weights: str = Field(
        default="queen", description="queen, rook, knn:K or distance:KM (EPSG:3035)."
    )
    permutations: int = Field(
        default=DEFAULT_PERMUTATIONS,
        ge=0,
        le=99_999,
        description="Conditional permutations for pseudo p-values.",
    )
    seed: int = Field(default=DEFAULT_SEED, ge=0, lt=2**63, description="Random seed.")
    alpha: float = Field(default=DEFAULT_ALPHA, gt=0, lt=1, description="Significance level.")
    correction: Literal["none", "fdr", "bonferroni"] = Field(
        default="fdr", description="Multiple-testing correction applied to the classes."
    )
    inference: Literal["permutation", "normal"] = Field(
        default="permutation",
        description="Gi* classes from permutation pseudo p-values or, as ArcGIS, from the "
        "normal approximation. Local Moran always uses permutations.",
    )

    @field_validator("weights")
    @classmethod
    def _weights(cls, value: str) -> str:
        return str(WeightsSpec.parse(value))

    @field_validator("indicators", "years")
    @classmethod
    def _non_empty(cls, value: list[Any] | str | None) -> list[Any] | str | None:
        if value is not None and not value:
            raise ValueError("give at least one value, or leave it out for the default")
        return value


@dataclass(frozen=True)
class AnalysisOutput:
    """Everything an analysis produced."""

    params: AnalysisParams
    regions: pd.DataFrame
    catchments: gpd.GeoDataFrame
    summary: dict[str, Any]
    duration_s: float


def analysis_id(params: AnalysisParams, dataset: DatasetInfo) -> str:
    """Stable id: a hash of the resolved parameters (the dataset version among them) and
    the version's content."""
    payload = canonical_json({"params": params.model_dump(), "data": dataset.content_hash})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def resolve_params(
    settings: Settings, store: Store, params: AnalysisParams
) -> tuple[AnalysisParams, list[str]]:
    """Fill the defaults from the data and check every value; return params and region ids."""
    info = store.dataset(params.dataset, params.version)
    layer = load_boundaries(settings)
    ids = resolve(settings, layer, params.area, params.level)
    codes = [i.code for i in info.indicators]
    indicators = codes if params.indicators == "all" else (params.indicators or codes[:1])
    unknown = [i for i in indicators if i not in codes]
    if unknown:
        raise InvalidParameterError(
            f"dataset {info.id!r} has no indicator {unknown}; valid indicators: {codes}"
        )
    available = {y for ind in info.indicators if ind.code in indicators for y in ind.years}
    if params.years == "all":
        years = sorted(available)
    else:
        years = params.years or [_default_year(store, info, indicators[0], ids)]
    missing = sorted(set(years) - available)
    if missing:
        raise InvalidParameterError(
            f"dataset {info.id!r} has no data for {missing}; years with data: {sorted(available)}"
        )
    resolved = {"indicators": indicators, "years": sorted(set(years)), "version": info.version}
    return params.model_copy(update=resolved), ids


def _default_year(store: Store, info: DatasetInfo, indicator: str, ids: list[str]) -> int:
    years = next(i.years for i in info.indicators if i.code == indicator)
    if not years:
        raise InvalidParameterError(f"indicator {indicator!r} of {info.id!r} has no values")
    obs = store.observations(info.id, [indicator], years, geos=ids, version=info.version)
    obs = obs.dropna(subset=["value"])
    share = obs.groupby("time")["geo"].nunique() / max(len(ids), 1)
    covered = share[share >= COVERAGE_FOR_DEFAULT_YEAR]
    return int(covered.index.max()) if len(covered) else int(max(years))


def run_analysis(
    settings: Settings,
    store: Store,
    params: AnalysisParams,
    scheduler: Any = None,
    progress: Progress | None = None,
) -> AnalysisOutput:
    """Run an analysis over every (indicator, year) series as one dask graph.

    The observations form an (indicator, time, region) cube; the engine computes all series
    at once, sharing the permutation draws, with regions chunked over the scheduler's
    workers. ``scheduler`` is anything ``dask.compute`` accepts (``"threads"``, ``"sync"``,
    a ``distributed.Client``); by default the one of the settings.
    """
    started = time.perf_counter()
    params, ids = resolve_params(settings, store, params)
    indicators, years = series_of(params)
    layer = load_boundaries(settings).loc[ids]
    obs = store.observations(params.dataset, indicators, years, geos=ids, version=params.version)
    cube = panel_cube(obs, indicators, years, ids)
    values = cube.stack(series=("indicator", "time")).transpose("series", "region")
    counts = np.isfinite(values.values).sum(axis=1)
    if counts.max(initial=0) < MIN_REGIONS:
        raise InvalidParameterError(
            f"no series of {params.dataset!r} has {MIN_REGIONS} or more regions with a value "
            f"in area {params.area!r} at level {params.level} (most: {counts.max(initial=0)})"
        )
    weights = cached_weights(
        layer[["geometry"]], params.weights, settings.cache_dir, layer_key(settings)
    )
    results = run_panel(
        values.values,
        weights,
        params.method,
        options(params),
        scheduler=scheduler or connect(settings.scheduler),
        progress=progress,
    )
    parts = [
        analyse_series(result, weights, layer[["CNTR_CODE", "geometry"]], str(ind), int(year))
        for result, (ind, year) in zip(results, values["series"].values, strict=True)
    ]
    regions = pd.concat([p[0] for p in parts], ignore_index=True)
    catch = pd.concat([p[1] for p in parts], ignore_index=True)
    summary = {"series": [p[2] for p in parts], "n_regions": len(ids)}
    catch = gpd.GeoDataFrame(catch, geometry="geometry", crs=4326)
    return AnalysisOutput(params, regions, catch, summary, time.perf_counter() - started)


def series_of(params: AnalysisParams) -> tuple[list[str], list[int]]:
    """The indicators and years of resolved parameters (see :func:`resolve_params`)."""
    if not isinstance(params.indicators, list) or not isinstance(params.years, list):
        raise InvalidParameterError("parameters are not resolved; call resolve_params first")
    return params.indicators, params.years


def options(params: AnalysisParams) -> Options:
    """The engine's inference options of an analysis."""
    inference = params.inference if params.method == "gi_star" else "permutation"
    return Options(params.permutations, params.seed, params.alpha, params.correction, inference)


def analyse_series(
    result: HotSpotResult,
    weights: SpatialWeights,
    layer: gpd.GeoDataFrame,
    indicator: str,
    year: int,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame, dict[str, Any]]:
    """Catchments, the long table and the summary of one (indicator, year) series."""
    labels = catchment_labels(result, weights)
    frame = result.to_frame().assign(catchment=labels).reset_index()
    frame.insert(0, "year", year)
    frame.insert(0, "indicator", indicator)
    catch = catchments(result, weights, layer)
    catch.insert(0, "year", year)
    catch.insert(0, "indicator", indicator)
    return frame, catch, series_summary(result, catch, indicator, year)


def compute_hotspots(
    values: pd.Series, weights: SpatialWeights, params: AnalysisParams
) -> HotSpotResult:
    """The local statistic named by ``params.method`` for one series."""
    return run_panel(
        panel(values, weights), weights, params.method, options(params), scheduler="sync"
    )[0]


def series_summary(
    result: HotSpotResult, catch: gpd.GeoDataFrame, indicator: str, year: int
) -> dict[str, Any]:
    """Global Moran's I, class counts, exclusions and catchments of one series."""
    if result.method == "gi_star":
        classes = pd.Series(result.stats["bin"][result.status == "ok"]).value_counts()
        counts = {str(int(k)): int(v) for k, v in sorted(classes.items())}
    else:
        names = {v: k for k, v in LISA_CODES.items()}
        classes = pd.Series(result.stats["cluster"]).value_counts()
        counts = {names[int(k)]: int(v) for k, v in sorted(classes.items())}
    gm = result.global_moran
    return {
        "indicator": indicator,
        "year": year,
        "global_moran": {
            "I": _finite(gm.I),
            "EI": _finite(gm.EI),
            "z_norm": _finite(gm.z_norm),
            "p_norm": _finite(gm.p_norm),
            "p_sim": _finite(gm.p_sim),
            "permutations": gm.permutations,
        },
        "class_counts": counts,
        "n_hot": int(result.hot.sum()),
        "n_tested": int((result.status == "ok").sum()),
        "missing": result.excluded,
        "isolates": result.isolates,
        "catchments": json.loads(catch.drop(columns="geometry").to_json(orient="records")),
    }


def _finite(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def pick_series(record: AnalysisRecord, indicator: str | None, year: int | None) -> tuple[str, int]:
    """The (indicator, year) series of a stored analysis; defaults to the first one."""
    params = record.params
    ind = indicator or params["indicators"][0]
    yr = year if year is not None else params["years"][0]
    if ind not in params["indicators"]:
        raise InvalidParameterError(
            f"analysis {record.id} has no indicator {ind!r}; it has {params['indicators']}"
        )
    if yr not in params["years"]:
        raise InvalidParameterError(
            f"analysis {record.id} has no year {yr}; it has {params['years']}"
        )
    return ind, int(yr)


def series_layers(
    settings: Settings, record: AnalysisRecord, indicator: str, year: int
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, dict[str, Any]]:
    """Regions (statistics joined to the NUTS attributes and geometry) and catchments."""
    if record.status != DONE or record.regions is None or record.catchments is None:
        detail = f" ({record.progress:.0f} % done)" if record.status == RUNNING else ""
        reason = f": {record.error}" if record.error else ""
        raise AnalysisNotReadyError(
            f"analysis {record.id} is {record.status}{detail}{reason}; its results are "
            "available once it is done"
        )
    frame = record.regions
    frame = frame[(frame["indicator"] == indicator) & (frame["year"] == year)]
    layer = load_boundaries(settings).loc[frame["region"]]
    attrs = layer[["NAME_LATN", "NUTS_NAME", "CNTR_CODE", "geometry"]]
    regions = gpd.GeoDataFrame(frame.set_index("region").join(attrs), geometry="geometry", crs=4326)
    catch = record.catchments
    catch = catch[(catch["indicator"] == indicator) & (catch["year"] == year)]
    summary = next(
        s
        for s in (record.summary or {})["series"]
        if s["indicator"] == indicator and s["year"] == year
    )
    return regions, catch, summary
