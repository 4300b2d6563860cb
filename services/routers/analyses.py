"""Hot-spot analyses: run, describe, and export their regions and catchments."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from geo.analysis import AnalysisParams
from geo.geojson import feature_collection
from geo.store import DONE, AnalysisRecord
from services.auth import Analyst
from services.dependencies import RunnerDep, SeriesDep, SettingsDep, StoreDep
from services.responses import GeoJSONResponse
from services.schemas import Analysis, AnalysisList, problems

router = APIRouter(tags=["analyses"])


def analysis_out(record: AnalysisRecord, request: Request) -> Analysis:
    summary = record.summary or {}
    return Analysis(
        id=record.id,
        status=record.status,
        progress=record.progress,
        params=AnalysisParams(**record.params),
        created_at=record.created_at,
        duration_s=record.duration_s,
        error=record.error,
        n_regions=summary.get("n_regions"),
        series=summary.get("series", []),
        links={
            "self": str(request.url_for("get_analysis", analysis_id=record.id)),
            "regions": str(request.url_for("analysis_regions", analysis_id=record.id)),
            "catchments": str(request.url_for("analysis_catchments", analysis_id=record.id)),
            "map": str(request.url_for("analysis_map", analysis_id=record.id)),
        },
    )


@router.post(
    "/analyses",
    response_model=Analysis,
    status_code=status.HTTP_201_CREATED,
    summary="Run an analysis",
    responses={
        202: {"model": Analysis, "description": "Accepted: running in the background"},
        **problems(400, 403, 404),
    },
)
def create_analysis(
    params: AnalysisParams, runner: RunnerDep, request: Request, response: Response, who: Analyst
) -> Analysis:
    """Run hot spots and catchments for the given indicators and years.

    Small analyses answer 201 with their results; long ones answer 202 at once and run in
    the background (poll ``GET /analyses/{id}`` for ``progress``). An identical request
    (same parameters, same dataset content) returns the stored or running analysis.
    """
    record = runner.submit(params, actor=who.name)
    if record.status != DONE:
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = str(request.url_for("get_analysis", analysis_id=record.id))
    return analysis_out(record, request)


@router.get("/analyses", response_model=AnalysisList, summary="Recent analyses")
def list_analyses(store: StoreDep, request: Request) -> AnalysisList:
    return AnalysisList(analyses=[analysis_out(r, request) for r in store.analyses()])


@router.get(
    "/analyses/{analysis_id}",
    response_model=Analysis,
    summary="One analysis",
    responses=problems(404),
)
def get_analysis(analysis_id: str, store: StoreDep, request: Request) -> Analysis:
    """Parameters, global Moran's I, counts per class and the catchments summary."""
    return analysis_out(store.analysis(analysis_id, with_tables=False), request)


@router.get(
    "/analyses/{analysis_id}/regions.geojson",
    response_class=GeoJSONResponse,
    summary="Per-region statistics",
    responses=problems(400, 404, 409),
)
def analysis_regions(series: SeriesDep, settings: SettingsDep) -> Any:
    """The regions of one series with their statistics, class and catchment as properties."""
    regions = series.regions.assign(indicator=series.indicator, year=series.year)
    return GeoJSONResponse(feature_collection(regions, precision=settings.geojson_precision))


@router.get(
    "/analyses/{analysis_id}/catchments.geojson",
    response_class=GeoJSONResponse,
    summary="Cluster catchments",
    responses=problems(400, 404, 409),
)
def analysis_catchments(series: SeriesDep, settings: SettingsDep) -> Any:
    """Dissolved catchment polygons with members, countries, area and summary figures."""
    catch = series.catchments
    catch = catch.set_index(f"{series.indicator}-{series.year}-" + catch["catchment"])
    return GeoJSONResponse(feature_collection(catch, precision=settings.geojson_precision))
