"""Filing what the IMAP connector fetches from the bounce mailbox: each message read as a bounce
or a complaint, or as an unsubscribe request sent to the List-Unsubscribe mailto address (its
subject carries the recipient's signed token), recorded, and the folder's checkpoint moved in
the same transaction.

A batch is read in one trip to a worker thread and recorded in one transaction with its
checkpoint, so a crash leaves either both or neither and no bounce is counted twice.  Each
message is recorded under its own savepoint: one the parser or the database cannot take is
logged and skipped, and never holds up its folder.  If the transaction itself fails, the
database is away: the error goes up and the connector reads the batch again later.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.bounce_reports import BounceReport, read_report
from crm_core.campaigns.bounces import Bounces
from crm_core.campaigns.tokens import Purpose, read_token, tracking_key
from crm_core.campaigns.tracking import Tracking, Visit
from crm_core.mail.checkpoints import Checkpoint, Checkpoints
from crm_core.mail.events import FetchedMessage
from crm_core.models import utcnow
from hub.context import HubContext

log = logging.getLogger("hub.bounces")


# A token may end in "-" or "_", after which \b would not match: the lookahead bounds it instead.
_UNSUBSCRIBE = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_-]{4,40})(?![A-Za-z0-9_-])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Read:
    fetched: FetchedMessage
    report: BounceReport | None  # None: not a bounce, or unreadable when ``error`` says why
    error: str | None = None
    unsubscribe: int | None = None  # the recipient whose mailto unsubscribe this is


class BounceIngest:
    def __init__(self, context: HubContext, soft_limit: int) -> None:
        self.context = context
        self.soft_limit = soft_limit
        self.key = tracking_key(context.signing_key)
        self.filed = 0  # bounces and complaints recorded
        self.ignored = 0  # not a bounce: auto-replies, people's mail, the Sent folder
        self.unreadable = 0  # the parser or the database failed on it
        self.unsubscribed = 0  # unsubscribe requests by mail

    async def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        async with self.context.reading() as session:
            return await Checkpoints(session).get(mailbox, folder)

    async def deliver(self, sent_folder: bool, messages: Sequence[FetchedMessage]) -> list[BounceReport | None]:
        """Record the bounces of one folder's batch (in UID order); None for each message that
        was no bounce or could not be recorded."""
        if not messages:
            return []
        if sent_folder:  # what we sent ourselves bounces nothing
            read = [_Read(m, None) for m in messages]
        else:
            read = await asyncio.to_thread(lambda: [_read(m, self.key) for m in messages])
        last = messages[-1].location
        async with self.context.transaction() as session:
            bounces = Bounces(session, self.soft_limit)
            outcomes = [await self._record(session, bounces, item) for item in read]
            await Checkpoints(session).advance(last.mailbox, last.folder, last.uidvalidity, last.uid)
        for item, error in zip(read, outcomes, strict=True):
            self._log(item, error)
        return [item.report if error is None else None for item, error in zip(read, outcomes, strict=True)]

    async def _record(self, session: AsyncSession, bounces: Bounces, item: _Read) -> str | None:
        """Why the message could not be recorded; None when it was (or needed nothing)."""
        at = item.fetched.internal_date or utcnow()
        if item.report is None and item.unsubscribe is None:
            return item.error
        try:
            async with session.begin_nested():
                if item.unsubscribe is not None:
                    await Tracking(session).unsubscribed(item.unsubscribe, Visit(at, method="MAILTO"), how="mailto")
                elif item.report is not None:
                    await bounces.record(item.report, at)
        except Exception as exc:  # a bug or a value the database refuses: skip the message, not the folder
            return f"could not be stored: {type(exc).__name__}: {exc}"
        return None

    def _log(self, item: _Read, error: str | None) -> None:
        where = item.fetched.location
        fields: dict[str, object] = {"mailbox": where.mailbox, "folder": where.folder, "uid": where.uid}
        report = item.report
        if error is not None:
            self.unreadable += 1
            log.warning("bounce mailbox message skipped", extra={"fields": {**fields, "error": error}})
        elif item.unsubscribe is not None:
            self.unsubscribed += 1
            log.info("unsubscribed by mail", extra={"fields": {**fields, "recipient": item.unsubscribe}})
        elif report is None:
            self.ignored += 1
        else:
            self.filed += 1
            fields.update(message_id=report.original_message_id, campaign_id=report.campaign_id, kind=report.kind,
                          addresses=[r.address for r in report.recipients])  # fmt: skip
            log.info("bounce recorded", extra={"fields": fields})


def _read(fetched: FetchedMessage, key: bytes) -> _Read:
    """Blocking work, run in a thread."""
    try:
        report = read_report(fetched.raw)
    except Exception as exc:  # read_report promises never to raise; a bug in it must not stall the folder
        return _Read(fetched, None, f"the bounce parser failed: {type(exc).__name__}: {exc}")
    if report is None:
        return _Read(fetched, None, unsubscribe=_unsubscribe_request(fetched.raw, key))
    return _Read(fetched, report)


def _unsubscribe_request(raw: bytes, key: bytes) -> int | None:
    """The recipient of a mail whose subject is "unsubscribe <token>" with a valid token (what
    a mail program sends to the List-Unsubscribe mailto address); None for any other mail."""
    try:
        subject = str(make_header(decode_header(BytesHeaderParser().parsebytes(raw).get("Subject", ""))))
    except (ValueError, LookupError, UnicodeError):
        return None
    match = _UNSUBSCRIBE.search(subject)
    found = read_token(key, Purpose.unsubscribe, match[1]) if match else None
    return found[0] if found else None
