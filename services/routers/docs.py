"""The API documentation page: Swagger UI from AlpClusters' own static files (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request) -> HTMLResponse:
    """Every operation with its parameters, to read and to try."""
    static = f"{request.scope.get('root_path', '')}/static/swagger"
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="AlpClusters API",
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url=f"{static}/favicon-32x32.png",
    )
