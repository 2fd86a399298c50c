"""The OpenAPI document is valid OpenAPI 3.1 and is what the server serves."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from hub.web.app import all_endpoints
from hub.web.openapi import build_document


def test_document_is_valid_openapi_3_1() -> None:
    validate(build_document(all_endpoints()))


async def test_served_document_describes_every_client_operation(http: TestClient) -> None:
    resp = await http.get("/api/openapi.json")
    assert resp.status == 200
    document = await resp.json()
    assert document["openapi"] == "3.1.0"
    operations = {(m.upper(), p) for p, ms in document["paths"].items() for m in ms}
    assert {
        ("GET", "/api/clients"),
        ("POST", "/api/clients"),
        ("GET", "/api/clients/{id}"),
        ("PATCH", "/api/clients/{id}"),
        ("DELETE", "/api/clients/{id}"),
        ("GET", "/api/clients/{id}/timeline"),
        ("POST", "/api/clients/import"),
        ("GET", "/api/clients/export"),
        ("GET", "/api/users"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/api/openapi.json"),
    } <= operations
    create = document["paths"]["/api/clients"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ClientIn"}
    assert "ClientIn" in document["components"]["schemas"]
