"""The start page: datasets, recent analyses and the form that runs a new analysis."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError

from geo.accounts import Account
from geo.analysis import AnalysisParams
from geo.areas import named_areas
from geo.defaults import DEFAULT_PERMUTATIONS
from geo.errors import AlpClustersError, AuthenticationError, PermissionDeniedError
from maps.i18n import Text
from maps.pages import render
from services.auth import KEY_COOKIE, credential
from services.dependencies import RunnerDep, SettingsDep, StoreDep
from services.views import TextDep, language_links, static_url, with_home

router = APIRouter(tags=["pages"])

KEY_COOKIE_DAYS = 30
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
        "key": _("Your API key"),
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
        emerging = str(request.url_for("emerging_map", dataset_id=d.id).path) + f"?{query}"
        datasets.append({**d.__dict__, "map_href": href, "emerging_href": emerging})
    analyses = [analysis_row(request, a, _) for a in store.analyses(limit=20)]
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


def analysis_row(request: Request, record: Any, _: Text) -> dict[str, Any]:
    """One line of the recent analyses (a record of a failed request may lack parameters)."""
    p = record.params
    return {
        "href": str(request.url_for("analysis_map", analysis_id=record.id).path)
        + (f"?lang={_.lang}" if _.lang != "en" else ""),
        "indicators": ", ".join(p.get("indicators") or []) or record.id,
        "dataset": record.dataset_id,
        "years": ", ".join(map(str, p.get("years") or [])),
        "area": p.get("area", ""),
        "level": p.get("level", ""),
        "method": "Gi*" if p.get("method") == "gi_star" else "LISA",
        "status": _(record.status),
    }


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


FORM_BODY = {  # the start page's form, read by run_analysis itself
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {
            "schema": {
                "type": "object",
                "properties": {
                    **{field: {"type": "string"} for field in FIELDS if field != "years"},
                    "years": {"type": "array", "items": {"type": "string"}},
                    "codes": {"type": "string", "description": "NUTS codes when area=custom."},
                    "key": {"type": "string", "description": "An API key (then remembered)."},
                },
            }
        }
    },
}


@router.post(
    "/maps/analyses",
    response_class=RedirectResponse,
    summary="Run an analysis from the start page's form",
    name="run_analysis",
    status_code=status.HTTP_303_SEE_OTHER,
    responses={
        303: {"description": "Started: the analysis's map (a progress page until done)."},
        401: {"description": "The start page again: no key, or a bad one, named at its field."},
        403: {"description": "The start page again: the key's role may not run analyses."},
        422: {"description": "The start page again, each problem named next to its field."},
    },
    openapi_extra={"requestBody": FORM_BODY},
)
async def run_analysis(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    runner: RunnerDep,
    _: TextDep,
    sent: Annotated[str | None, Depends(credential)],
) -> Any:
    """Start the analysis and go to its map (a progress page until it is done); a form
    with problems comes back with each problem named next to its field. The API key
    typed in is remembered in an HttpOnly cookie."""
    form = await request.form()
    values = {**defaults(store), **{k: form.get(k) for k in FIELDS if form.get(k) is not None}}
    values["years"] = [int(str(y)) for y in form.getlist("years") if str(y).isdigit()]
    values["codes"] = str(form.get("codes") or "")
    typed = str(form.get("key") or "").strip()
    try:
        who = form_account(store, typed or sent, _)
    except AlpClustersError as exc:
        status_code = 403 if isinstance(exc, PermissionDeniedError) else 401
        return start_page(
            request,
            store,
            settings,
            _,
            values=values,
            errors={"key": str(exc)},
            status_code=status_code,
        )
    try:
        params = form_params(values)
        record = runner.submit(params, wait=False, actor=who.name)
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
    answer = RedirectResponse(url + (f"?{query}" if query else ""), status.HTTP_303_SEE_OTHER)
    if typed:
        answer.set_cookie(
            KEY_COOKIE,
            typed,
            max_age=KEY_COOKIE_DAYS * 86_400,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return answer


def form_account(store: Any, key: str | None, _: Text) -> Account:
    """The analyst behind the form's key (typed in, or remembered in the cookie)."""
    if not key:
        raise AuthenticationError(
            _(
                "Running an analysis needs an API key with the analyst role; ask your "
                "administrator for one."
            )
        )
    who: Account = store.accounts.authenticate(key)
    who.require("analyse")
    return who


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
