"""Segments: the rules over the card choose addresses, each once, never a suppressed one."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.campaigns.models import Campaign, Recipient, Suppression, SuppressionReason, TrackingHit
from crm_core.campaigns.segments import SegmentRules, candidates, count
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.mail.events import Address, Location, ParsedMail
from crm_core.mail.mail_log import MailLog, MailRules
from crm_core.telephony.call_log import CallLog
from crm_core.telephony.events import CallKey, CallRecord

NOW = datetime.now(UTC)


async def _client(session: AsyncSession, name: str, **card: Any) -> int:
    client = await ClientBook(session).create(ClientIn.model_validate({"name": name, **card}), SYSTEM)
    return client.id


async def _base(session: AsyncSession) -> dict[str, int]:
    ids = {
        "romashka": await _client(
            session, "Ромашка", status="active", tags=["vip", "опт"], inn="7707083893",
            addresses=[{"kind": "legal", "text": "г. Москва, ул. Тверская, 1"}], custom_fields={"region": "Центр"},
            emails=[{"address": "info@romashka.ru"}, {"address": "INFO@romashka.ru"}],
            contacts=[{"first_name": "Анна", "emails": [{"address": "anna@romashka.ru"}]}],
        ),
        "lyutik": await _client(
            session, "Лютик", status="lead", tags=["опт"], addresses=[{"kind": "postal", "text": "Тула, пр. Ленина"}],
            custom_fields={"region": "центр"}, emails=[{"address": "hello@lyutik.ru"}, {"address": "info@romashka.ru"}],
        ),
        "vasilek": await _client(session, "Василёк", status="inactive", emails=[{"address": "v@vasilek.ru"}]),
        "mute": await _client(session, "Без почты", status="active", phones=[{"number": "+74950000000"}]),
    }  # fmt: skip
    await session.flush()
    return ids


async def _addresses(session: AsyncSession, **rules: Any) -> list[str]:
    chosen, _ = await candidates(session, SegmentRules.model_validate(rules))
    return [c.address for c in chosen]


async def test_card_rules_choose_addresses_each_once(session: AsyncSession) -> None:
    await _base(session)
    assert await _addresses(session) == ["info@romashka.ru", "anna@romashka.ru", "hello@lyutik.ru", "v@vasilek.ru"]
    assert await _addresses(session, statuses=["active", "lead"], addresses="company") == [
        "info@romashka.ru",
        "hello@lyutik.ru",
    ]
    assert await _addresses(session, tags_any=["vip", "опт"], tags_none=["vip"]) == [
        "hello@lyutik.ru",
        "info@romashka.ru",
    ]
    assert await _addresses(session, tags_all=["vip", "опт"], addresses="company") == ["info@romashka.ru"]
    assert await _addresses(session, has_inn=True, addresses="company") == ["info@romashka.ru"]
    assert await _addresses(session, city="москва") == ["info@romashka.ru", "anna@romashka.ru"]
    assert await _addresses(session, custom={"region": "ЦЕНТР"}, addresses="company") == [
        "info@romashka.ru",
        "hello@lyutik.ru",
    ]
    assert await _addresses(session, custom={"region": "Юг"}) == []


async def test_suppressed_addresses_are_left_out_and_counted(session: AsyncSession) -> None:
    await _base(session)
    session.add(Suppression(address_key="info@romashka.ru", reason=SuppressionReason.hard_bounce, detail="5.1.1"))
    await session.flush()
    counted = await count(session, SegmentRules())
    assert (counted.clients, counted.addresses, counted.suppressed) == (3, 3, 1)
    assert "info@romashka.ru" not in await _addresses(session)


async def test_last_call_and_last_mail_dates_choose_cards(session: AsyncSession) -> None:
    ids = await _base(session)
    key = CallKey("office", uuid.uuid4().hex)
    await CallLog(session).record(
        CallRecord(key, "inbound", "+74951112233", None, None, None, "answered", None,
                   started_at=NOW - timedelta(days=3)),
        (ids["lyutik"], None),
    )  # fmt: skip
    mail = ParsedMail(
        message_id=f"{uuid.uuid4().hex}@x", in_reply_to=None, references=(), subject="Счёт",
        sender=Address("v@vasilek.ru"), to=(), cc=(), sent_at=NOW - timedelta(days=40), text="", html="",
        attachments=(),
    )  # fmt: skip
    await MailLog(session, MailRules()).file(mail, raw_sha256="0" * 64, raw_size=1, attachment_digests=[],
                                             location=Location("sales", "INBOX", 1, 1))  # fmt: skip
    week = NOW - timedelta(days=7)
    assert await _addresses(session, called_since=week) == ["hello@lyutik.ru", "info@romashka.ru"]
    assert await _addresses(session, not_called_since=week, addresses="company") == [
        "info@romashka.ru",
        "v@vasilek.ru",
    ]
    assert await _addresses(session, emailed_since=NOW - timedelta(days=60)) == ["v@vasilek.ru"]
    assert await _addresses(session, not_emailed_since=NOW - timedelta(days=60), addresses="company") == [
        "info@romashka.ru",
        "hello@lyutik.ru",
    ]


async def test_people_who_opened_or_clicked_an_earlier_campaign(session: AsyncSession) -> None:
    ids = await _base(session)
    earlier = Campaign(name="Ноябрь", from_address="news@example.com", subject="Привет")
    session.add(earlier)
    await session.flush()
    people = {}
    for name, address in (("romashka", "anna@romashka.ru"), ("lyutik", "hello@lyutik.ru"), ("vasilek", "v@vasilek.ru")):
        recipient = Recipient(campaign_id=earlier.id, client_id=ids[name], address=address, address_key=address)
        session.add(recipient)
        await session.flush()
        people[name] = recipient.id
    session.add_all(
        [
            TrackingHit(campaign_id=earlier.id, recipient_id=people["romashka"], kind="open", human=True),
            TrackingHit(campaign_id=earlier.id, recipient_id=people["lyutik"], kind="click", link_number=1, human=True),
            TrackingHit(campaign_id=earlier.id, recipient_id=people["vasilek"], kind="open", human=False,
                        reason="apple_mpp"),
        ]
    )  # fmt: skip
    await session.flush()
    assert await _addresses(session, opened_campaign_id=earlier.id, addresses="company") == [
        "info@romashka.ru",
        "hello@lyutik.ru",
    ]
    assert await _addresses(session, clicked_campaign_id=earlier.id, addresses="company") == [
        "hello@lyutik.ru",
        "info@romashka.ru",
    ]
