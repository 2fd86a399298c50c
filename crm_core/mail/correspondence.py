"""Reading the mail log, and the triage of mail no card claimed: link it, or make a card of its sender.

What the operators and the API see of correspondence; the filing itself is ``mail_log``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from crm_core import audit
from crm_core.audit import Actor
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook, MatchRules
from crm_core.errors import InvalidInput, NotFound
from crm_core.mail.models import MailAttachment, MailCopy, MailLink, MailMessage, MailQuarantine
from crm_core.models import Client, Contact
from crm_core.paging import Page, fetch_page

RECENT_MESSAGES = 5


@dataclass(frozen=True, slots=True)
class MessageQuery:
    client_id: int | None = None
    mailbox: str | None = None
    thread_id: int | None = None
    direction: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    unmatched: bool = False  # only mail waiting for triage
    page: int = 1
    per_page: int = 50


class Correspondence:
    def __init__(self, session: AsyncSession, rules: MatchRules | None = None) -> None:
        self.session = session
        self.rules = rules or MatchRules()

    async def search(self, query: MessageQuery) -> Page[MailMessage]:
        conditions: list[Any] = []
        if query.client_id is not None:
            conditions.append(
                exists().where(MailLink.message_id == MailMessage.id, MailLink.client_id == query.client_id)
            )
        if query.mailbox:
            conditions.append(exists().where(MailCopy.message_id == MailMessage.id, MailCopy.mailbox == query.mailbox))
        if query.thread_id is not None:
            conditions.append(MailMessage.thread_id == query.thread_id)
        if query.direction:
            conditions.append(MailMessage.direction == query.direction)
        if query.since is not None:
            conditions.append(MailMessage.received_at >= query.since)
        if query.until is not None:
            conditions.append(MailMessage.received_at < query.until)
        if query.unmatched:
            conditions.append(MailMessage.awaiting_triage.is_(True))
        return await fetch_page(
            self.session,
            MailMessage,
            and_(True, *conditions),
            (MailMessage.received_at.desc(), MailMessage.id.desc()),
            query.page,
            query.per_page,
            options=(selectinload(MailMessage.attachments), selectinload(MailMessage.links)),
        )

    async def get(self, message_id: int) -> MailMessage:
        message = await self.session.scalar(
            select(MailMessage)
            .where(MailMessage.id == message_id)
            .options(selectinload(MailMessage.attachments), selectinload(MailMessage.links))
        )
        if message is None:
            raise NotFound(f"message {message_id} not found")
        return message

    async def attachment(self, attachment_id: int) -> MailAttachment:
        found = await self.session.get(MailAttachment, attachment_id)
        if found is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return found

    async def inline_part(self, message_id: int, content_id: str) -> MailAttachment:
        found = await self.session.scalar(
            select(MailAttachment).where(
                MailAttachment.message_id == message_id, MailAttachment.content_id == content_id
            )
        )
        if found is None:
            raise NotFound(f"message {message_id} has no part {content_id!r}")
        return found

    async def recent_for_client(self, client_id: int, limit: int = RECENT_MESSAGES) -> list[MailMessage]:
        return (await self.search(MessageQuery(client_id=client_id, per_page=limit))).items

    async def quarantine(self, page: int = 1, per_page: int = 50) -> Page[MailQuarantine]:
        return await fetch_page(
            self.session, MailQuarantine, and_(True), (MailQuarantine.created_at.desc(),), page, per_page
        )

    async def quarantined(self, entry_id: int) -> MailQuarantine:
        found = await self.session.get(MailQuarantine, entry_id)
        if found is None:
            raise NotFound(f"quarantine entry {entry_id} not found")
        return found

    # -- triage ----------------------------------------------------------------------

    async def link(self, message_id: int, client_id: int, contact_id: int | None, actor: Actor) -> MailMessage:
        """File a message under a card by hand (it leaves the triage list)."""
        message = await self.get(message_id)
        client = await ClientBook(self.session, self.rules).get(client_id)
        if contact_id is not None:
            contact = await self.session.get(Contact, contact_id)
            if contact is None or contact.client_id != client.id:
                raise InvalidInput(f"contact {contact_id} is not on card {client_id}", field="contact_id")
        if not any(link.client_id == client_id and link.contact_id == contact_id for link in message.links):
            message.links.append(
                MailLink(client_id=client_id, contact_id=contact_id, address=None, linked_by=actor.user_id)
            )
        message.awaiting_triage = False
        audit.record(self.session, actor, "link", "message", message.id, changed=[f"client:{client_id}"])
        await self.session.flush()
        return message

    async def client_from_sender(self, message_id: int, name: str | None, actor: Actor) -> Client:
        """A new card from the sender's name and address, with the message filed under it."""
        message = await self.get(message_id)
        if not message.sender_address:
            raise InvalidInput("the message has no sender address to make a card of", field="message_id")
        card_name = (name or message.sender_name or message.sender_address).strip()
        client = await ClientBook(self.session, self.rules).create(
            ClientIn(name=card_name, emails=[{"address": message.sender_address}]), actor
        )
        await self.link(message.id, client.id, None, actor)
        return client


def message_to_dict(message: MailMessage, *, html: str | None) -> dict[str, Any]:
    """A message as the API shows it; ``html`` is the body already prepared for display."""

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": message.id,
        "message_id": message.message_id,
        "thread_id": message.thread_id,
        "direction": message.direction,
        "subject": message.subject,
        "from": {"address": message.sender_address, "name": message.sender_name},
        "recipients": message.recipients,
        "sent_at": iso(message.sent_at),
        "received_at": iso(message.received_at),
        "text": message.text_body,
        "html": html,
        "remote_images": message.remote_images,
        "in_reply_to": message.in_reply_to,
        "references": message.references,
        "attachments": [
            {
                "id": a.id,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "stored": a.sha256 is not None,
                "url": f"/api/attachments/{a.id}" if a.sha256 else None,
            }
            for a in message.attachments
            if not a.inline
        ],
        "clients": [{"client_id": link.client_id, "contact_id": link.contact_id} for link in message.links],
        "awaiting_triage": message.awaiting_triage,
        "defects": message.defects,
    }
