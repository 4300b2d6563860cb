"""RFC 9457 problem details for every error, one table from domain errors to statuses."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from geo.errors import (
    AlpClustersError,
    AnalysisNotReadyError,
    AuthenticationError,
    DataSourceError,
    IngestError,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    StoreUnavailableError,
    TooLargeError,
    UnknownAreaError,
    UnknownRegionError,
)

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
TYPE_BASE = "https://alpclusters.eu/problems/"

STATUS: dict[type[AlpClustersError], int] = {
    AlpClustersError: 400,
    NotFoundError: 404,
    AnalysisNotReadyError: 409,
    UnknownAreaError: 400,
    UnknownRegionError: 400,
    InvalidParameterError: 400,
    IngestError: 422,
    DataSourceError: 503,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    TooLargeError: 413,
    RateLimitedError: 429,
    StoreUnavailableError: 503,
}
RETRY_DATABASE_S = 5  # Retry-After of a 503 while the database is unreachable


def problem(status: int, title: str, detail: str, code: str, **extra: Any) -> JSONResponse:
    """An ``application/problem+json`` response."""
    body = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


PAGE_PREFIXES = ("/maps/",)  # with "/": the planners' pages, which answer browsers in HTML


def for_client(request: Request, response: JSONResponse) -> Response:
    """A browser asking for a page gets the problem as an HTML page (same status and
    content); every other client gets ``application/problem+json``."""
    path = request.url.path
    page = path == "/" or path.startswith(PAGE_PREFIXES)
    if not page or "text/html" not in request.headers.get("accept", ""):
        return response
    from maps.i18n import Text, pick_language
    from maps.pages import render

    body = json.loads(bytes(response.body))
    _ = Text(
        pick_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    )
    home = "/" + (f"?lang={_.lang}" if _.lang != "en" else "")
    page_html = render("error.html", _, problem=body, static="/static", home=home, languages=[])
    return HTMLResponse(page_html, status_code=response.status_code)


def _domain(status: int) -> Any:
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, AlpClustersError)
        extra: dict[str, Any] = {}
        if isinstance(exc, IngestError):
            extra = {"errors": exc.problems}
            if exc.report is not None:
                extra["report"] = exc.report
        if isinstance(exc, PermissionDeniedError) and exc.regions:
            extra["regions"] = exc.regions
        answer = problem(status, exc.title, str(exc), exc.code, instance=request.url.path, **extra)
        if isinstance(exc, AuthenticationError):
            answer.headers["WWW-Authenticate"] = 'Bearer realm="AlpClusters"'
        if isinstance(exc, RateLimitedError):
            answer.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, StoreUnavailableError):
            answer.headers["Retry-After"] = str(RETRY_DATABASE_S)
        return for_client(request, answer)

    return handler


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "location": ".".join(str(p) for p in e["loc"]),
            "reason": e["msg"],
            "value": repr(e.get("input"))[:200],
        }
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e['location']}: {e['reason']}" for e in errors)
    return for_client(
        request,
        problem(
            422,
            "Invalid request",
            detail,
            "invalid-request",
            instance=request.url.path,
            errors=errors,
        ),
    )


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    return for_client(
        request,
        problem(exc.status_code, str(exc.detail), str(exc.detail), code, instance=request.url.path),
    )


async def _database(request: Request, exc: Exception) -> Response:
    """The database is down or restarting (connection refused, dropped or timed out): 503,
    to be retried; any other database error is a bug and answers 500."""
    assert isinstance(exc, sqlalchemy.exc.DBAPIError | sqlalchemy.exc.TimeoutError)
    lost = isinstance(exc, sqlalchemy.exc.TimeoutError) or (
        isinstance(exc, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
        or exc.connection_invalidated
    )
    if not lost:
        return await _unexpected(request, exc)
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return await _domain(STATUS[StoreUnavailableError])(
        request, StoreUnavailableError("The database cannot be reached; retry shortly.")
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(
        500,
        "Internal server error",
        "The server failed to answer; the error has been logged.",
        "internal-error",
        instance=request.url.path,
    )


def register(app: FastAPI) -> None:
    """Install the handlers on ``app``."""
    for exc_type, status in STATUS.items():
        app.add_exception_handler(exc_type, _domain(status))
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(sqlalchemy.exc.DBAPIError, _database)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database)
    app.add_exception_handler(Exception, _unexpected)
