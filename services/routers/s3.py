"""Emerging hot spots and similar regions: JSON, GeoJSON and CSV, and their map pages.

``GET /datasets/{id}/emerging`` and ``GET /regions/{code}/similar`` answer the data
(``?f=json|geojson|csv``); ``GET /maps/datasets/{id}/emerging`` and
``GET /maps/regions/{code}/similar`` draw them, with the page chrome of the other maps.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse

from geo.defaults import DEFAULT_ALPHA, DEFAULT_PERMUTATIONS, DEFAULT_SEED
from geo.emerging import COLD, HOT
from geo.s3_views import EmergingView, SimilarView, emerging_view, similar_view, split_list
from maps.emerging import emerging_map
from maps.similar import similar_map
from services.dependencies import AreaQuery, LevelQuery, SettingsDep, StoreDep
from services.s3_schemas import (
    EmergingParameters,
    EmergingRegion,
    EmergingResult,
    SimilarParameters,
    SimilarRegion,
    SimilarResult,
)
from services.schemas import problems
from services.views import (
    PAGE_CONTENT,
    EmbedQuery,
    FormatQuery,
    TextDep,
    data_response,
    map_options,
    page,
)

router = APIRouter(tags=["s3"])

DataFormat = Literal["json", "geojson", "csv"]
DATA_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "application/geo+json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}},
        }
    }
}
DataFormatQuery = Annotated[
    DataFormat,
    Query(alias="f", description="json, geojson (RFC 7946 with the geometry) or csv."),
]
DatasetPath = Annotated[str, Path(description="Dataset id.", max_length=200)]
RegionPath = Annotated[str, Path(description="NUTS code of the region.", max_length=20)]


def get_scheduler(request: Request) -> Any:
    return getattr(request.app.state, "scheduler", None) or "threads"


def emerging_query(
    dataset_id: DatasetPath,
    settings: SettingsDep,
    store: StoreDep,
    scheduler: Annotated[Any, Depends(get_scheduler)],
    indicator: Annotated[
        str | None,
        Query(description="Indicator code; default: the dataset's first.", max_length=200),
    ] = None,
    start: Annotated[
        int | None, Query(ge=1900, le=2100, description="First year; default: see end.")
    ] = None,
    end: Annotated[
        int | None,
        Query(
            ge=1900,
            le=2100,
            description="Last year; without start and end, every year with values for three "
            "quarters of the regions. At least 6 years.",
        ),
    ] = None,
    area: AreaQuery = "alpine-space",
    level: LevelQuery = 3,
    weights: Annotated[
        str, Query(description="queen, rook, knn:K or distance:KM.", max_length=40)
    ] = "queen",
    permutations: Annotated[
        int, Query(ge=1, le=99_999, description="Conditional permutations of Gi* each year.")
    ] = DEFAULT_PERMUTATIONS,
    seed: Annotated[int, Query(ge=0, le=2**63 - 1, description="Random seed.")] = DEFAULT_SEED,
    alpha: Annotated[float, Query(gt=0, lt=1, description="Significance level.")] = DEFAULT_ALPHA,
    correction: Annotated[
        Literal["none", "fdr", "bonferroni"],
        Query(description="Multiple-testing correction, applied per year."),
    ] = "fdr",
    inference: Annotated[
        Literal["permutation", "normal"],
        Query(description="Gi* significance by permutations or the normal approximation."),
    ] = "permutation",
) -> EmergingView:
    """The emerging hot-spot result the query asks for."""
    return emerging_view(
        settings, store, dataset_id, indicator=indicator, start=start, end=end, area=area,
        level=level, weights=weights, permutations=permutations, seed=seed, alpha=alpha,
        correction=correction, inference=inference, scheduler=scheduler,
    )  # fmt: skip


EmergingDep = Annotated[EmergingView, Depends(emerging_query)]


def _num(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def emerging_body(view: EmergingView) -> EmergingResult:
    """The result as the JSON API answers it."""
    years = view.params.years
    hot, cold = view.year_lists(HOT), view.year_lists(COLD)
    regions = [
        EmergingRegion(
            region=str(code),
            name=str(r["NAME_LATN"]),
            national_name=str(r["NUTS_NAME"]),
            country=str(r["CNTR_CODE"]),
            category=str(r["category"]),
            label=str(r["label"]),
            trend_z=_num(r["trend_z"]),
            trend_p=_num(r["trend_p"]),
            trend_tau=_num(r["trend_tau"]),
            n_years=int(r["n_years"]),
            n_hot=int(r["n_hot"]),
            n_cold=int(r["n_cold"]),
            hot_years=hot[i],
            cold_years=cold[i],
            z={str(y): _num(r[f"z_{y}"]) for y in years},
            bins={str(y): int(r[f"bin_{y}"]) for y in years},
        )  # fmt: skip
        for i, (code, r) in enumerate(view.regions.iterrows())
    ]
    params = EmergingParameters(**vars(view.params))
    counts = {str(c): int(n) for c, n in view.counts.items()}
    return EmergingResult(parameters=params, counts=counts, regions=regions)


@router.get(
    "/datasets/{dataset_id}/emerging",
    response_model=EmergingResult,
    summary="Emerging hot spots of an indicator (17 space-time categories)",
    name="dataset_emerging",
    responses={**DATA_CONTENT, **problems(400, 404)},
)
def dataset_emerging(view: EmergingDep, settings: SettingsDep, f: DataFormatQuery = "json") -> Any:
    """Gi* hot spots every year, the Mann-Kendall trend of each region's z-scores and its
    category (ArcGIS Pro's *Emerging Hot Spot Analysis*), with the counts per category."""
    if f == "json":
        return emerging_body(view)
    return data_response(view.regions, f, _emerging_name(view), settings.geojson_precision)


def _emerging_name(view: EmergingView) -> str:
    p = view.params
    return f"{p.dataset}-{p.indicator}-emerging-{p.years[0]}-{p.years[-1]}"


@router.get(
    "/maps/datasets/{dataset_id}/emerging",
    response_class=HTMLResponse,
    summary="Emerging hot-spot map: the 17 categories with their legend",
    name="emerging_map",
    responses={**PAGE_CONTENT, **problems(400, 404)},
)
def emerging_map_page(
    view: EmergingDep,
    request: Request,
    settings: SettingsDep,
    _: TextDep,
    embed: EmbedQuery = False,
    f: FormatQuery = "html",
) -> Any:
    """Regions coloured by category, a category legend, popups with names, trend and the
    hot and cold years."""
    if f in ("geojson", "csv"):
        return data_response(view.regions, f, _emerging_name(view), settings.geojson_precision)
    opts = map_options(request, settings, _, f=f, embed=embed)
    return page(emerging_map(view, opts, _), f, request, f"alpclusters-{_emerging_name(view)}", _)


def similar_query(
    code: RegionPath,
    settings: SettingsDep,
    store: StoreDep,
    dataset: Annotated[
        str,
        Query(
            description="Dataset id, or several separated by commas.",
            min_length=1,
            max_length=1000,
        ),
    ],
    indicators: Annotated[
        str | None,
        Query(description="Indicator codes, comma-separated; default: all.", max_length=2000),
    ] = None,
    year: Annotated[
        int | None,
        Query(ge=1900, le=2100, description="Year; default: the latest the region has all."),
    ] = None,
    k: Annotated[int, Query(ge=1, le=100, description="How many similar regions.")] = 5,
    exclude_country: Annotated[
        bool, Query(description="Leave out the regions of the region's own country.")
    ] = False,
    area: Annotated[
        str | None,
        Query(
            description="Regions compared: a named area or NUTS codes; default: all.",
            min_length=1,
            max_length=2000,
        ),
    ] = None,
) -> SimilarView:
    """The similar regions the query asks for."""
    return similar_view(
        settings, store, code, split_list(dataset), indicators=split_list(indicators),
        year=year, k=k, exclude_country=exclude_country, area=area,
    )  # fmt: skip


SimilarDep = Annotated[SimilarView, Depends(similar_query)]


def _similar_row(code: Any, r: Any, view: SimilarView) -> SimilarRegion:
    z = {i.code: _num(r[f"z_{i.code}"]) for i in view.indicators if f"z_{i.code}" in r}
    values = {i.code: _num(r[f"value_{i.code}"]) for i in view.indicators}
    return SimilarRegion(
        region=str(code), rank=int(r["rank"]), distance=float(r["distance"]),
        name=str(r["NAME_LATN"]), national_name=str(r["NUTS_NAME"]),
        country=str(r["CNTR_CODE"]), z=z, values=values,
    )  # fmt: skip


def similar_body(view: SimilarView) -> SimilarResult:
    rows = [_similar_row(code, r, view) for code, r in view.regions.iterrows()]
    params = SimilarParameters(
        region=view.region, level=view.level, datasets=[d.id for d in view.datasets],
        indicators=[i.code for i in view.indicators], year=view.year, k=view.k,
        exclude_country=view.exclude_country, area=view.area,
    )  # fmt: skip
    return SimilarResult(
        parameters=params, region=rows[0], compared=view.compared, similar=rows[1:],
        notes=view.notes,
    )  # fmt: skip


def _similar_name(view: SimilarView) -> str:
    return f"{view.region}-similar-{view.year}"


@router.get(
    "/regions/{code}/similar",
    response_model=SimilarResult,
    summary="The regions most similar to a region (JRC S3 benchmarking)",
    name="region_similar",
    responses={**DATA_CONTENT, **problems(400, 404)},
)
def region_similar(view: SimilarDep, settings: SettingsDep, f: DataFormatQuery = "json") -> Any:
    """The ``k`` nearest regions of the same NUTS level by Euclidean distance over the
    standardised indicators; GeoJSON and CSV hold the region itself as rank 0."""
    if f == "json":
        return similar_body(view)
    return data_response(view.regions, f, _similar_name(view), settings.geojson_precision)


@router.get(
    "/maps/regions/{code}/similar",
    response_class=HTMLResponse,
    summary="Similar-regions map: the region, its similar regions by rank and their table",
    name="similar_map",
    responses={**PAGE_CONTENT, **problems(400, 404)},
)
def similar_map_page(
    view: SimilarDep,
    request: Request,
    settings: SettingsDep,
    _: TextDep,
    embed: EmbedQuery = False,
    f: FormatQuery = "html",
) -> Any:
    """The chosen region and its similar regions labelled by rank, with a table."""
    if f in ("geojson", "csv"):
        return data_response(view.regions, f, _similar_name(view), settings.geojson_precision)
    opts = map_options(request, settings, _, f=f, embed=embed)
    return page(similar_map(view, opts, _), f, request, f"alpclusters-{_similar_name(view)}", _)
