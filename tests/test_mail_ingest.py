"""Filing fetched mail: a message the database refuses is quarantined, the rest of its batch is not held up."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.mail.checkpoints import Checkpoints
from crm_core.mail.events import FetchedMessage, Location
from crm_core.mail.mail_log import Filed, Incoming, MailLog
from crm_core.mail.models import MailMessage, MailQuarantine
from hub.context import HubContext
from hub.mail_ingest import MailIngest


def _fetched(uid: int, subject: str) -> FetchedMessage:
    mail = EmailMessage()
    mail["From"] = "ivan@client.example"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<m{uid}@client.example>"
    mail.set_content("текст")
    return FetchedMessage(Location("sales", "INBOX", 1, uid), mail.as_bytes())


async def test_a_message_the_database_refuses_is_quarantined_and_the_batch_goes_on(
    hub_context: HubContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = MailLog.file_many

    async def refusing(self: MailLog, batch: Sequence[Incoming]) -> list[Filed]:
        if any(item.mail.subject == "яд" for item in batch):
            raise ValueError("the database cannot store this")
        return await real(self, batch)

    monkeypatch.setattr(MailLog, "file_many", refusing)
    results = await MailIngest(hub_context).deliver(False, [_fetched(1, "ok"), _fetched(2, "яд"), _fetched(3, "ok")])
    assert [r is not None for r in results] == [True, False, True]
    async with hub_context.reading() as session:
        assert len((await session.scalars(select(MailMessage))).all()) == 2
        [entry] = (await session.scalars(select(MailQuarantine))).all()
        assert entry.uid == 2 and "could not be stored" in entry.error
        checkpoint = await Checkpoints(session).get("sales", "INBOX")
        assert checkpoint is not None and checkpoint.last_uid == 3


async def test_a_database_that_is_away_quarantines_nothing(hub_context: HubContext, monkeypatch: Any) -> None:
    @asynccontextmanager
    async def away() -> Any:
        raise ConnectionRefusedError("database down")
        yield

    monkeypatch.setattr(hub_context, "transaction", away)
    with pytest.raises(ConnectionRefusedError):
        await MailIngest(hub_context).deliver(False, [_fetched(1, "ok"), _fetched(2, "ok")])
    monkeypatch.undo()
    async with hub_context.reading() as session:
        assert (await session.scalars(select(MailQuarantine))).all() == []
