"""Assembling the aiohttp application from the context and the endpoint modules."""

from __future__ import annotations

import os
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from crm_core.blobs import BlobStore
from crm_core.campaigns.machines import MachineRules, Networks
from crm_core.campaigns.tokens import tracking_key
from hub.campaign_sender import CampaignSender
from hub.config import CampaignSettings
from hub.context import HubContext
from hub.hit_log import HitLog
from hub.hit_recorder import HitRecorder, LocalRecorder, ProcessRecorder
from hub.leases import LeaseKeeper
from hub.mail import Mail
from hub.onec import OnecSync
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web import (
    audit_log,
    calls,
    campaigns_api,
    clients,
    connections_api,
    hooks_api,
    login,
    messages,
    metrics,
    onec_api,
    pages,
    recordings,
    system,
    tracking,
    users,
    webhooks_api,
    ws,
)
from hub.web.endpoints import Endpoint
from hub.web.errors import error_middleware
from hub.web.openapi import build_document
from hub.web.proxies import forwarded_middleware
from hub.web.ratelimit import LoginLimiter
from hub.web.state import BLOBS, CONTEXT, LOGIN_LIMITER, MAIL, ONEC, POPS, TELEPHONY

MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # CSV imports of a few hundred thousand rows
API_MODULES = (
    system,
    metrics,
    login,
    users,
    clients,
    calls,
    recordings,
    messages,
    campaigns_api,
    onec_api,
    webhooks_api,
    hooks_api,
    audit_log,
    connections_api,
)
STATIC = Path(__file__).parent / "static"


def all_endpoints() -> list[Endpoint]:
    return [endpoint for module in API_MODULES for endpoint in module.api.endpoints]


def make_app(
    context: HubContext,
    pops: PopHub | None = None,
    telephony: Telephony | None = None,
    mail: Mail | None = None,
    campaigns: CampaignSender | None = None,
    onec: OnecSync | None = None,
    leases: LeaseKeeper | None = None,
) -> web.Application:
    """The app; ``telephony`` is given when PBXes are configured (sharing ``pops`` with it),
    ``mail`` when mailboxes are, ``campaigns`` when an SMTP server can send mailings, ``onec``
    when 1C connections are."""
    middlewares: list[Middleware] = [metrics.metrics_middleware, error_middleware]
    if context.settings.trusted_proxies:
        middlewares.insert(0, forwarded_middleware(context.settings.trusted_proxies))
    app = web.Application(
        middlewares=middlewares,
        client_max_size=MAX_UPLOAD_BYTES,
    )
    app[CONTEXT] = context
    limits = context.settings.login_limits
    app[LOGIN_LIMITER] = LoginLimiter(limits.attempts, limits.window_seconds)
    app[metrics.METRICS] = metrics.HttpMetrics()
    app[system.OPENAPI] = build_document(all_endpoints())
    app[POPS] = pops if pops is not None else PopHub()
    app[BLOBS] = BlobStore(context.settings.data_dir / "blobs")
    if mail is not None:
        app[MAIL] = mail
    if campaigns is not None:
        app[campaigns_api.CAMPAIGNS] = campaigns
    if onec is not None:
        app[ONEC] = onec
    if telephony is not None:
        app[TELEPHONY] = telephony
        app[metrics.METRICS].registry.register(metrics.TelephonyCollector(telephony, app[POPS]))
    app.router.add_routes(tracking.routes)  # first: the router tries routes in order, and these are the busiest
    for module in API_MODULES:
        module.api.mount(app)
    app.router.add_routes(pages.routes)
    app[tracking.TRACKING_KEY] = tracking_key(context.signing_key)
    app[tracking.HITS] = HitLog(hit_recorder(context))
    app[metrics.METRICS].registry.register(metrics.TrackingCollector(app[tracking.HITS]))
    app[metrics.DATABASE_FIGURES] = metrics.DatabaseCollector(context)
    app[metrics.METRICS].registry.register(app[metrics.DATABASE_FIGURES])
    app[metrics.METRICS].registry.register(metrics.NodeCollector(leases, campaigns, mail))
    app.on_startup.append(_start_hit_log)
    app.on_cleanup.append(_stop_hit_log)
    app.router.add_get("/ws", ws.operator_socket)
    app.router.add_static("/static", STATIC)
    return app


def machine_rules(settings: CampaignSettings) -> MachineRules:
    """The rules with the configured network lists (Apple's egress ranges, known scanners)."""
    apple = Networks.from_file(settings.apple_networks_file) if settings.apple_networks_file else Networks()
    scanners = Networks.from_file(settings.scanner_networks_file) if settings.scanner_networks_file else Networks()
    return MachineRules(apple=apple, scanners=scanners)


def hit_recorder(context: HubContext) -> HitRecorder:
    """Where opens and clicks are stored: a recorder process (by default when the machine has a
    core to spare for it), else the hub's own process."""
    settings = context.settings.campaigns
    rules = machine_rules(settings)
    wanted = settings.hit_recorder_process
    if wanted if wanted is not None else (os.cpu_count() or 1) > 1:
        logs = (context.settings.log_level, context.settings.log_format)
        return ProcessRecorder(context.settings.effective_database_url, rules, logs, on_stored=context.published)
    return LocalRecorder(context, rules)


async def _start_hit_log(app: web.Application) -> None:
    app[tracking.HITS].start()


async def _stop_hit_log(app: web.Application) -> None:
    await app[tracking.HITS].stop()
