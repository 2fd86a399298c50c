"""Health, readiness and the OpenAPI document: what load balancers and integrators ask."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from crm_core import migrate
from hub.web.endpoints import PUBLIC, Api, json_response
from hub.web.schemas import Health
from hub.web.state import CONTEXT

api = Api()
OPENAPI = web.AppKey("openapi", dict)


@api.route("GET", "/healthz", summary="Liveness: the process answers", roles=PUBLIC, tag="system", response=Health)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "checks": {}})


@api.route(
    "GET",
    "/readyz",
    summary="Readiness: the database answers and its schema is current",
    roles=PUBLIC,
    tag="system",
    response=Health,
    errors=(503,),
)
async def readyz(request: web.Request) -> web.Response:
    engine = request.app[CONTEXT].engine
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(5):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            checks["schema"] = "ok" if await migrate.is_up_to_date(engine) else "outdated: run hub db upgrade"
    except Exception as exc:  # any failure means "not ready", never a 500
        checks["database"] = f"unreachable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return json_response({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)


@api.route("GET", "/api/openapi.json", summary="This document", roles=PUBLIC, tag="system")
async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])
