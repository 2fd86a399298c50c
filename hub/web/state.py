"""Typed keys for what the aiohttp application and each request carry."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.blobs import BlobStore
from crm_core.inbound_hooks import InboundHook
from crm_core.models import User
from hub.context import HubContext
from hub.mail import Mail
from hub.onec import OnecSync
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.ratelimit import LoginLimiter

CONTEXT = web.AppKey("context", HubContext)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
POPS = web.AppKey("pops", PopHub)
TELEPHONY = web.AppKey("telephony", Telephony)  # absent when no PBX is configured
MAIL = web.AppKey("mail", Mail)  # absent when no mailbox is configured
ONEC = web.AppKey("onec", OnecSync)  # absent when no [[onec]] is configured
BLOBS = web.AppKey("blobs", BlobStore)  # raw messages and attachments, by SHA-256

# Per request: the unit of work the handler runs in, and who is asking (None: nobody).
SESSION = web.RequestKey("session", AsyncSession)
USER = web.RequestKey("user", User)
HOOK = web.RequestKey("hook", InboundHook)  # an incoming webhook's caller, instead of a user
