"""Card summaries for screen-pops: many cards in three statements, each with its own last calls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.card_summaries import RECENT_CALLS, RECENT_EMAILS, card_summaries
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import Address, ParsedMail
from crm_core.mail.mail_log import MailLog, MailRules
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from crm_core.timeline import client_timeline
from crm_core.users import NewUser, UserDirectory
from tests.test_call_log import T0, _record


async def test_each_card_gets_its_tags_owner_and_own_last_calls(session: AsyncSession) -> None:
    owner = await UserDirectory(session).create(NewUser("anna", Role.operator, full_name="Анна Петрова"))
    book = ClientBook(session)
    busy = await book.create(
        ClientIn(name="Ромашка", full_name="ООО «Ромашка»", inn="7707083893", tags=["vip", "b2b"], owner_id=owner.id),
        SYSTEM,
    )
    quiet = await book.create(ClientIn(name="Лютик"), SYSTEM)
    gone = await book.create(ClientIn(name="Удалённый"), SYSTEM)
    await book.delete(gone.id, SYSTEM)
    log = CallLog(session)
    await log.record_many(
        [(_record(f"8.{i}", started_at=T0 + timedelta(minutes=i)), (busy.id, None)) for i in range(RECENT_CALLS + 2)]
    )
    await log.record(_record("9.0", caller="+79160000000"), (quiet.id, None))

    cards = await card_summaries(session, [busy.id, quiet.id, gone.id, 999_999])

    assert set(cards) == {busy.id, quiet.id}
    card = cards[busy.id]
    assert (card.name, card.full_name, card.inn) == ("Ромашка", "ООО «Ромашка»", "7707083893")
    assert card.owner == "Анна Петрова"
    assert card.tags == ["b2b", "vip"]
    newest_first = [f"8.{i}" for i in range(RECENT_CALLS + 1, 1, -1)]
    assert [c.started_at for c in card.recent_calls] == [T0 + timedelta(minutes=int(x[2:])) for x in newest_first]
    assert len(cards[quiet.id].recent_calls) == 1 and cards[quiet.id].tags == []
    assert await card_summaries(session, []) == {}


async def test_cards_carry_their_last_emails_newest_first(session: AsyncSession) -> None:
    client = await ClientBook(session).create(
        ClientIn(name="Ромашка", emails=[{"address": "ivan@romashka.example"}]), SYSTEM
    )
    log = MailLog(session, MailRules())
    for day in range(RECENT_EMAILS + 1):
        mail = ParsedMail(
            message_id=f"m{day}@romashka.example",
            in_reply_to=None,
            references=(),
            subject=f"Письмо {day}",
            sender=Address("ivan@romashka.example"),
            to=(),
            cc=(),
            sent_at=None,
            text="",
            html=None,
        )
        at = T0 + timedelta(days=day)
        await log.file(mail, raw_sha256="a" * 64, raw_size=1, attachment_digests=[], location=None, received_at=at)
    card = (await card_summaries(session, [client.id]))[client.id]
    assert [m.subject for m in card.recent_emails] == [f"Письмо {d}" for d in range(RECENT_EMAILS, 0, -1)]
    timeline = await client_timeline(session, client.id)
    assert [i.data["subject"] for i in timeline if i.kind == "email"][:2] == ["Письмо 5", "Письмо 4"]
