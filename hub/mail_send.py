"""Sending mail from the card: compose, send over the mailbox's SMTP, log it, keep a copy in Sent.

The order matters for "nothing lost, nothing twice": the message is logged only once the
SMTP server accepted it (a refused message leaves no trace but the error); the copy in the
mailbox's Sent folder is stored by IMAP APPEND and recorded with its UID, so when the
folder's follower reads it later it recognises the copy instead of logging it again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from connectors.imap import ImapSession
from connectors.mail.compose import Outgoing, compose, reply_headers, reply_subject
from connectors.mail.mime import parse
from connectors.smtp import SmtpSender
from crm_core.audit import Actor
from crm_core.client_data import client_to_dict
from crm_core.clients import ClientBook
from crm_core.errors import InvalidInput
from crm_core.mail.correspondence import Correspondence
from crm_core.mail.events import Address, Attachment, Location
from crm_core.mail.mail_log import Filed, MailLog
from crm_core.models import Contact
from hub.config import MailboxSettings
from hub.mail_ingest import MailIngest
from hub.mailboxes import imap_settings, smtp_settings

log = logging.getLogger("hub.mail")
SENT = "\\Sent"


class MailboxNotReady(Exception):
    """No mailbox of that name, or it has no SMTP server configured."""


@dataclass(frozen=True, slots=True)
class Draft:
    """What the user asked to send (the API's body)."""

    mailbox: str | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    client_id: int | None = None  # write to this card's address (its contact's, with contact_id)
    contact_id: int | None = None
    subject: str | None = None
    text: str = ""
    html: str | None = None
    reply_to: int | None = None  # the id of a logged message this answers
    template: bool = False  # subject and bodies are Jinja2 templates over {{ client }} and {{ contact }}
    attachments: tuple[Attachment, ...] = ()


@dataclass
class Sent:
    id: int
    message_id: str
    refused: dict[str, str] = field(default_factory=dict)  # recipients the server refused, with the reason
    saved_to_sent: bool = False


class MailSender:
    def __init__(self, ingest: MailIngest, mailboxes: Sequence[MailboxSettings]) -> None:
        self.ingest = ingest
        self.context = ingest.context
        self._mailboxes = {m.name: m for m in mailboxes if m.smtp is not None}
        self._smtp: dict[str, SmtpSender] = {}

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self._smtp.values()), return_exceptions=True)

    async def send(self, draft: Draft, actor: Actor) -> Sent:
        mailbox = self._mailbox(draft.mailbox)
        outgoing = await self._outgoing(draft, mailbox)
        message_id, raw = compose(outgoing)
        recipients = [a.address for a in (*outgoing.to, *outgoing.cc)]
        refused = await self._smtp_for(mailbox).send(outgoing.sender.address, recipients, raw)
        fields = {"mailbox": mailbox.name, "message_id": message_id, "by": actor.username, "refused": list(refused)}
        log.info("message sent", extra={"fields": fields})
        copy = await self._save_to_sent(mailbox, raw)
        filed = await self._log(raw, copy)
        return Sent(filed.id, message_id, refused, copy is not None)

    # -- private -----------------------------------------------------------------------

    def _mailbox(self, name: str | None) -> MailboxSettings:
        if not self._mailboxes:
            raise MailboxNotReady("no mailbox has an SMTP server configured ([mailbox.smtp])")
        if name is None:
            return next(iter(self._mailboxes.values()))
        if name not in self._mailboxes:
            raise MailboxNotReady(f"no mailbox {name!r} with an SMTP server is configured")
        return self._mailboxes[name]

    def _smtp_for(self, mailbox: MailboxSettings) -> SmtpSender:
        if mailbox.name not in self._smtp:
            settings = smtp_settings(mailbox)
            if settings is None:
                raise MailboxNotReady(f"mailbox {mailbox.name!r} has no SMTP server configured")
            self._smtp[mailbox.name] = SmtpSender(settings)
        return self._smtp[mailbox.name]

    async def _outgoing(self, draft: Draft, mailbox: MailboxSettings) -> Outgoing:
        """Recipients, subject and threading headers, resolved against the log and the cards."""
        async with self.context.reading() as session:
            to = list(draft.to)
            in_reply_to: str | None = None
            references: tuple[str, ...] = ()
            subject = draft.subject
            if draft.reply_to is not None:
                parent = await Correspondence(session).get(draft.reply_to)
                in_reply_to, references = reply_headers(parent.message_id, parent.references)
                subject = subject if subject is not None else reply_subject(parent.subject)
                if not to and parent.sender_address:
                    to = [Address(parent.sender_address, parent.sender_name)]
            variables: dict[str, Any] = {}
            if draft.client_id is not None:
                client = await ClientBook(session, self.context.rules).get(draft.client_id)
                contact = None
                if draft.contact_id is not None:
                    contact = await session.get(Contact, draft.contact_id)
                    if contact is None or contact.client_id != client.id:
                        raise InvalidInput(f"contact {draft.contact_id} is not on this card", field="contact_id")
                if not to:
                    to = [_address_on_card(client, contact)]
                variables = {"client": client_to_dict(client), "contact": _contact_vars(contact)}
        if not to:
            raise InvalidInput("give recipients (to), a card (client_id) or a message to answer", field="to")
        texts = {"subject": subject or "", "text": draft.text, "html": draft.html}
        if draft.template:
            texts = {key: _render(key, value, variables) if value else value for key, value in texts.items()}
        return Outgoing(
            sender=Address(mailbox.address or mailbox.username, ""),
            to=tuple(to),
            cc=draft.cc,
            subject=texts["subject"] or "",
            text=texts["text"] or "",
            html=texts["html"],
            in_reply_to=in_reply_to,
            references=references,
            attachments=draft.attachments,
        )

    async def _save_to_sent(self, mailbox: MailboxSettings, raw: bytes) -> Location | None:
        """APPEND to the mailbox's \\Sent folder; a failure is logged, the message is sent anyway."""
        settings = imap_settings(mailbox)
        try:
            async with await ImapSession.open(settings) as session:
                folder = (await session.special_folders()).get(SENT, "Sent")
                appended = await session.append(folder, raw)
        except Exception as exc:  # the mail went out; only the copy is missing
            log.warning(
                "sent message not saved to the Sent folder",
                extra={"fields": {"mailbox": mailbox.name, "error": f"{type(exc).__name__}: {exc}"}},
            )
            return None
        if appended is None:  # no UIDPLUS: the follower will find it by its Message-ID
            return Location(mailbox.name, folder, 0, 0)
        return Location(mailbox.name, folder, appended[0], appended[1])

    async def _log(self, raw: bytes, copy: Location | None) -> Filed:
        mail = await asyncio.to_thread(parse, raw, max_attachment_bytes=self.ingest.max_attachment_bytes)
        digests = [
            await asyncio.to_thread(self.ingest.blobs.put, a.data) if a.data is not None else None
            for a in mail.attachments
        ]
        raw_sha256 = await asyncio.to_thread(self.ingest.blobs.put, raw)
        location = copy if copy is not None and copy.uid else None
        async with self.context.transaction() as session:
            return await MailLog(session, self.ingest.rules, self.context.rules).file(
                mail,
                raw_sha256=raw_sha256,
                raw_size=len(raw),
                attachment_digests=digests,
                location=location,
                outgoing=True,
            )


def _address_on_card(client: Any, contact: Contact | None) -> Address:
    emails = [e for e in client.emails if contact is None or e.contact_id == contact.id]
    if not emails:
        raise InvalidInput("this card has no e-mail address to write to", field="client_id")
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) if contact else client.name
    return Address(emails[0].address, name)


def _contact_vars(contact: Contact | None) -> dict[str, Any]:
    if contact is None:
        return {}
    return {"first_name": contact.first_name, "middle_name": contact.middle_name, "last_name": contact.last_name}


_TEMPLATES = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _render(field_name: str, source: str, variables: dict[str, Any]) -> str:
    """A template error names the field, the line and what was wrong, before anything is sent."""
    try:
        return _TEMPLATES.from_string(source).render(**variables)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"{field_name}, line {exc.lineno}: {exc.message}", field=field_name) from None
    except UndefinedError as exc:
        raise InvalidInput(f"{field_name}: {exc.message}", field=field_name) from None
    except TemplateError as exc:
        raise InvalidInput(f"{field_name}: {exc}", field=field_name) from None
