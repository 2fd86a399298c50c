"""The mail log: every message stored once, filed under its clients, threaded; unreadable ones kept.

A connector hands over what it read (``ParsedMail``) and where it read it (``Location``);
this module decides whether it is new (by Message-ID, or by its bytes when it has none),
which clients and contacts it belongs to (every address in From, To and Cc that is on a
card, the company's own domains excluded), and which thread it continues (Message-ID,
In-Reply-To and References first, the subject within a window after that).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import ClientBook, MatchRules
from crm_core.mail.events import Location, ParsedMail
from crm_core.mail.models import MailAttachment, MailCopy, MailLink, MailMessage, MailQuarantine, MailThread
from crm_core.models import utcnow

# Reply and forward prefixes as Russian and other clients write them: "Re:", "RE[2]:", "Fwd:", "Отв:", "Пересл.:"
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|wg|tr|sv|отв|ответ|пересл|переслать)\s*(?:\[\d+\]|\(\d+\))?\s*\.?\s*:\s*)+", re.I
)
_TAG = re.compile(r"^\s*\[[^\]]{1,40}\]\s*")  # a mailing-list tag before the subject
SUBJECT_KEY_CHARS = 300


def subject_key(subject: str) -> str:
    """The subject a thread is known by: prefixes and list tags off, case and spacing folded."""
    text = subject
    while True:
        stripped = _TAG.sub("", _PREFIX.sub("", text))
        if stripped == text:
            break
        text = stripped
    return " ".join(text.casefold().split())[:SUBJECT_KEY_CHARS]


@dataclass(frozen=True, slots=True)
class MailRules:
    own_domains: frozenset[str] = frozenset()  # addresses here are the company's, never a client's
    thread_window: timedelta = timedelta(days=30)  # how far back a bare subject joins a thread


@dataclass(frozen=True, slots=True)
class Filed:
    id: int
    duplicate: bool  # already logged (from another mailbox or an earlier fetch)
    client_ids: tuple[int, ...] = ()


class MailLog:
    def __init__(self, session: AsyncSession, rules: MailRules, match: MatchRules | None = None) -> None:
        self.session = session
        self.rules = rules
        self.match = match or MatchRules()

    async def already_read(self, location: Location) -> bool:
        """This copy was logged or quarantined before (a refetch after a crash or a restart)."""
        for table in (MailCopy, MailQuarantine):
            found = await self.session.scalar(
                select(table.id).where(
                    table.mailbox == location.mailbox,
                    table.folder == location.folder,
                    table.uidvalidity == location.uidvalidity,
                    table.uid == location.uid,
                )
            )
            if found is not None:
                return True
        return False

    async def file(
        self,
        mail: ParsedMail,
        *,
        raw_sha256: str,
        raw_size: int,
        attachment_digests: Sequence[str | None],
        location: Location | None,
        outgoing: bool = False,
        received_at: datetime | None = None,
    ) -> Filed:
        """Store a message once; a copy already known only adds where it was seen.

        ``attachment_digests`` gives each of ``mail.attachments`` its digest in the blob
        store (None when it was over the size limit); ``outgoing`` is set for the Sent
        folder and for mail the hub sent itself.
        """
        dedup_key = mail.message_id or f"sha256:{raw_sha256}"
        existing = await self.session.scalar(select(MailMessage).where(MailMessage.dedup_key == dedup_key))
        if existing is not None:
            await self._add_copy(existing.id, location)
            return Filed(existing.id, duplicate=True)
        when = mail.sent_at or received_at or utcnow()
        links = await self._links(mail)
        message = MailMessage(
            dedup_key=dedup_key,
            message_id=mail.message_id,
            in_reply_to=mail.in_reply_to,
            references=list(mail.references),
            direction="out" if outgoing or self._is_own(mail.sender.address if mail.sender else None) else "in",
            subject=mail.subject,
            sender_address=mail.sender.address if mail.sender else None,
            sender_name=mail.sender.name if mail.sender else "",
            recipients=[
                {"address": a.address, "name": a.name, "kind": kind}
                for kind, group in (("to", mail.to), ("cc", mail.cc))
                for a in group
            ],
            sent_at=mail.sent_at,
            received_at=received_at or utcnow(),
            text_body=mail.text,
            html_body=mail.html,
            remote_images=mail.remote_images,
            raw_sha256=raw_sha256,
            raw_size=raw_size,
            defects=list(mail.defects),
            awaiting_triage=not links,
            attachments=[
                MailAttachment(
                    filename=a.filename,
                    content_type=a.content_type,
                    size=a.size,
                    sha256=digest,
                    content_id=a.content_id,
                    inline=a.inline,
                )
                for a, digest in zip(mail.attachments, attachment_digests, strict=True)
            ],
            links=[MailLink(client_id=c, contact_id=p, address=addr) for (c, p), addr in links.items()],
        )
        message.thread_id = (await self._thread_for(mail, when)).id
        try:
            async with self.session.begin_nested():
                self.session.add(message)
        except IntegrityError:  # another mailbox's task stored the same message a moment ago
            stored = await self.session.scalar(select(MailMessage.id).where(MailMessage.dedup_key == dedup_key))
            if stored is None:
                raise
            await self._add_copy(stored, location)
            return Filed(stored, duplicate=True)
        await self._add_copy(message.id, location)
        return Filed(message.id, duplicate=False, client_ids=tuple(dict.fromkeys(c for c, _ in links)))

    async def quarantine(self, location: Location, *, raw_sha256: str, raw_size: int, error: str) -> None:
        """Keep an unreadable message's place and reason (its bytes are in the blob store)."""
        if await self.already_read(location):
            return
        self.session.add(
            MailQuarantine(
                mailbox=location.mailbox,
                folder=location.folder,
                uidvalidity=location.uidvalidity,
                uid=location.uid,
                raw_sha256=raw_sha256,
                raw_size=raw_size,
                error=error[:2000],
            )
        )
        await self.session.flush()

    # -- private ---------------------------------------------------------------------

    def _is_own(self, address: str | None) -> bool:
        return address is not None and address.rpartition("@")[2].lower() in self.rules.own_domains

    async def _links(self, mail: ParsedMail) -> dict[tuple[int, int | None], str]:
        """(client, contact) -> the address that put the message there, for every outside participant."""
        outside = [a.address for a in mail.participants if not self._is_own(a.address)]
        lookups = await ClientBook(self.session, self.match).find_by_emails(outside)
        links: dict[tuple[int, int | None], str] = {}
        for address in outside:
            for candidate in lookups[address].candidates:
                links.setdefault((candidate.client_id, candidate.contact_id), address)
        return links

    async def _thread_for(self, mail: ParsedMail, when: datetime) -> MailThread:
        ids = [i for i in (mail.in_reply_to, *reversed(mail.references)) if i]
        conditions = [MailMessage.message_id.in_(ids)] if ids else []
        if mail.message_id:  # a reply that arrived before this message already started the thread
            conditions.append(MailMessage.in_reply_to == mail.message_id)
        thread_id = None
        if conditions:
            thread_id = await self.session.scalar(select(MailMessage.thread_id).where(or_(*conditions)).limit(1))
        key = subject_key(mail.subject)
        thread = await self.session.get(MailThread, thread_id) if thread_id is not None else None
        if thread is None and key:
            thread = await self.session.scalar(
                select(MailThread)
                .where(MailThread.subject_key == key, MailThread.last_at >= when - self.rules.thread_window)
                .order_by(MailThread.last_at.desc())
                .limit(1)
            )
        if thread is None:
            thread = MailThread(subject=mail.subject, subject_key=key, started_at=when, last_at=when)
            self.session.add(thread)
            await self.session.flush()
        elif when > thread.last_at:
            thread.last_at = when
        return thread

    async def _add_copy(self, message_id: int, location: Location | None) -> None:
        if location is None or await self.already_read(location):
            return
        self.session.add(
            MailCopy(
                message_id=message_id,
                mailbox=location.mailbox,
                folder=location.folder,
                uidvalidity=location.uidvalidity,
                uid=location.uid,
            )
        )
        await self.session.flush()
