"""Logging in and out, the start page of each role, and the user's choice of language."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from crm_core.errors import AuthenticationFailed
from hub.web.auth import authenticate, same_origin
from hub.web.endpoints import ApiError
from hub.web.login import log_in, log_out, set_session_cookie
from hub.web.pages.core import LANGUAGES, START, language, page_user, render, texts
from hub.web.state import CONTEXT, SESSION

routes = web.RouteTableDef()


def safe_next(target: str | None) -> str:
    """Only a path on this site: never an open redirect to another host.  Browsers drop tabs and
    newlines from a Location (``/\t/evil.com`` becomes ``//evil.com``), so any control character
    refuses the target, as do a scheme or a host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in target):
        return "/"
    parts = urlsplit(target)
    return "/" if parts.scheme or parts.netloc else target


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    return render(request, "login.html", None, next=safe_next(request.query.get("next")), error="", username="")


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise web.HTTPForbidden(text="cross-site login refused")
    form = await request.post()
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    target = safe_next(str(form.get("next", "")))
    async with request.app[CONTEXT].transaction() as session:
        request[SESSION] = session
        try:
            _user, cookie = await log_in(request, username, password)
        except AuthenticationFailed:
            error = texts(language(request, None))["bad_login"]
            return render(request, "login.html", None, status=401, next=target, error=error, username=username)
        except ApiError as exc:
            error = texts(language(request, None))["too_many"]
            return render(request, "login.html", None, status=exc.status, next=target, error=error, username=username)
    response = web.HTTPSeeOther(target)
    set_session_cookie(request, response, cookie)
    raise response


@routes.post("/logout")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    async with request.app[CONTEXT].transaction() as session:
        request[SESSION] = session
        await log_out(request, response)
    raise response


@routes.get("/")
async def home(request: web.Request) -> web.StreamResponse:
    """Each role starts where its daily work is."""
    user = await page_user(request)
    raise web.HTTPSeeOther(START[user.role])


@routes.post("/language")
async def choose_language(request: web.Request) -> web.StreamResponse:
    """The header's language switch: kept on the user, so every page and device follows it."""
    form = await request.post()
    lang = str(form.get("lang", ""))
    back = safe_next(str(form.get("back", "")))
    async with request.app[CONTEXT].transaction() as session:
        user = await authenticate(request, session)
        if user is None:
            raise web.HTTPSeeOther("/login")
        if lang in LANGUAGES:
            user.locale = lang
    raise web.HTTPSeeOther(back)
