"""The OpenAPI document is valid OpenAPI 3.0, as the OGC API conformance class oas30 says.

Reference: openapi-spec-validator (the OpenAPI Initiative's JSON Schemas for 3.0).
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts, get_spec_version


def test_served_document_is_valid_openapi_30(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.0.3"
    assert get_spec_version(document) == consts.OPENAPIV30
    validate(document)  # raises on any violation
    conformance = client.get("/ogc/conformance").json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30" in conformance


def test_every_route_is_documented(client: TestClient) -> None:
    """Uploads, versions, OGC items and exports are all in the served document."""
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/datasets",
        "/datasets/{dataset_id}/versions",
        "/ogc/collections/{collectionId}/items",
        "/uploads/{upload_id}",
    ):
        assert path in paths, sorted(paths)
