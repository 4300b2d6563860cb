"""The start page: datasets, recent analyses and the form that runs a new analysis."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from geo.analysis import AnalysisParams
from geo.areas import named_areas
from geo.defaults import DEFAULT_PERMUTATIONS
from geo.errors import AlpClustersError
from maps.i18n import Text
from maps.pages import render
from services.dependencies import RunnerDep, SettingsDep, StoreDep
from services.views import TextDep, language_links, static_url, with_home

router = APIRouter(tags=["pages"])

FIELDS = (
    "dataset",
    "indicator",
    "years",
    "area",
    "level",
    "method",
    "weights",
    "alpha",
    "correction",
    "permutations",
)


def labels(_: Text) -> dict[str, str]:
    return {
        "dataset": _("Dataset"),
        "indicator": _("Indicator"),
        "years": _("Years"),
        "area": _("Area"),
        "codes": _("NUTS codes"),
        "level": _("NUTS level"),
        "method": _("Method"),
        "weights": _("Neighbours (spatial weights)"),
        "alpha": _("Confidence"),
        "correction": _("Correction for multiple testing"),
        "permutations": _("Permutations"),
        "indicators": _("Indicator"),
    }


def choices(_: Text) -> dict[str, list[tuple[Any, str]]]:
    return {
        "levels": [
            (3, _("NUTS 3: provinces, districts, cantons")),
            (2, _("NUTS 2: regions")),
            (1, _("NUTS 1: major regions")),
            (0, _("NUTS 0: countries")),
        ],
        "methods": [
            ("gi_star", _("Hot spots (Getis-Ord Gi*)")),
            ("local_moran", _("Clusters and outliers (Local Moran's I, LISA)")),
        ],
        "weights": [
            ("queen", _("Shared border or corner (queen)")),
            ("rook", _("Shared border (rook)")),
            ("knn:6", _("6 nearest regions")),
            ("distance:100", _("Within 100 km")),
        ],
        "alphas": [(0.1, _("90 %")), (0.05, _("95 %")), (0.01, _("99 %"))],
        "corrections": [
            ("fdr", _("False Discovery Rate (recommended)")),
            ("bonferroni", _("Bonferroni (strictest)")),
            ("none", _("None")),
        ],
    }


def start_page(
    request: Request,
    store: Any,
    settings: Any,
    _: Text,
    *,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    datasets = []
    for d in store.datasets():
        query = urlencode({"lang": _.lang}) if _.lang != "en" else "level=3"
        href = str(request.url_for("indicator_map", dataset_id=d.id).path) + f"?{query}"
        datasets.append({**d.__dict__, "map_href": href})
    analyses = [
        {
            "href": str(request.url_for("analysis_map", analysis_id=a.id).path)
            + (f"?lang={_.lang}" if _.lang != "en" else ""),
            "indicators": ", ".join(a.params["indicators"]),
            "dataset": a.dataset_id,
            "years": ", ".join(map(str, a.params["years"])),
            "area": a.params["area"],
            "level": a.params["level"],
            "method": "Gi*" if a.params["method"] == "gi_star" else "LISA",
            "status": _(a.status),
        }
        for a in store.analyses(limit=20)
    ]
    all_years = sorted(
        {y for d in datasets for i in d["indicators"] for y in i.years}, reverse=True
    )
    body = render(
        "start.html",
        _,
        static=static_url(request),
        home=with_home(request, _),
        languages=language_links(request),
        datasets=datasets,
        analyses=analyses,
        all_years=all_years,
        areas=list(named_areas(settings).values()),
        labels=labels(_),
        values=values,
        errors=errors or {},
        action=str(request.url_for("run_analysis").path),
        max_permutations=settings.max_permutations,
        **choices(_),
    )
    return HTMLResponse(body, status_code=status_code)


def defaults(store: Any) -> dict[str, Any]:
    """The form's starting values: the first dataset and the library's defaults."""
    params = AnalysisParams(dataset="")
    recent = next(iter(store.analyses(limit=1)), None)
    datasets = store.datasets()
    first = next((d for d in datasets if recent and d.id == recent.dataset_id), None)
    first = first or next(iter(datasets), None)
    return {
        "dataset": first.id if first else "",
        "indicator": first.indicators[0].code if first and first.indicators else "",
        "years": [],
        "area": params.area,
        "codes": "",
        "level": params.level,
        "method": params.method,
        "weights": params.weights,
        "alpha": params.alpha,
        "correction": params.correction,
        "permutations": DEFAULT_PERMUTATIONS,
    }


@router.get("/", response_class=HTMLResponse, summary="Start page", name="index")
def index(request: Request, store: StoreDep, settings: SettingsDep, _: TextDep) -> HTMLResponse:
    """Datasets with their indicators, years and sources; recent analyses; the form."""
    return start_page(request, store, settings, _, values=defaults(store))


@router.post(
    "/maps/analyses",
    response_class=HTMLResponse,
    summary="Run an analysis from the start page's form",
    name="run_analysis",
    status_code=status.HTTP_303_SEE_OTHER,
)
async def run_analysis(
    request: Request, store: StoreDep, settings: SettingsDep, runner: RunnerDep, _: TextDep
) -> Any:
    """Start the analysis and go to its map (a progress page until it is done); a form
    with problems comes back with each problem named next to its field."""
    form = await request.form()
    values = {**defaults(store), **{k: form.get(k) for k in FIELDS if form.get(k) is not None}}
    values["years"] = [int(str(y)) for y in form.getlist("years") if str(y).isdigit()]
    values["codes"] = str(form.get("codes") or "")
    try:
        params = form_params(values)
        record = runner.submit(params, wait=False)
    except ValidationError as exc:
        errors = {str(e["loc"][0]) if e["loc"] else "": e["msg"] for e in exc.errors()}
        return start_page(
            request, store, settings, _, values=values, errors=errors, status_code=422
        )
    except AlpClustersError as exc:
        return start_page(
            request, store, settings, _, values=values, errors={"": str(exc)}, status_code=422
        )
    url = str(request.url_for("analysis_map", analysis_id=record.id).path)
    query = urlencode({"lang": _.lang}) if _.lang != "en" else ""
    return RedirectResponse(url + (f"?{query}" if query else ""), status.HTTP_303_SEE_OTHER)


def form_params(values: dict[str, Any]) -> AnalysisParams:
    """The analysis the form asks for (pydantic checks every value)."""
    area = values["codes"] if values["area"] == "custom" else values["area"]
    return AnalysisParams.model_validate(
        {
            "dataset": values["dataset"],
            "indicators": [values["indicator"]] if values.get("indicator") else None,
            "years": values["years"] or None,
            "area": area,
            "level": values["level"],
            "method": values["method"],
            "weights": values["weights"],
            "alpha": values["alpha"],
            "correction": values["correction"],
            "permutations": values["permutations"],
        }
    )
