"""Who is asking: a bearer token (API clients) or a signed session cookie (pages)."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.inbound_hooks import InboundHook, InboundHooks
from crm_core.models import User
from crm_core.users import UserDirectory
from hub.web.state import CONTEXT, HOOK, USER

SESSION_COOKIE = "hub_session"
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def sign_session(key: bytes, token: str) -> str:
    mac = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{token}.{mac}"


def unsign_session(key: bytes, value: str) -> str | None:
    """The session token if the cookie carries our signature, so forgeries never reach the DB."""
    token, _, mac = value.rpartition(".")
    if not token:
        return None
    expected = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()[:32]
    return token if hmac.compare_digest(mac, expected) else None


def same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin") or request.headers.get("Referer")
    if not origin:
        return True  # non-browser clients send neither; browsers send Origin on unsafe requests
    return urlsplit(origin).netloc == request.host


async def authenticate(request: web.Request, session: AsyncSession) -> User | None:
    """Resolve the user once per request and keep it on the request."""
    if USER in request:
        return request[USER]
    directory = UserDirectory(session)
    user: User | None = None
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        user = await directory.user_for_token(header[7:].strip())
        if user is None:
            raise web.HTTPUnauthorized(
                text='{"error": "bad_token", "message": "the bearer token is unknown or revoked"}',
                content_type="application/json",
            )
    elif SESSION_COOKIE in request.cookies:
        token = unsign_session(request.app[CONTEXT].signing_key, request.cookies[SESSION_COOKIE])
        user = await directory.user_for_session(token) if token else None
        if user is not None and request.method in _UNSAFE and not same_origin(request):
            raise web.HTTPForbidden(
                text='{"error": "cross_origin", "message": "cross-site request refused"}',
                content_type="application/json",
            )
    if user is not None:
        request[USER] = user
    return user


def _refused(status: type[web.HTTPException], code: str, message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": code, "message": message}), content_type="application/json")


async def authenticate_hook(request: web.Request, session: AsyncSession, kind: str) -> InboundHook:
    """The incoming webhook's token, from ``Authorization: Bearer`` or, for senders that can
    only be given a URL, the ``token`` query parameter; refused before anything is read."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.query.get("token", "")
    hook = await InboundHooks(session).for_token(token) if token else None
    if hook is None:
        raise _refused(web.HTTPUnauthorized, "bad_token", "the incoming webhook token is unknown or revoked")
    if not hook.allows(kind):
        raise _refused(web.HTTPForbidden, "forbidden", f"this token may not use the {kind} hook")
    request[HOOK] = hook
    return hook
