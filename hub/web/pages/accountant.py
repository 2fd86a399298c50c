"""The accountant's pages: 1C connections, sync status and history, conflicts, one counterparty's sync."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages.core import Texts

routes = web.RouteTableDef()

TEXTS: Texts = {"ru": {}, "en": {}}
