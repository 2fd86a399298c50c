"""The tracking endpoints recipients' mail programs call: the open pixel ``/t/o/<token>``, the
click redirect ``/t/c/<token>`` and the unsubscribe page and one-click POST ``/u/<token>``.

Public, and careful about it: a token that fails its HMAC gets 404 before anything is looked
up or recorded; a redirect goes only to the URL stored for the link the token names (never to
anything taken from the request) and only to http(s); an unsubscribe happens only on POST
(RFC 8058: mail scanners follow GET links, and must not unsubscribe anyone), is never
bot-filtered, and is answered 200 without a redirect.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

from aiohttp import web

from crm_core.campaigns.tokens import Purpose, read_token
from crm_core.campaigns.tracking import PendingHit, Tracking, UnsubscribeMethod, Visit
from crm_core.models import utcnow
from hub.hit_log import HitLog
from hub.web.pages.core import render_public
from hub.web.state import CONTEXT

log = logging.getLogger("hub.tracking")
routes = web.RouteTableDef()
HITS = web.AppKey("tracking_hits", HitLog)
TRACKING_KEY = web.AppKey("tracking_key", bytes)
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")  # 1x1 transparent GIF
_NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private", "Pragma": "no-cache"}
_NOT_FOUND = "not found"


def _visit(request: web.Request) -> Visit:
    return Visit(
        at=utcnow(),
        method=request.method,
        user_agent=request.headers.get("User-Agent"),
        ip=request.remote,
        has_accept_language="Accept-Language" in request.headers,
    )


def _token(request: web.Request, purpose: Purpose) -> tuple[int, int | None]:
    found = read_token(request.app[TRACKING_KEY], purpose, request.match_info["token"])
    if found is None:
        raise web.HTTPNotFound(text=_NOT_FOUND)
    return found


@routes.route("GET", "/t/o/{token}")
async def open_pixel(request: web.Request) -> web.Response:
    recipient_id, _ = _token(request, Purpose.open)
    await request.app[HITS].admit(PendingHit("open", recipient_id, _visit(request)))
    return web.Response(body=PIXEL, content_type="image/gif", headers=_NO_STORE)


@routes.route("GET", "/t/c/{token}")
async def click(request: web.Request) -> web.Response:
    recipient_id, number = _token(request, Purpose.click)
    assert number is not None  # a click token always names its link
    async with request.app[CONTEXT].reading() as session:
        found = await Tracking(session).destination(recipient_id, number)
    if found is None:
        raise web.HTTPNotFound(text=_NOT_FOUND)
    url, tracked = found
    if urlsplit(url).scheme.lower() not in ("http", "https"):  # a link template rendered into something else
        log.warning("a click link rendered to a non-web URL; not followed", extra={"fields": {"url": url[:200]}})
        raise web.HTTPNotFound(text=_NOT_FOUND)
    if tracked:
        await request.app[HITS].admit(PendingHit("click", recipient_id, _visit(request), number, url))
    raise web.HTTPFound(url, headers=_NO_STORE)


@routes.route("GET", "/u/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    _token(request, Purpose.unsubscribe)
    return _page(request, done=False)


@routes.route("POST", "/u/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    """The page's button, or a mail program's RFC 8058 POST (body ``List-Unsubscribe=One-Click``)."""
    recipient_id, _ = _token(request, Purpose.unsubscribe)
    body = await request.post() if request.can_read_body else {}
    how: UnsubscribeMethod = "one_click" if body.get("List-Unsubscribe") == "One-Click" else "page"
    async with request.app[CONTEXT].transaction() as session:
        await Tracking(session).unsubscribed(recipient_id, _visit(request), how=how)
    return _page(request, done=True)


def _page(request: web.Request, *, done: bool) -> web.Response:
    response = render_public(request, "unsubscribe.html", done=done)
    response.headers.update(_NO_STORE)
    return response
