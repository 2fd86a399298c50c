"""Filing what the IMAP connectors fetch: parse, keep the bytes, store, move the checkpoint.

A batch of one folder is parsed in one trip to a worker thread and goes in one transaction
(a few statements for the whole batch) together with its checkpoint, so a crash at any point
leaves either the messages and the checkpoint or neither; a refetch after it finds the
messages already logged by their place and skips them.  A message that cannot
be parsed is quarantined with its raw bytes; it never stops the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from connectors.mail.mime import UnreadableMessage, parse
from crm_core.blobs import BlobStore
from crm_core.mail.checkpoints import Checkpoint, Checkpoints
from crm_core.mail.events import FetchedMessage, ParsedMail
from crm_core.mail.mail_log import Filed, Incoming, MailLog, MailRules
from hub.context import HubContext

log = logging.getLogger("hub.mail")


@dataclass(frozen=True, slots=True)
class _Prepared:
    fetched: FetchedMessage
    raw_sha256: str
    mail: ParsedMail | None
    error: str | None
    attachment_digests: tuple[str | None, ...]


class MailIngest:
    def __init__(self, context: HubContext) -> None:
        self.context = context
        settings = context.settings.mail
        self.blobs = BlobStore(context.settings.data_dir / "blobs")
        self.rules = MailRules(
            own_domains=frozenset(settings.own_domains),
            thread_window=timedelta(days=settings.thread_window_days),
        )
        self.max_attachment_bytes = settings.attachment_max_bytes
        self.filed = 0
        self.quarantined = 0

    async def checkpoint(self, mailbox: str, folder: str) -> Checkpoint | None:
        async with self.context.reading() as session:
            return await Checkpoints(session).get(mailbox, folder)

    async def deliver(self, sent_folder: bool, messages: Sequence[FetchedMessage]) -> list[Filed | None]:
        """File messages of one folder (in UID order); None for each quarantined or already read.

        A message the database refuses (a bug, a value it cannot store) must not stall its
        folder: the batch is then stored one message at a time, and one that still fails is
        quarantined with the reason.  If even that fails, the database itself is away: the
        error goes up and the connector reads the batch again later.
        """
        if not messages:
            return []
        prepared = await asyncio.to_thread(lambda: [self._prepare(m) for m in messages])
        try:
            return await self._store(sent_folder, prepared)
        except Exception:
            if len(prepared) == 1 and prepared[0].mail is None:
                raise
            log.exception("mail batch not stored; storing its messages one by one")
        results: list[Filed | None] = []
        for item in prepared:
            try:
                results += await self._store(sent_folder, [item])
            except Exception as exc:
                refused = replace(item, mail=None, error=f"could not be stored: {type(exc).__name__}: {exc}")
                results += await self._store(sent_folder, [refused])
        return results

    async def _store(self, sent_folder: bool, prepared: Sequence[_Prepared]) -> list[Filed | None]:
        last = prepared[-1].fetched.location
        async with self.context.transaction() as session:
            mail_log = MailLog(session, self.rules, self.context.rules)
            already = await mail_log.read_of([p.fetched.location for p in prepared])
            readable = [p for p in prepared if p.mail is not None and p.fetched.location not in already]
            filed = await mail_log.file_many(
                [
                    Incoming(
                        p.mail,
                        p.raw_sha256,
                        len(p.fetched.raw),
                        p.attachment_digests,
                        p.fetched.location,
                        outgoing=sent_folder,
                        received_at=p.fetched.internal_date,
                    )
                    for p in readable
                    if p.mail is not None
                ]
            )
            for p in prepared:
                if p.mail is None and p.fetched.location not in already:
                    where = p.fetched.location
                    await mail_log.quarantine(
                        where, raw_sha256=p.raw_sha256, raw_size=len(p.fetched.raw), error=p.error or ""
                    )
            await Checkpoints(session).advance(last.mailbox, last.folder, last.uidvalidity, last.uid)
        outcome = dict(zip((id(p) for p in readable), filed, strict=True))
        results: list[Filed | None] = []
        for p in prepared:
            if p.fetched.location not in already:
                self._log(p, outcome.get(id(p)))
            results.append(outcome.get(id(p)))
        return results

    def _prepare(self, fetched: FetchedMessage) -> _Prepared:
        """Blocking work, run in a thread: parsing and writing the bytes to the blob store."""
        raw_sha256 = self.blobs.put(fetched.raw)
        try:
            mail = parse(fetched.raw, max_attachment_bytes=self.max_attachment_bytes)
        except UnreadableMessage as exc:
            return _Prepared(fetched, raw_sha256, None, str(exc), ())
        digests = tuple(self.blobs.put(a.data) if a.data is not None else None for a in mail.attachments)
        return _Prepared(fetched, raw_sha256, mail, None, digests)

    def _log(self, item: _Prepared, filed: Filed | None) -> None:
        where = item.fetched.location
        fields: dict[str, object] = {"mailbox": where.mailbox, "folder": where.folder, "uid": where.uid}
        if item.mail is None:
            self.quarantined += 1
            log.warning("message quarantined", extra={"fields": {**fields, "error": item.error}})
        elif filed is not None:
            self.filed += 1
            fields.update(message_id=item.mail.message_id, id=filed.id, duplicate=filed.duplicate)
            log.info("message logged", extra={"fields": {**fields, "clients": list(filed.client_ids)}})
