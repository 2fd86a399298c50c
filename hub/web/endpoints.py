"""The API's endpoint registry: each endpoint declares its roles, inputs and outputs once.

The same declaration drives the aiohttp route, the role check that runs before the
handler, the parsing of query and body, the unit of work around the handler, and the
OpenAPI document, so the document cannot drift from what the server enforces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import Actor
from crm_core.models import Role, User
from crm_core.paging import Page
from hub.web.auth import authenticate, authenticate_hook
from hub.web.state import CONTEXT, HOOK, SESSION, USER

ALL_ROLES = frozenset(Role)
PUBLIC: frozenset[Role] = frozenset()

Handler = Callable[..., Awaitable[web.StreamResponse]]


class ApiError(web.HTTPException):
    """An error with a JSON body: ``{"error": code, "message": ..., "details": ...}``."""

    def __init__(self, status: int, code: str, message: str, details: Any = None, headers: Any = None) -> None:
        self.status_code = status
        body = {"error": code, "message": message}
        if details is not None:
            body["details"] = details
        super().__init__(
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers=headers,
        )


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # aiohttp pattern, e.g. /api/clients/{id:\d+}
    handler: Handler
    summary: str
    roles: frozenset[Role]  # empty: public
    tag: str
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_media_type: str = "application/json"
    response: type[BaseModel] | None = None
    response_status: int = 200
    response_media_type: str = "application/json"
    errors: tuple[int, ...] = ()
    # The handler opens its own units of work: it waits on a peer (an SMTP server, say), and
    # must not hold a transaction (on SQLite: the write lock) meanwhile.
    own_transactions: bool = False
    # An incoming webhook: authenticated by a hook token allowed this kind, not by a user.
    hook: str | None = None

    @property
    def is_public(self) -> bool:
        return not self.roles and self.hook is None

    @property
    def openapi_path(self) -> str:
        return re.sub(r"\{(\w+):[^}]+\}", r"{\1}", self.path)


@dataclass
class Api:
    """Collects endpoints from the handler modules, then mounts them on an app."""

    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self, method: str, path: str, *, summary: str, roles: Iterable[Role], tag: str, **options: Any
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, summary, frozenset(roles), tag, **options))
            return handler

        return register

    def mount(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _bind(endpoint))


def _bind(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        context = request.app[CONTEXT]
        async with context.sessions() as session, session.begin():
            request[SESSION] = session
            if endpoint.hook is not None:
                await authenticate_hook(request, session, endpoint.hook)
            else:
                _check_role(endpoint, None if endpoint.is_public else await authenticate(request, session))
            kwargs: dict[str, Any] = {}
            if endpoint.query is not None:
                kwargs["query"] = endpoint.query.model_validate(dict(request.query))
            if endpoint.body is not None:
                kwargs["body"] = endpoint.body.model_validate(await _json_body(request))
            if not endpoint.own_transactions:
                return await endpoint.handler(request, **kwargs)
        del request[SESSION]
        return await endpoint.handler(request, **kwargs)

    return handle


def _check_role(endpoint: Endpoint, user: User | None) -> None:
    if endpoint.is_public:
        return
    if user is None:
        raise ApiError(401, "unauthenticated", "log in or send a bearer token", headers={"WWW-Authenticate": "Bearer"})
    if user.role not in endpoint.roles:
        raise ApiError(403, "forbidden", f"the {user.role.value} role may not do this")


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None


def session_of(request: web.Request) -> AsyncSession:
    return request[SESSION]


def current_user(request: web.Request) -> User:
    return request[USER]


def actor_of(request: web.Request) -> Actor:
    user: User | None = request.get(USER)
    ip = request.remote
    if HOOK in request:
        return Actor(user_id=None, username=f"hook:{request[HOOK].name}", ip=ip)
    if user is None:
        return Actor(user_id=None, username="anonymous", ip=ip)
    return Actor(user_id=user.id, username=user.username, ip=ip)


def page_response(page: Page[Any], to_dict: Callable[[Any], dict[str, Any]]) -> web.Response:
    """A page of a list, as every list endpoint answers it."""
    return json_response(
        {
            "items": [to_dict(item) for item in page.items],
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
        }
    )


def json_response(data: Any, status: int = 200, headers: Any = None) -> web.Response:
    return web.json_response(data, status=status, headers=headers, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
