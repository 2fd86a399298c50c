"""The admin's pages: users and roles, the connections with a test button each, the audit log."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages.core import Texts

routes = web.RouteTableDef()

TEXTS: Texts = {"ru": {}, "en": {}}
