"""`hub doctor` against real peers: a good and a misconfigured item of each kind get the right
verdict, and the exit status says whether all were good."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crm_core.subscriptions import Subscriptions
from hub.cli import _doctor
from hub.config import Settings
from hub.doctor import examine
from tests.conftest import open_context
from tests.dovecot import Dovecot, MailUser
from tests.fake_ami import FakeAmi
from tests.fake_onec import FakeOnec
from tests.hook_receiver import HookReceiver
from tests.hub_process import free_port
from tests.onec_world import onec_settings
from tests.smtp_server import SmtpTestServer


def _pbx(name: str, fake: FakeAmi, secret: str) -> dict[str, Any]:
    return {"name": name, "host": fake.host, "port": fake.port, "username": "hub", "secret": secret}


async def test_each_item_gets_its_verdict(
    database_url: str,
    tmp_path: Path,
    dovecot: Dovecot,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    fake: FakeOnec,
    capsys: Any,
) -> None:
    receiver = await HookReceiver.start()
    dead = free_port()
    smtp_server.require_auth(dovecot_user.name, dovecot_user.password)  # the mailbox's own login, as by default
    context = await open_context(database_url, tmp_path / "data")
    try:
        async with context.transaction() as session:
            await Subscriptions(session).create(receiver.url, [])
            await Subscriptions(session).create(f"http://127.0.0.1:{dead}/nobody-listens", [])
        mailbox = {"name": "sales", "host": dovecot.host, "port": dovecot.port, "security": "none",
                   "username": dovecot_user.name, "password": dovecot_user.password,
                   "smtp": {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}}  # fmt: skip
        async with FakeAmi() as pbx:
            settings = Settings(
                database_url=database_url,
                data_dir=tmp_path / "data",
                pbx=[_pbx("office", pbx, "hubsecret"), _pbx("branch", pbx, "wrong")],
                mailbox=[mailbox, {**mailbox, "name": "support", "password": "wrong", "smtp": None}],
                onec=[onec_settings(fake)],
            )
            verdicts = {v.item: v for v in await examine(settings)}
            assert await _doctor(settings) == 1  # some items are wrong
    finally:
        await context.close()
        await receiver.close()
    good = {"database", "pbx office", "imap sales", "smtp sales", "1c acc",
            f"webhook {receiver.url}"}  # fmt: skip
    bad = {"pbx branch", "imap support", f"webhook http://127.0.0.1:{dead}/nobody-listens"}
    assert {item for item, v in verdicts.items() if v.ok} == good, [v.line() for v in verdicts.values()]
    assert {item for item, v in verdicts.items() if not v.ok} == bad
    assert "schema current" in verdicts["database"].detail
    assert "logged in as hub" in verdicts["pbx office"].detail
    assert "Login" in verdicts["pbx branch"].detail or "rejected" in verdicts["pbx branch"].detail.lower()
    printed = capsys.readouterr().out
    assert "FAIL  pbx branch" in printed and f"{len(good)} of {len(good) + len(bad)} ok; 3 FAILED" in printed
