"""The OpenAPI 3.1 document, built from the endpoint registry.

Each operation carries ``x-roles`` (the roles allowed, or ``["public"]``); the role
enforcement test walks this document, so an endpoint cannot be added unchecked.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

import hub
from hub.web.endpoints import Endpoint

_STATUS_TEXT = {
    400: "Malformed request",
    401: "Not logged in, or a bad token",
    403: "The role may not do this",
    404: "Not found",
    409: "Conflicts with the stored data",
    413: "Too large",
    415: "Wrong content type",
    422: "Invalid input",
    429: "Too many attempts",
    502: "The peer (PBX, mail server, 1C) refused or failed",
    503: "Not ready",
}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}},
}


class _Schemas:
    """Collects model schemas into components, rewriting pydantic's local $defs references."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": _ERROR_SCHEMA}

    def inline(self, model: type[BaseModel]) -> dict[str, Any]:
        """The model's own schema, with the models it uses moved into components."""
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        self.components.update(schema.pop("$defs", {}))
        return schema

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        self.components[model.__name__] = self.inline(model)
        return {"$ref": f"#/components/schemas/{model.__name__}"}


def _parameters(endpoint: Endpoint, schemas: _Schemas) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}
        for name in re.findall(r"\{(\w+)", endpoint.path)
    ]
    if endpoint.query is not None:
        schema = schemas.inline(endpoint.query)
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append(
                {
                    "name": name,
                    "in": "query",
                    "required": name in required,
                    "description": prop.get("description", ""),
                    "schema": prop,
                }
            )
    return params


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "x-roles": [f"hook:{endpoint.hook}"]
        if endpoint.hook
        else sorted(r.value for r in endpoint.roles) or ["public"],
        "parameters": _parameters(endpoint, schemas),
    }
    if endpoint.hook:
        op["security"] = [{"hook_bearer": []}, {"hook_query": []}]
    elif not endpoint.is_public:
        op["security"] = [{"bearer": []}, {"session": []}]
    if endpoint.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {endpoint.body_media_type: {"schema": schemas.ref(endpoint.body)}},
        }
    elif endpoint.body_media_type != "application/json":
        op["requestBody"] = {"required": True, "content": {endpoint.body_media_type: {"schema": {"type": "string"}}}}
    ok: dict[str, Any] = {"description": "Success"}
    if endpoint.response is not None:
        ok["content"] = {endpoint.response_media_type: {"schema": schemas.ref(endpoint.response)}}
    elif endpoint.response_status != 204:
        ok["content"] = {endpoint.response_media_type: {"schema": {"type": "string"}}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    responses: dict[str, Any] = {str(endpoint.response_status): ok}
    codes = set(endpoint.errors)
    if endpoint.query is not None or endpoint.body is not None:
        codes.add(422)
    if not endpoint.is_public:
        codes |= {401, 403}
    for code in sorted(codes):
        responses[str(code)] = {"description": _STATUS_TEXT[code], "content": error}
    op["responses"] = responses
    return op


def build_document(endpoints: list[Endpoint]) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.openapi_path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hub",
            "version": hub.__version__,
            "description": "CTI and e-mail middleware: clients, calls, mail, mailings and 1C sync.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "hub token create --user NAME"},
                "session": {"type": "apiKey", "in": "cookie", "name": "hub_session"},
                "hook_bearer": {"type": "http", "scheme": "bearer", "description": "An incoming webhook's token"},
                "hook_query": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }
