"""Logging in and out: the session cookie that pages use, with failed attempts limited."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from crm_core import audit
from crm_core.audit import Actor
from crm_core.errors import AuthenticationFailed
from crm_core.models import User
from crm_core.users import UserDirectory
from hub.web.auth import SESSION_COOKIE, sign_session, unsign_session
from hub.web.endpoints import ALL_ROLES, PUBLIC, Api, ApiError, json_response, session_of
from hub.web.metrics import METRICS
from hub.web.schemas import LoginIn, UserOut
from hub.web.state import CONTEXT, LOGIN_LIMITER, USER
from hub.web.users import user_to_dict

api = Api()


async def log_in(request: web.Request, username: str, password: str) -> tuple[User, str]:
    """Check the password under the rate limit; return the user and the cookie value.

    A wrong password raises AuthenticationFailed after adding a "login_failed" audit
    entry to the request's transaction.
    """
    limiter = request.app[LOGIN_LIMITER]
    keys = (f"ip:{request.remote}", f"user:{username.casefold()}")
    wait = limiter.retry_after(*keys)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_attempts",
            "too many failed logins; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    session = session_of(request)
    try:
        user = await UserDirectory(session).authenticate(username, password)
    except AuthenticationFailed:
        limiter.failed(*keys)
        request.app[METRICS].login_failures.inc()
        # Callers answer 401 without raising, so this entry commits with their transaction.
        audit.record(session, Actor(None, username[:64], request.remote), "login_failed", "user")
        raise
    limiter.succeeded(*keys)
    context = request.app[CONTEXT]
    token = await UserDirectory(session).start_session(
        user, request.remote, timedelta(hours=context.settings.session_hours)
    )
    audit.record(session, Actor(user.id, user.username, request.remote), "login", "user", user.id)
    request[USER] = user
    return user, sign_session(context.signing_key, token)


def set_session_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    settings = request.app[CONTEXT].settings
    response.set_cookie(
        SESSION_COOKIE,
        value,
        httponly=True,
        samesite="Strict",
        path="/",
        secure=request.secure or settings.public_url.startswith("https://"),
        max_age=settings.session_hours * 3600,
    )


async def log_out(request: web.Request, response: web.StreamResponse) -> None:
    value = request.cookies.get(SESSION_COOKIE)
    token = unsign_session(request.app[CONTEXT].signing_key, value) if value else None
    if token:
        await UserDirectory(session_of(request)).end_session(token)
    response.del_cookie(SESSION_COOKIE, path="/")


@api.route(
    "POST",
    "/api/auth/login",
    summary="Log in; sets the session cookie pages use",
    roles=PUBLIC,
    tag="auth",
    body=LoginIn,
    response=UserOut,
    errors=(401, 429),
)
async def login(request: web.Request, body: LoginIn) -> web.Response:
    try:
        user, cookie = await log_in(request, body.username, body.password)
    except AuthenticationFailed as exc:
        return json_response({"error": "unauthenticated", "message": str(exc)}, status=401)
    response = json_response(user_to_dict(user))
    set_session_cookie(request, response, cookie)
    return response


@api.route(
    "POST", "/api/auth/logout", summary="End this browser session", roles=ALL_ROLES, tag="auth", response_status=204
)
async def logout(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    await log_out(request, response)
    return response
