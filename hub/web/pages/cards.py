"""The client card and the client search: every role reads cards; operators and accountants edit them."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages.core import Texts

routes = web.RouteTableDef()

TEXTS: Texts = {"ru": {}, "en": {}}
