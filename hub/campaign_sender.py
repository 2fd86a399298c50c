"""Sending the campaigns: claim recipients, render their copies, hand them to SMTP at the
configured pace, record each answer.

A producer claims a few dozen recipients at a time (committed as ``sending`` before anything
is sent), has their copies rendered and signed (``hub.campaign_copies``: in a thread, or in worker
processes when a DKIM key makes that worth it), and queues them for a handful of
workers, one per SMTP connection.  A worker waits for the rate limiter, sends, and leaves the
answer for the next claim's transaction (or the recorder's, within 50 ms when there is none).
So at a crash the recipients left ``sending`` are those claimed or answered in the last
moments: few, and sent to review at the next start, never resent silently (see
``crm_core.campaigns.send_queue``).

At most three claims are ahead of the workers (one queued for them, one being made, the next
claimed while it is made), so a pause or a
cancel stops the sending within a few dozen messages: claimed copies of a campaign no longer
sending are given back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.mail.dkim import DkimSigner
from connectors.smtp.errors import (
    SmtpAuthenticationFailed,
    SmtpOutcomeUnknown,
    SmtpPermanentFailure,
    SmtpRecipientsRefused,
    SmtpSecurityFailure,
    SmtpTemporaryFailure,
)
from connectors.smtp.pacing import SlidingWindowLimiter
from connectors.smtp.pool import SmtpPool
from crm_core.campaigns.book import Campaigns
from crm_core.campaigns.copies import TrackingUrls, cards_of
from crm_core.campaigns.models import Campaign
from crm_core.campaigns.send_queue import Claimed, Outcome, Result, SendQueue
from crm_core.campaigns.templates import Card, Person
from crm_core.campaigns.tokens import tracking_key
from crm_core.errors import NotFound
from crm_core.mail.events import Address
from crm_core.models import Client, utcnow
from hub.campaign_copies import CopyFactory, CopyJob, CopySpec, CopyWorkers, default_processes
from hub.config import CampaignSettings
from hub.context import HubContext
from hub.mailboxes import campaign_smtp_settings, smtp_settings

log = logging.getLogger("hub.campaigns")
RECORD_EVERY = 0.05  # seconds: answers are stored together, one transaction per interval
HALT_CHECK = 0.5  # seconds between looks for paused or cancelled campaigns
IDLE_POLL = 1.0  # seconds between looks for work when there is none (and for due schedules)
# Recipients claimed at once.  Each claim and its copies cost a dozen database round trips, a few
# milliseconds each while the event loop is busy with SMTP, so small claims cap the pace; but the
# claimed and unsent are what a crash sends to review (at most three claims' worth).  So a claim
# holds about a tenth of a second of sending at the configured rate, within these bounds.
CLAIM_MIN, CLAIM_MAX = 16, 64
CLAIM_SECONDS = 0.1
SERVER_TROUBLE_PAUSE = (1.0, 60.0)  # a worker's pause after the server could not take a message
CAMPAIGN_POOL = ""  # the pool of [campaigns.smtp]; mailboxes' pools are under their names


def claim_size(rate_per_second: int | None, concurrency: int) -> int:
    """Recipients a claim takes: a tenth of a second at the rate, a few per connection at least."""
    wanted = CLAIM_MAX if rate_per_second is None else round(rate_per_second * CLAIM_SECONDS)
    return max(CLAIM_MIN, concurrency * 4, min(CLAIM_MAX, wanted))


class CampaignSmtpMissing(Exception):
    """Neither ``[campaigns.smtp]`` nor the campaign's mailbox has an SMTP server."""


@dataclass(frozen=True, slots=True)
class _Ready:
    claimed: Claimed
    pool: str
    envelope_from: str
    raw: bytes


class CampaignSender:
    def __init__(self, context: HubContext, base_url: str) -> None:
        self.context = context
        self.settings: CampaignSettings = context.settings.campaigns
        self.urls = TrackingUrls(
            (self.settings.tracking_url or base_url).rstrip("/"), tracking_key(context.signing_key)
        )
        self.limiter = SlidingWindowLimiter.per(
            self.settings.rate_per_second, self.settings.rate_per_minute, self.settings.rate_per_hour
        )
        dkim = self.settings.dkim
        self.dkim = DkimSigner.from_file(dkim.domain, dkim.selector, dkim.private_key_file) if dkim else None
        processes = self.settings.copy_processes
        processes = default_processes(signing=self.dkim is not None) if processes is None else processes
        self.copies = CopyWorkers(CopyFactory(self.urls, self.dkim), processes)
        self._concurrency = self.settings.concurrency
        self._mailboxes = {m.name: m for m in context.settings.mailbox if m.smtp is not None}
        self._pools: dict[str, SmtpPool] = {}
        self._campaigns: dict[int, CopySpec] = {}  # by id; a spec carries its version (updated_at)
        self._batch = claim_size(self.settings.rate_per_second, self._concurrency)
        self._ready: asyncio.Queue[_Ready | None] = asyncio.Queue(maxsize=self._batch)  # None: a worker stops
        self._schedules_checked = 0.0
        self._answers: list[Outcome] = []
        self._answered = asyncio.Event()
        self._wake = asyncio.Event()
        self._halted: set[int] = set()
        self._to_finish: set[int] = set()  # campaigns with answers since they were last looked at
        self._stopping = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None
        self._maker: asyncio.Task[None] | None = None
        # Claimed batches on their way to the workers: the next is claimed while one is being made.
        self._claimed: asyncio.Queue[list[Claimed] | None] = asyncio.Queue()
        self._ahead = asyncio.Semaphore(2)
        # The sender's own write transactions take turns here rather than in SQLite's busy handler,
        # which sleeps between tries (1 ms, 2, 5... 100): claims and records waited ~13 ms each.
        self._writing = asyncio.Lock()
        self._recorder: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.outcomes: collections.Counter[str] = collections.Counter()  # SMTP answers by result, for /metrics

    async def start(self) -> None:
        """Send; again after ``stop()`` too (several nodes: whichever holds the lease sends)."""
        self._stopping.clear()
        self._ready = asyncio.Queue(maxsize=self._batch)
        self._claimed = asyncio.Queue()
        self._ahead = asyncio.Semaphore(2)
        self._halted, self._to_finish, self._campaigns = set(), set(), {}
        async with self.context.transaction() as session:
            queue = SendQueue(session)
            interrupted = await queue.interrupted()
            span = self.limiter.longest  # only as far back as a window reaches (none: nothing to read)
            recent = await queue.sent_since(utcnow() - timedelta(seconds=span)) if span else []
        if interrupted:
            log.warning(
                "recipients were being sent when the hub stopped; they wait for review",
                extra={"fields": {"recipients": interrupted}},
            )
        now = utcnow()
        self.limiter.seed((now - at).total_seconds() for at in recent)
        self._producer = asyncio.create_task(self._produce(), name="campaigns:claim")
        self._maker = asyncio.create_task(self._make(), name="campaigns:make")
        self._recorder = asyncio.create_task(self._record(), name="campaigns:record")
        self._watcher = asyncio.create_task(self._watch(), name="campaigns:watch")
        self._workers = [
            asyncio.create_task(self._work(), name=f"campaigns:send:{n}") for n in range(self._concurrency)
        ]

    def wake(self) -> None:
        """Look for work now (a campaign was started or resumed)."""
        self._wake.set()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        async with self._writing, self.context.transaction() as session:
            yield session

    async def stop(self) -> None:
        """Finish the messages being sent, give back the claimed ones, store every answer."""
        self._stopping.set()
        self._wake.set()
        if self._producer is not None:
            await asyncio.gather(self._producer, return_exceptions=True)
        if self._maker is not None:
            await self._claimed.put(None)
            await asyncio.gather(self._maker, return_exceptions=True)
        for _ in self._workers:  # after what is queued, which they give back
            await self._ready.put(None)
        await asyncio.gather(*self._workers, return_exceptions=True)
        if self._recorder is not None:
            self._answered.set()
            await asyncio.gather(self._recorder, return_exceptions=True)
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        await asyncio.gather(*(pool.close() for pool in self._pools.values()))
        self._pools.clear()  # made again when next needed
        self.copies.close()
        self._producer, self._maker, self._recorder, self._watcher = None, None, None, None
        self._workers = []

    async def send_test(self, campaign_id: int, client_id: int, address: str) -> str:
        """One copy to ``address``, as ``client_id``'s card would get it, untracked (its opens and
        clicks count nowhere; its unsubscribe link names no recipient); its Message-ID.

        Raises ``NotFound``, ``TemplateProblem``, ``ValueError`` (the address) or an ``SmtpError``."""
        async with self.context.reading() as session:
            campaign = await Campaigns(session).get(campaign_id)
            client = await session.get(Client, client_id)
            if client is None or client.deleted_at is not None:
                raise NotFound(f"client {client_id} not found")
            spec = self._describe(campaign, tracked=False)
            maker = self.copies.factory.maker(spec)
            job = CopyJob(0, address, None, maker.variables(0, address, Card.of(client), Person()))
        message_id, raw = await asyncio.to_thread(self.copies.factory.message, spec, maker, job)
        await self._pools[spec.pool].send(spec.envelope_from, [address], raw)
        return f"<{message_id}>"

    # -- claiming and rendering --------------------------------------------------------------

    async def _produce(self) -> None:
        while not self._stopping.is_set():
            await self._ahead.acquire()  # given back by the maker once the batch is queued for the workers
            try:
                batch = await self._claim()
            except Exception:  # the database is away, say: the claim rolled back, nothing is lost
                self._ahead.release()
                log.exception("claiming campaign recipients failed")
                await self._pause(IDLE_POLL * 5)
                continue
            if not batch:
                self._ahead.release()
                await self._pause(IDLE_POLL)
                continue
            await self._claimed.put(batch)

    async def _make(self) -> None:
        """Have each claimed batch's copies made (by the worker processes, while the next batch
        is claimed) and queue them for the workers."""
        while (batch := await self._claimed.get()) is not None:
            try:
                if self._stopping.is_set():
                    await self._return([c.recipient_id for c in batch])
                    continue
                try:
                    ready = await self._prepare(batch)
                except Exception:
                    log.exception("preparing campaign messages failed; the recipients are queued again")
                    await self._return([c.recipient_id for c in batch])
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), IDLE_POLL * 5)
                    continue
                for item in ready:
                    await self._ready.put(item)  # waits while the workers are a batch behind
            finally:
                self._ahead.release()

    async def _claim(self) -> list[Claimed] | None:
        """Store the answers waiting and claim the next recipients, in one transaction (on SQLite
        every write transaction waits for the others: fewer is faster).  A campaign can only have
        finished when a claim comes back short."""
        answers, self._answers = self._answers, []
        try:
            async with self._transaction() as session:
                queue = SendQueue(session)
                await queue.record(answers)
                claimed = await self._claim_in(queue)
                finished = await self._finished(queue, answers, drained=len(claimed) < self._batch)
        except BaseException:
            self._answers[:0] = answers  # a sent message stays sent: stored with the next ones
            raise
        _log_finished(finished)
        return claimed

    async def _finished(self, queue: SendQueue, answers: Sequence[Outcome], *, drained: bool) -> list[int]:
        """Campaigns that answers were recorded for are looked at once nothing more could be
        claimed: one not finished then still has recipients in flight, whose answers bring it back."""
        self._to_finish.update(o.claimed.campaign_id for o in answers)
        if not drained or not self._to_finish:
            return []
        looked, self._to_finish = self._to_finish, set()
        try:
            return await queue.finish(looked)
        except BaseException:
            self._to_finish |= looked
            raise

    async def _claim_in(self, queue: SendQueue) -> list[Claimed]:
        if time.monotonic() - self._schedules_checked >= IDLE_POLL:
            self._schedules_checked = time.monotonic()
            for campaign_id, problem in await queue.start_due(utcnow()):
                if problem:
                    log.error("a scheduled campaign could not start; it is a draft again",
                              extra={"fields": {"campaign": campaign_id, "problem": problem}})  # fmt: skip
                else:
                    log.info("scheduled campaign started", extra={"fields": {"campaign": campaign_id}})
        return await queue.claim(self._batch, utcnow())

    async def _watch(self) -> None:
        """Note campaigns paused or cancelled since their recipients were claimed, twice a second:
        the workers give back what they hold of them instead of sending it."""
        while True:
            await asyncio.sleep(HALT_CHECK)
            if not self._campaigns:
                continue
            try:
                async with self.context.reading() as session:
                    self._halted = await SendQueue(session).halted(sorted(self._campaigns))
            except Exception:  # the database is away: the claims stop too; look again soon
                log.exception("checking campaigns for a pause failed")

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def _prepare(self, batch: Sequence[Claimed]) -> list[_Ready]:
        """Each claimed recipient's message as bytes; one whose copy cannot be made fails."""
        jobs: dict[CopySpec, list[tuple[Claimed, CopyJob]]] = {}  # by campaign
        async with self.context.reading() as session:
            campaigns = {cid: await self._campaign(session, cid) for cid in {c.campaign_id for c in batch}}
            cards, people = await cards_of(
                session,
                {c.client_id for c in batch if c.client_id is not None},
                {c.contact_id for c in batch if c.contact_id is not None},
            )
        for claimed in batch:
            campaign = campaigns[claimed.campaign_id]
            card = cards.get(claimed.client_id or 0)
            if campaign is None or card is None:
                self._answer(Outcome(claimed, Result.failed, utcnow(), "the card was deleted"))
                continue
            person = people.get(claimed.contact_id or 0, Person())
            variables = self.copies.factory.maker(campaign).variables(
                claimed.recipient_id, claimed.address, card, person
            )
            job = CopyJob(claimed.recipient_id, claimed.address, claimed.message_id, variables)
            jobs.setdefault(campaign, []).append((claimed, job))
        ready = []
        for spec, pairs in jobs.items():
            built = await self.copies.build(spec, [job for _, job in pairs])
            for (claimed, _), result in zip(pairs, built, strict=True):
                if isinstance(result, str):
                    self._answer(Outcome(claimed, Result.failed, utcnow(), result))
                else:
                    ready.append(_Ready(claimed, spec.pool, spec.envelope_from, result))
        return ready

    async def _campaign(self, session: AsyncSession, campaign_id: int) -> CopySpec | None:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        cached = self._campaigns.get(campaign_id)
        if cached is not None and cached.version == campaign.updated_at:
            return cached
        made = self._describe(campaign, campaign.tracking)
        self._campaigns[campaign_id] = made
        return made

    def _describe(self, campaign: Campaign, tracked: bool) -> CopySpec:
        envelope = self.settings.bounce_address or (
            self.settings.bounce_mailbox.address if self.settings.bounce_mailbox else ""
        )
        envelope_from = envelope or campaign.from_address
        spec = CopySpec(
            campaign_id=campaign.id, version=campaign.updated_at, name=campaign.name, subject=campaign.subject,
            html=campaign.html, text=campaign.text, tracked=tracked,
            sender=Address(campaign.from_address, campaign.from_name), reply_to=campaign.reply_to,
            envelope_from=envelope_from, mailto=self.settings.unsubscribe_mailto or envelope_from,
            pool=self._pool_for(campaign),
        )  # fmt: skip
        self.copies.factory.maker(spec)  # compiled here first: a template that fails gives the batch back
        return spec

    def _pool_for(self, campaign: Campaign) -> str:
        if self.settings.smtp is not None:
            if CAMPAIGN_POOL not in self._pools:
                self._pools[CAMPAIGN_POOL] = SmtpPool(campaign_smtp_settings(self.settings.smtp), self._concurrency)
            return CAMPAIGN_POOL
        mailbox = self._mailboxes.get(campaign.mailbox or "") or next(iter(self._mailboxes.values()), None)
        if mailbox is None:
            raise CampaignSmtpMissing("no SMTP server for campaigns: set [campaigns.smtp] or a [mailbox.smtp]")
        if mailbox.name not in self._pools:
            settings = smtp_settings(mailbox)
            assert settings is not None  # only mailboxes with [mailbox.smtp] are kept
            self._pools[mailbox.name] = SmtpPool(settings, self._concurrency)
        return mailbox.name

    # -- sending and recording ---------------------------------------------------------------

    async def _work(self) -> None:
        trouble = 0
        while (item := await self._ready.get()) is not None:
            if self._stopping.is_set() or item.claimed.campaign_id in self._halted:
                await self._return([item.claimed.recipient_id])
                continue
            await self.limiter.acquire()
            outcome = await self._send(item)
            self._answer(outcome)
            if outcome.result is Result.not_sent:
                trouble += 1
                low, high = SERVER_TROUBLE_PAUSE
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), min(high, low * 2 ** (trouble - 1)))
            else:
                trouble = 0

    async def _return(self, recipient_ids: list[int]) -> None:
        if not recipient_ids:
            return
        try:
            async with self._transaction() as session:
                await SendQueue(session).returned(recipient_ids)
        except Exception:  # left as sending: they go to review at the next start, never resent
            log.exception("giving back claimed recipients failed")

    async def _send(self, item: _Ready) -> Outcome:
        rid = item.claimed
        try:
            await self._pools[item.pool].send(item.envelope_from, [item.claimed.address], item.raw)
        except SmtpOutcomeUnknown as exc:
            return Outcome(rid, Result.unknown, utcnow(), str(exc))
        except SmtpRecipientsRefused as exc:
            reason = "; ".join(exc.refused.values())
            return Outcome(rid, Result.retry if exc.temporary else Result.failed, utcnow(), reason)
        except SmtpPermanentFailure as exc:
            return Outcome(rid, Result.failed, utcnow(), str(exc))
        except (SmtpAuthenticationFailed, SmtpSecurityFailure) as exc:
            log.error("campaign mail cannot go out: fix the SMTP settings", extra={"fields": {"error": str(exc)}})
            return Outcome(rid, Result.not_sent, utcnow(), str(exc))
        except SmtpTemporaryFailure as exc:
            return Outcome(rid, Result.retry if exc.code else Result.not_sent, utcnow(), str(exc))
        except ValueError as exc:  # an address that cannot go on an SMTP command line
            return Outcome(rid, Result.failed, utcnow(), str(exc))
        return Outcome(rid, Result.sent, utcnow())

    def _answer(self, outcome: Outcome) -> None:
        self.outcomes[outcome.result.value] += 1
        self._answers.append(outcome)
        self._answered.set()

    async def _record(self) -> None:
        while True:
            await self._answered.wait()
            if not self._stopping.is_set():
                await asyncio.sleep(RECORD_EVERY)
            self._answered.clear()
            answers, self._answers = self._answers, []
            if answers:
                try:
                    async with self._transaction() as session:
                        queue = SendQueue(session)
                        await queue.record(answers)
                        finished = await self._finished(queue, answers, drained=True)
                except Exception:  # kept, and stored with the next ones: a sent message stays sent
                    log.exception("recording SMTP answers failed")
                    self._answers[:0] = answers
                    await asyncio.sleep(IDLE_POLL)
                    self._answered.set()
                    continue
                _log_finished(finished)
            if self._stopping.is_set() and not self._answers:
                return


def _log_finished(campaign_ids: Sequence[int]) -> None:
    for campaign_id in campaign_ids:
        log.info("campaign finished", extra={"fields": {"campaign": campaign_id}})
