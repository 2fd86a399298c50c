"""Server-rendered pages, one module per kind of user; the JSON API does the work behind them."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages import accountant, admin, cards, marketer, operator, session

routes: list[web.RouteDef] = [
    route
    for module in (session, operator, cards, marketer, accountant, admin)
    for route in module.routes
    if isinstance(route, web.RouteDef)
]
