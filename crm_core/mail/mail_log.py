"""The mail log: every message stored once, filed under its clients, threaded; unreadable ones kept.

A connector hands over what it read (``ParsedMail``) and where it read it (``Location``);
this module decides whether it is new (by Message-ID, or by its bytes when it has none),
which clients and contacts it belongs to (every address in From, To and Cc that is on a
card, the company's own domains excluded), and which thread it continues (Message-ID,
In-Reply-To and References first, the subject within a window after that).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.clients import ClientBook, Lookup, MatchRules
from crm_core.mail.events import Location, ParsedMail
from crm_core.mail.models import MailAttachment, MailCopy, MailLink, MailMessage, MailQuarantine, MailThread
from crm_core.models import utcnow
from crm_core.outbox import Event, publish

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
class Incoming:
    """A parsed message ready to file: its bytes' digest, its attachments' digests (None: over
    the size limit), where it was read (None: sent by the hub itself)."""

    mail: ParsedMail
    raw_sha256: str
    raw_size: int
    attachment_digests: tuple[str | None, ...]
    location: Location | None
    outgoing: bool = False  # the Sent folder, or mail the hub sent
    received_at: datetime | None = None


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
        return location in await self.read_of([location])

    async def read_of(self, locations: Sequence[Location]) -> set[Location]:
        """Those of ``locations`` logged or quarantined before: two statements per folder."""
        found: set[Location] = set()
        folders: dict[tuple[str, str, int], list[int]] = defaultdict(list)
        for where in locations:
            folders[(where.mailbox, where.folder, where.uidvalidity)].append(where.uid)
        for (mailbox, folder, uidvalidity), uids in folders.items():
            for table in (MailCopy, MailQuarantine):
                rows = await self.session.scalars(
                    select(table.uid).where(
                        table.mailbox == mailbox,
                        table.folder == folder,
                        table.uidvalidity == uidvalidity,
                        table.uid.in_(uids),
                    )
                )
                found.update(Location(mailbox, folder, uidvalidity, uid) for uid in rows)
        return found

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
        """Store one message (see ``file_many``)."""
        incoming = Incoming(mail, raw_sha256, raw_size, tuple(attachment_digests), location, outgoing, received_at)
        return (await self.file_many([incoming]))[0]

    async def file_many(self, batch: Sequence[Incoming]) -> list[Filed]:
        """Store messages once each, in a few statements per batch whatever its size; a message
        already known (by Message-ID, or its bytes when it has none) only adds where it was seen.

        If another node stored one of them meanwhile (a unique key says so), the batch is
        stored again one message at a time, each finding what the other node stored.
        """
        if len(batch) > 1:
            try:
                async with self.session.begin_nested():
                    return await self._file_batch(batch)
            except IntegrityError:
                return [(await self.file_many([one]))[0] for one in batch]
        try:
            async with self.session.begin_nested():
                return await self._file_batch(batch)
        except IntegrityError:  # stored by another node a moment ago: now it is known
            return await self._file_batch(batch)

    # -- private ---------------------------------------------------------------------

    async def _file_batch(self, batch: Sequence[Incoming]) -> list[Filed]:
        keys = [_dedup_key(item) for item in batch]
        rows = await self.session.execute(
            select(MailMessage.dedup_key, MailMessage.id).where(MailMessage.dedup_key.in_(set(keys)))
        )
        known: dict[str, int] = {key: message_id for key, message_id in rows}
        fresh = [(key, item) for key, item in zip(keys, batch, strict=True) if key not in known]
        fresh = list({key: (key, item) for key, item in reversed(fresh)}.values())[::-1]  # first of repeats
        lookups = await ClientBook(self.session, self.match).find_by_emails(
            a.address for _, item in fresh for a in item.mail.participants if not self._is_own(a.address)
        )
        whens = [item.mail.sent_at or item.received_at or utcnow() for _, item in fresh]
        threads = _Threads(self.session, self.rules.thread_window)
        await threads.prepare([item.mail for _, item in fresh], whens)
        stored: dict[str, tuple[MailMessage, tuple[int, ...]]] = {}
        for (key, item), when in zip(fresh, whens, strict=True):
            links = self._links(item.mail, lookups)
            message = self._message(key, item, links)
            message.thread = threads.thread_for(item.mail, when)
            self.session.add(message)
            stored[key] = (message, tuple(dict.fromkeys(c for c, _ in links)))
        await self.session.flush()
        results: list[Filed] = []
        located: list[tuple[int, Location]] = []
        announced: list[tuple[MailMessage, tuple[int, ...]]] = []
        for key, item in zip(keys, batch, strict=True):
            if key in stored:  # new: the first of its repeats in the batch is reported as such
                message, client_ids = stored.pop(key)
                announced.append((message, client_ids))
                known[key] = message.id
                results.append(Filed(message.id, duplicate=False, client_ids=client_ids))
            else:
                results.append(Filed(known[key], duplicate=True))
            if item.location is not None:
                located.append((results[-1].id, item.location))
        await self._add_copies(located)
        await publish(
            self.session,
            *(
                Event(
                    "message.sent" if message.direction == "out" else "message.received",
                    {
                        "id": message.id,
                        "message_id": message.message_id,
                        "thread_id": message.thread_id,
                        "subject": message.subject,
                        "from": message.sender_address,
                        "recipients": message.recipients,
                        "sent_at": message.sent_at,
                        "client_ids": list(client_ids),
                        "url": f"/api/messages/{message.id}",
                    },
                    client_ids[0] if client_ids else None,
                )
                for message, client_ids in announced
            ),
        )
        return results

    def _message(self, key: str, item: Incoming, links: dict[tuple[int, int | None], str]) -> MailMessage:
        mail = item.mail
        return MailMessage(
            dedup_key=key,
            message_id=mail.message_id,
            in_reply_to=mail.in_reply_to,
            references=list(mail.references),
            direction="out" if item.outgoing or self._is_own(mail.sender.address if mail.sender else None) else "in",
            subject=mail.subject,
            sender_address=mail.sender.address if mail.sender else None,
            sender_name=mail.sender.name if mail.sender else "",
            recipients=[
                {"address": a.address, "name": a.name, "kind": kind}
                for kind, group in (("to", mail.to), ("cc", mail.cc))
                for a in group
            ],
            sent_at=mail.sent_at,
            received_at=item.received_at or utcnow(),
            text_body=mail.text,
            html_body=mail.html,
            remote_images=mail.remote_images,
            raw_sha256=item.raw_sha256,
            raw_size=item.raw_size,
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
                for a, digest in zip(mail.attachments, item.attachment_digests, strict=True)
            ],
            links=[MailLink(client_id=c, contact_id=p, address=addr) for (c, p), addr in links.items()],
        )

    def _is_own(self, address: str | None) -> bool:
        return address is not None and address.rpartition("@")[2].lower() in self.rules.own_domains

    def _links(self, mail: ParsedMail, lookups: dict[str, Lookup]) -> dict[tuple[int, int | None], str]:
        """(client, contact) -> the address that put the message there, for every outside participant."""
        links: dict[tuple[int, int | None], str] = {}
        for address in (a.address for a in mail.participants if not self._is_own(a.address)):
            for candidate in lookups[address].candidates:
                links.setdefault((candidate.client_id, candidate.contact_id), address)
        return links

    async def _add_copies(self, located: Sequence[tuple[int, Location]]) -> None:
        already = await self.read_of([where for _, where in located])
        seen: set[Location] = set()
        for message_id, where in located:
            if where in already or where in seen:
                continue
            seen.add(where)
            self.session.add(
                MailCopy(
                    message_id=message_id,
                    mailbox=where.mailbox,
                    folder=where.folder,
                    uidvalidity=where.uidvalidity,
                    uid=where.uid,
                )
            )
        await self.session.flush()

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


def _dedup_key(item: Incoming) -> str:
    return item.mail.message_id or f"sha256:{item.raw_sha256}"


class _Threads:
    """Which thread each message of a batch continues, found with three statements for the batch.

    Messages of the same batch find each other too (a reply fetched with its question).
    """

    def __init__(self, session: AsyncSession, window: timedelta) -> None:
        self.session = session
        self.window = window
        self._by_message_id: dict[str, MailThread] = {}
        self._by_parent: dict[str, MailThread] = {}  # in_reply_to of stored messages -> their thread
        self._by_subject: dict[str, list[MailThread]] = defaultdict(list)

    async def prepare(self, mails: Sequence[ParsedMail], whens: Sequence[datetime]) -> None:
        referenced = {i for m in mails for i in (m.in_reply_to, *m.references) if i}
        own_ids = {m.message_id for m in mails if m.message_id}
        keys = {k for m in mails if (k := subject_key(m.subject))}
        pairs: list[tuple[str | None, int]] = []
        if referenced:
            pairs += [
                (mid, tid)
                for mid, tid in await self.session.execute(
                    select(MailMessage.message_id, MailMessage.thread_id).where(MailMessage.message_id.in_(referenced))
                )
            ]
        children: list[tuple[str | None, int]] = []
        if own_ids:
            children = [
                (parent, tid)
                for parent, tid in await self.session.execute(
                    select(MailMessage.in_reply_to, MailMessage.thread_id).where(MailMessage.in_reply_to.in_(own_ids))
                )
            ]
        thread_ids = {tid for _, tid in pairs + children}
        threads = {t.id: t for t in await self.session.scalars(select(MailThread).where(MailThread.id.in_(thread_ids)))}
        if keys:
            since = min(whens) - self.window
            for thread in await self.session.scalars(
                select(MailThread).where(MailThread.subject_key.in_(keys), MailThread.last_at >= since)
            ):
                threads.setdefault(thread.id, thread)
                self._by_subject[thread.subject_key].append(thread)
        self._by_message_id = {mid: threads[tid] for mid, tid in pairs if mid}
        self._by_parent = {parent: threads[tid] for parent, tid in children if parent}

    def thread_for(self, mail: ParsedMail, when: datetime) -> MailThread:
        ids = [i for i in (mail.in_reply_to, *reversed(mail.references)) if i]
        thread = next((self._by_message_id[i] for i in ids if i in self._by_message_id), None)
        if thread is None and mail.message_id:
            thread = self._by_parent.get(mail.message_id)
        key = subject_key(mail.subject)
        if thread is None and key:
            recent = [t for t in self._by_subject[key] if t.last_at >= when - self.window]
            thread = max(recent, key=lambda t: t.last_at, default=None)
        if thread is None:
            thread = MailThread(subject=mail.subject, subject_key=key, started_at=when, last_at=when)
            if key:
                self._by_subject[key].append(thread)
        elif when > thread.last_at:
            thread.last_at = when
        if mail.message_id:
            self._by_message_id[mail.message_id] = thread
        if mail.in_reply_to:
            self._by_parent.setdefault(mail.in_reply_to, thread)
        return thread
