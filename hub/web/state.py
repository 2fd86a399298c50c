"""Typed keys for what the aiohttp application and each request carry."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import User
from hub.context import HubContext
from hub.web.ratelimit import LoginLimiter

CONTEXT = web.AppKey("context", HubContext)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)

# Per request: the unit of work the handler runs in, and who is asking (None: nobody).
SESSION = web.RequestKey("session", AsyncSession)
USER = web.RequestKey("user", User)
