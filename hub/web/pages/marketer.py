"""The marketer's pages: campaigns, their editor and statistics, segments, the suppression list."""

from __future__ import annotations

from aiohttp import web

from hub.web.pages.core import Texts

routes = web.RouteTableDef()

TEXTS: Texts = {"ru": {}, "en": {}}
