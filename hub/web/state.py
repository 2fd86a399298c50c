"""Typed keys for what the aiohttp application and each request carry."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.models import User
from hub.context import HubContext
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.ratelimit import LoginLimiter

CONTEXT = web.AppKey("context", HubContext)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
POPS = web.AppKey("pops", PopHub)
TELEPHONY = web.AppKey("telephony", Telephony)  # absent when no PBX is configured

# Per request: the unit of work the handler runs in, and who is asking (None: nobody).
SESSION = web.RequestKey("session", AsyncSession)
USER = web.RequestKey("user", User)
