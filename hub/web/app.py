"""Assembling the aiohttp application from the context and the endpoint modules."""

from __future__ import annotations

from aiohttp import web

from hub.context import HubContext
from hub.web import audit_log, clients, login, metrics, pages, system, users
from hub.web.endpoints import Endpoint
from hub.web.errors import error_middleware
from hub.web.openapi import build_document
from hub.web.ratelimit import LoginLimiter
from hub.web.state import CONTEXT, LOGIN_LIMITER

MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # CSV imports of a few hundred thousand rows
API_MODULES = (system, metrics, login, users, clients, audit_log)


def all_endpoints() -> list[Endpoint]:
    return [endpoint for module in API_MODULES for endpoint in module.api.endpoints]


def make_app(context: HubContext) -> web.Application:
    app = web.Application(
        middlewares=[metrics.metrics_middleware, error_middleware],
        client_max_size=MAX_UPLOAD_BYTES,
    )
    app[CONTEXT] = context
    limits = context.settings.login_limits
    app[LOGIN_LIMITER] = LoginLimiter(limits.attempts, limits.window_seconds)
    app[metrics.METRICS] = metrics.HttpMetrics()
    app[system.OPENAPI] = build_document(all_endpoints())
    for module in API_MODULES:
        module.api.mount(app)
    app.router.add_routes(pages.routes)
    return app
