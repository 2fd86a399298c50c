"""``hub run``: open the database, make sure someone can log in, serve until told to stop."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import signal

from aiohttp import web

from crm_core.models import Role
from crm_core.users import NewUser, UserDirectory
from hub.bounce_mailbox import BounceMailbox
from hub.call_relay import CallRelay
from hub.campaign_sender import CampaignSender
from hub.config import Settings
from hub.context import HubContext
from hub.leases import LeaseKeeper
from hub.mail import Mail
from hub.node_bus import NodeBus
from hub.onec import OnecSync
from hub.pop_relay import PopRelay
from hub.screen_pop import PopHub
from hub.telephony import Telephony
from hub.web.app import make_app
from webhooks.dispatcher import Dispatcher

log = logging.getLogger("hub")
ADMIN_PASSWORD_FILE = "initial-admin-password"


async def ensure_admin(context: HubContext) -> str | None:
    """On an empty user table create ``admin`` with a random password; return that password.

    The password is also left (mode 600) in the data dir, since a console line is
    easy to miss; changing the password makes the file stale, and it says so.
    """
    async with context.transaction() as session:
        directory = UserDirectory(session)
        if await directory.count():
            return None
        password = secrets.token_urlsafe(12)
        await directory.create(NewUser(username="admin", role=Role.admin, password=password, full_name="Administrator"))
    path = context.settings.data_dir / ADMIN_PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{password}\n# initial password of user 'admin'; stale once changed\n")
    return password


def base_url(settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.http_host if settings.http_host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{settings.http_port}"


async def serve(settings: Settings) -> None:
    context = await HubContext.open(settings)
    runner: web.AppRunner | None = None
    telephony: Telephony | None = None
    mail: Mail | None = None
    campaigns: CampaignSender | None = None
    onec: OnecSync | None = None
    bus: NodeBus | None = None
    leases: LeaseKeeper | None = None
    try:
        password = await ensure_admin(context)
        pops = PopHub()
        # On PostgreSQL nodes may share the database: pops and click-to-call reach every node.
        bus = NodeBus(context) if context.engine.dialect.name == "postgresql" else None
        leases = LeaseKeeper(context)
        onec = OnecSync(context) if settings.onec else None
        extras = onec.cached_documents if onec is not None else None
        if settings.pbx:
            telephony = Telephony(context, PopRelay(bus, pops) if bus else pops, card_extras=extras)
            if bus is not None:
                CallRelay(bus, context, telephony)
        if bus is not None:
            await bus.start()
        mail = Mail(context) if settings.mailbox else None
        if settings.campaigns.smtp is not None or any(m.smtp for m in settings.mailbox):
            campaigns = CampaignSender(context, base_url(settings))
        app = make_app(context, pops, telephony, mail, campaigns, onec, leases)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
        await runner.setup()
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        if telephony is not None:
            await telephony.start(follow_all=False)
            for name in telephony.pbx_names:
                leases.add(f"ami:{name}", functools.partial(telephony.follow, name),
                           functools.partial(telephony.unfollow, name))  # fmt: skip
        # Each job below is done by one node at a time: the one holding its lease (hub.leases).
        if mail is not None:
            leases.add("mailboxes", mail.start, mail.stop)
        if campaigns is not None:
            leases.add("campaigns", campaigns.start, campaigns.stop)
        if onec is not None:
            leases.add("onec", onec.start, onec.stop)
        if settings.campaigns.bounce_mailbox is not None:
            bounces = BounceMailbox(context, settings.campaigns.bounce_mailbox, settings.campaigns.soft_bounce_limit)
            leases.add("bounces", bounces.start, bounces.stop)
        webhooks = Dispatcher(
            context,
            allow_private=settings.webhooks.allow_private,
            timeout=settings.webhooks.timeout_seconds,
            concurrency=settings.webhooks.concurrency,
        )
        leases.add("webhooks", webhooks.start, webhooks.stop)
        await leases.start()
        url = base_url(settings)
        log.info("hub is listening", extra={"fields": {"url": url, "database": context.engine.url.render_as_string()}})
        print(f"The hub is running at {url}/", flush=True)
        if password:
            print(
                f"Log in as 'admin' with password {password}\n"
                f"(also saved in {settings.data_dir / ADMIN_PASSWORD_FILE}; change it after the first login)",
                flush=True,
            )
        else:
            print("Log in with your user name and password; new users: hub user create NAME --role ROLE", flush=True)
        await _wait_for_stop()
        log.info("stopping")
    finally:
        if leases is not None:  # stops the jobs this node holds, and gives their leases back
            await leases.stop()
        if bus is not None:
            await bus.stop()
        if onec is not None:
            await onec.close()
        if mail is not None:
            await mail.close()
        if telephony is not None:
            await telephony.stop()
        if runner is not None:
            await runner.cleanup()
        await context.close()


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
