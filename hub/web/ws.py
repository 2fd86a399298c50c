"""/ws: the operator's browser holds this socket, and the hub pushes screen-pops down it."""

from __future__ import annotations

import logging

from aiohttp import WSMsgType, web

from crm_core.models import Role
from hub.web.auth import authenticate
from hub.web.state import CONTEXT, POPS

log = logging.getLogger("hub.web.ws")
HEARTBEAT_SECONDS = 20


async def operator_socket(request: web.Request) -> web.StreamResponse:
    """Operators and admins with an extension; the pops of that extension arrive here."""
    async with request.app[CONTEXT].transaction() as session:
        user = await authenticate(request, session)
    if user is None:
        raise web.HTTPUnauthorized(text="log in first")
    if user.role not in (Role.operator, Role.admin):
        raise web.HTTPForbidden(text=f"the {user.role.value} role gets no screen-pops")
    if not user.extension:
        raise web.HTTPConflict(text="you have no extension: ask the admin to set one")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    await ws.prepare(request)
    pops = request.app[POPS]
    extension = user.extension
    await ws.send_json({"type": "hello", "extension": extension, "user": user.username})
    for message in pops.attach(extension, ws):
        await ws.send_json(message)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT and msg.data == "ping":
                await ws.send_str("pong")
    finally:
        pops.detach(extension, ws)
    return ws
