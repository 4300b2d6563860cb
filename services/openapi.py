"""The OpenAPI document as OpenAPI 3.0, which the OGC API conformance class oas30 names.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12). The few 3.1 constructs it uses are
rewritten in their 3.0 form: a ``null`` alternative becomes ``nullable``, list ``examples``
inside schemas become one ``example``, ``const`` becomes a one-value ``enum`` and numeric
exclusive bounds become boolean ones, and a file part (``contentMediaType``) becomes a
binary string.

Every error answer is documented as what it is, an RFC 9457 problem
(``application/problem+json``, schema ``Problem``; the planners' pages answer browsers
with an HTML page instead): FastAPI's own 422 is rewritten, every operation taking a
credential documents 401, 429 and 503, and each router names its own further statuses.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.errors import PAGE_PREFIXES
from services.schemas import PROBLEM, PROBLEM_REASONS, Problem

OPENAPI_VERSION = "3.0.3"


def install(app: FastAPI) -> None:
    """Serve the 3.0 document at ``/openapi.json`` (made once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                license_info=app.license_info,
            )
            app.openapi_schema = as_openapi_30(document_problems(document))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


CREDENTIAL_STATUSES = (401, 429, 503)  # bad key, rate limit, database down
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def document_problems(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with every error response as a problem (HTML too on the pages)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, operations in document.get("paths", {}).items():
        page = path == "/" or path.startswith(PAGE_PREFIXES)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                for status in CREDENTIAL_STATUSES:
                    responses.setdefault(str(status), {"description": PROBLEM_REASONS[status]})
            for status, response in responses.items():
                if status[0] in "45":
                    content = {PROBLEM: {"schema": PROBLEM_REF}}
                    if page:
                        content["text/html"] = {"schema": {"type": "string"}}
                    response["content"] = content
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused not in str(document.get("paths")):
            schemas.pop(unused, None)
    return document


def as_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """A 3.1 document rewritten as 3.0."""
    out = _rewrite(document)
    out["openapi"] = OPENAPI_VERSION
    licence = out.get("info", {}).get("license", {})
    if "identifier" in licence:  # 3.1 only: 3.0 names a licence by URL
        spdx = licence.pop("identifier")
        licence.setdefault("url", f"https://spdx.org/licenses/{spdx}.html")
    return out


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _rewrite(value) for key, value in node.items()}
    for step in (_nullable_alternatives, _nullable_types, _schema_keywords, _bounds):
        node = step(node)
    return node


def _nullable_alternatives(node: dict[str, Any]) -> dict[str, Any]:
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            node.pop(key)
            node["nullable"] = True
            if len(rest) == 1:
                node = {**rest[0], **node} if "$ref" not in rest[0] else {"allOf": rest, **node}
            elif rest:
                node[key] = rest
    return node


def _nullable_types(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        node["nullable"] = node.get("nullable", False) or len(types) < len(node["type"])
        node["type"] = types[0] if len(types) == 1 else node["type"]
    return node


def _schema_keywords(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("examples"), list) and "schema" not in node:
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    if "contentMediaType" in node:  # an uploaded file: 3.0 says binary string
        node.pop("contentMediaType")
        node["format"] = "binary"
    if "const" in node:
        node["enum"] = [node.pop("const")]
    return node


def _bounds(node: dict[str, Any]) -> dict[str, Any]:
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    return node
