"""/api/connections against real peers: the admin sees every PBX, mailbox, SMTP server, 1C
connection and webhook target without a secret, and one item's test gives the same verdict
``hub doctor`` would, in place; other roles are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from crm_core.models import Role
from crm_core.subscriptions import Subscriptions
from crm_core.users import NewUser, UserDirectory
from hub.context import HubContext
from tests.conftest import bearer, open_context, password_hash
from tests.dovecot import Dovecot, MailUser
from tests.fake_ami import FakeAmi
from tests.fake_onec import FakeOnec
from tests.hook_receiver import HookReceiver
from tests.hub_process import free_port
from tests.onec_world import onec_settings
from tests.smtp_server import SmtpTestServer

AMI_SECRET = "ami-Secret-7f3a"  # the right one; each secret below must never reach a page or an answer
WRONG_AMI_SECRET = "ami-Wrong-91c2"
CAMPAIGN_SMTP_PASSWORD = "relay-Pass-5d0e"


@dataclass
class WiredHub:
    """A hub wired to real peers: two PBXes (one with a wrong secret), a mailbox on Dovecot with
    its SMTP on aiosmtpd, the campaigns' SMTP, 1C, and a webhook receiver listening."""

    context: HubContext
    http: TestClient
    hook_url: str  # a receiver that answers
    dead_url: str  # nothing listens there
    tokens: dict[Role, str]
    secrets: tuple[str, ...]


@asynccontextmanager
async def wired_hub(
    database_url: str,
    data_dir: Path,
    dovecot: Dovecot,
    mail_user: MailUser,
    smtp_server: SmtpTestServer,
    fake: FakeOnec,
) -> AsyncIterator[WiredHub]:
    from hub.web.app import make_app

    receiver = await HookReceiver.start()
    smtp_server.require_auth(mail_user.name, mail_user.password)
    mailbox = {"name": "sales", "address": "sales@example.com", "host": dovecot.host, "port": dovecot.port,
               "security": "none", "username": mail_user.name, "password": mail_user.password,
               "smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}}  # fmt: skip
    try:
        async with FakeAmi(secret=AMI_SECRET) as pbx:
            context = await open_context(
                database_url,
                data_dir,
                pbx=[
                    {"name": "office", "host": pbx.host, "port": pbx.port, "username": "hub", "secret": AMI_SECRET},
                    {
                        "name": "branch",
                        "host": pbx.host,
                        "port": pbx.port,
                        "username": "hub",
                        "secret": WRONG_AMI_SECRET,
                    },
                ],  # fmt: skip
                mailbox=[mailbox],
                campaigns={
                    "smtp": {
                        "host": smtp_server.host,
                        "port": smtp_server.port,
                        "security": "none",
                        "username": mail_user.name,
                        "password": CAMPAIGN_SMTP_PASSWORD,
                    }
                },  # fmt: skip
                onec=[onec_settings(fake)],
                webhooks={"allow_private": True},  # the receiver listens on loopback
            )
            tokens = {}
            async with context.transaction() as session:
                directory = UserDirectory(session)
                for role in Role:
                    user = await directory.create(NewUser(username=role.value, role=role))
                    user.password_hash = password_hash()
                    tokens[role] = await directory.create_token(user)
            http = TestClient(TestServer(make_app(context)))
            await http.start_server()
            try:
                yield WiredHub(
                    context,
                    http,
                    receiver.url,
                    f"http://127.0.0.1:{free_port()}/nobody-listens",
                    tokens,
                    (AMI_SECRET, WRONG_AMI_SECRET, CAMPAIGN_SMTP_PASSWORD, mail_user.password, "секрет"),
                )
            finally:
                await http.close()
                await context.close()
    finally:
        await receiver.close()


@pytest.fixture
async def wired(
    database_url: str,
    tmp_path: Path,
    dovecot: Dovecot,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    fake: FakeOnec,
) -> AsyncIterator[WiredHub]:
    async with wired_hub(database_url, tmp_path / "data", dovecot, dovecot_user, smtp_server, fake) as hub:
        yield hub


async def _test(hub: WiredHub, kind: str, name: str) -> dict[str, Any]:
    resp = await hub.http.post(
        "/api/connections/test", json={"kind": kind, "name": name}, headers=bearer(hub.tokens[Role.admin])
    )
    assert resp.status == 200, await resp.text()
    verdict: dict[str, Any] = await resp.json()
    return verdict


async def test_the_admin_sees_every_item_without_its_secrets(wired: WiredHub) -> None:
    async with wired.context.transaction() as session:
        subscription = await Subscriptions(session).create(wired.hook_url, ["call.missed"])
    resp = await wired.http.get("/api/connections", headers=bearer(wired.tokens[Role.admin]))
    assert resp.status == 200
    text = await resp.text()
    for secret in wired.secrets:
        assert secret not in text
    assert subscription.secret not in text  # the signing secret is for the receiver, read on its own endpoint
    items = {(i["kind"], i["name"]): i for i in (await resp.json())["items"]}
    assert set(items) == {("pbx", "office"), ("pbx", "branch"), ("mailbox", "sales"), ("mailbox_smtp", "sales"),
                          ("campaign_smtp", "campaigns"), ("onec", "acc"),
                          ("webhook", str(subscription.id))}  # fmt: skip
    assert items[("pbx", "office")]["settings"]["username"] == "hub"
    assert items[("pbx", "branch")]["section"] == '[[pbx]] name = "branch"'
    assert items[("pbx", "branch")]["env"] == "HUB_PBX__1__"
    assert set(items[("mailbox_smtp", "sales")]["settings"]) == {"host", "port", "security", "username"}
    assert items[("webhook", str(subscription.id))]["settings"]["event_types"] == ["call.missed"]
    assert items[("onec", "acc")]["settings"]["url"].startswith("http://127.0.0.1")


async def test_each_test_gives_the_doctors_verdict_in_plain_words(wired: WiredHub) -> None:
    async with wired.context.transaction() as session:
        # A URL longer than the audit log's entity id: the entry names the subscription, not its URL.
        long_url = wired.hook_url + "?source=" + "x" * 80
        good = await Subscriptions(session).create(long_url, [])
        dead = await Subscriptions(session).create(wired.dead_url, [])
    verdicts = {
        (kind, name): await _test(wired, kind, name)
        for kind, name in [
            ("pbx", "office"),
            ("pbx", "branch"),
            ("mailbox", "sales"),
            ("mailbox_smtp", "sales"),
            ("campaign_smtp", "campaigns"),
            ("onec", "acc"),
            ("webhook", str(good.id)),
            ("webhook", str(dead.id)),
        ]  # fmt: skip
    }
    failed = {key for key, v in verdicts.items() if not v["ok"]}
    # The campaigns' relay is given a password aiosmtpd refuses: a wrong login, like the PBX's.
    assert failed == {("pbx", "branch"), ("campaign_smtp", "campaigns"), ("webhook", str(dead.id))}, [
        verdicts[key]["detail"] for key in failed
    ]
    assert "logged in as hub" in verdicts[("pbx", "office")]["detail"]
    assert verdicts[("pbx", "branch")]["reason"] == "login_rejected"
    assert verdicts[("campaign_smtp", "campaigns")]["reason"] == "login_rejected"
    assert verdicts[("webhook", str(dead.id))]["reason"] == "refused"
    assert verdicts[("webhook", str(good.id))]["detail"].startswith("answers HTTP 204")
    assert "metadata served" in verdicts[("onec", "acc")]["detail"]
    for verdict in verdicts.values():
        assert not any(secret in verdict["detail"] for secret in wired.secrets)

    resp = await wired.http.get("/api/audit?entity=connection", headers=bearer(wired.tokens[Role.admin]))
    entries = (await resp.json())["items"]
    assert {(e["username"], e["entity_id"], e["details"]["ok"]) for e in entries} >= {
        ("admin", "pbx:office", True),
        ("admin", "pbx:branch", False),
        ("admin", f"webhook:{good.id}", True),
    }


async def test_an_unknown_item_is_not_found(wired: WiredHub) -> None:
    admin = bearer(wired.tokens[Role.admin])
    for body in ({"kind": "pbx", "name": "nowhere"}, {"kind": "webhook", "name": "999"},
                 {"kind": "webhook", "name": "http://example.com/"}):  # fmt: skip
        resp = await wired.http.post("/api/connections/test", json=body, headers=admin)
        assert resp.status == 404, body
    resp = await wired.http.post("/api/connections/test", json={"kind": "telnet", "name": "x"}, headers=admin)
    assert resp.status == 422


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_only_the_admin_may_list_or_test_connections(wired: WiredHub) -> None:
    body = {"kind": "pbx", "name": "office"}
    assert (await wired.http.get("/api/connections")).status == 401
    assert (await wired.http.post("/api/connections/test", json=body)).status == 401
    for role in (Role.operator, Role.marketer, Role.accountant):
        headers = bearer(wired.tokens[role])
        assert (await wired.http.get("/api/connections", headers=headers)).status == 403
        assert (await wired.http.post("/api/connections/test", json=body, headers=headers)).status == 403
    resp = await wired.http.get("/api/audit?entity=connection", headers=bearer(wired.tokens[Role.admin]))
    assert (await resp.json())["total"] == 0  # nothing was tested
