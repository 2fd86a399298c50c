"""Sending the campaigns: claim recipients, render their copies, hand them to SMTP at the
configured pace, record each answer.

A producer claims a few dozen recipients at a time (committed as ``sending`` before anything
is sent), renders and signs their copies in a worker thread, and queues them for a handful of
workers, one per SMTP connection.  A worker waits for the rate limiter, sends, and leaves the
answer for the next claim's transaction (or the recorder's, within 50 ms when there is none).
So at a crash the recipients left ``sending`` are those claimed or answered in the last
moments: few, and sent to review at the next start, never resent silently (see
``crm_core.campaigns.send_queue``).

At most two claims are ahead of the workers (one queued, one being rendered), so a pause or a
cancel stops the sending within a few dozen messages: claimed copies of a campaign no longer
sending are given back.  Python runs one thread at a time: claiming and rendering in parallel
were measured no faster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.mail.compose import Outgoing, compose
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
from crm_core.campaigns.copies import Copy, CopyMaker, TrackingUrls, cards_of
from crm_core.campaigns.models import Campaign
from crm_core.campaigns.send_queue import Claimed, Outcome, Result, SendQueue
from crm_core.campaigns.templates import Card, Person, TemplateProblem
from crm_core.campaigns.tokens import tracking_key
from crm_core.errors import NotFound
from crm_core.mail.events import Address
from crm_core.models import Client, utcnow
from hub.config import CampaignSettings
from hub.context import HubContext
from hub.mailboxes import campaign_smtp_settings, smtp_settings

log = logging.getLogger("hub.campaigns")
RECORD_EVERY = 0.05  # seconds: answers are stored together, one transaction per interval
HALT_CHECK = 0.5  # seconds between looks for paused or cancelled campaigns
IDLE_POLL = 1.0  # seconds between looks for work when there is none (and for due schedules)
# Recipients claimed at once: a claim's transaction is the producer's main cost, and the claimed
# but unsent are what a crash sends to review (at most two claims' worth).
CLAIM_MIN = 16
SERVER_TROUBLE_PAUSE = (1.0, 60.0)  # a worker's pause after the server could not take a message
CAMPAIGN_POOL = ""  # the pool of [campaigns.smtp]; mailboxes' pools are under their names


class CampaignSmtpMissing(Exception):
    """Neither ``[campaigns.smtp]`` nor the campaign's mailbox has an SMTP server."""


@dataclass(frozen=True, slots=True)
class _Ready:
    claimed: Claimed
    pool: str
    envelope_from: str
    raw: bytes


@dataclass(frozen=True, slots=True)
class _Campaign:
    """What sending needs of a campaign, read once per change of the campaign."""

    maker: CopyMaker
    sender: Address
    reply_to: str | None
    pool: str
    envelope_from: str


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
        self._concurrency = self.settings.concurrency
        self._mailboxes = {m.name: m for m in context.settings.mailbox if m.smtp is not None}
        self._pools: dict[str, SmtpPool] = {}
        self._campaigns: dict[int, tuple[datetime, _Campaign]] = {}  # by id: (its updated_at, what it needs)
        self._batch = max(CLAIM_MIN, self._concurrency * 4)
        self._ready: asyncio.Queue[_Ready | None] = asyncio.Queue(maxsize=self._batch)  # None: a worker stops
        self._schedules_checked = 0.0
        self._answers: list[Outcome] = []
        self._answered = asyncio.Event()
        self._wake = asyncio.Event()
        self._halted: set[int] = set()
        self._to_finish: set[int] = set()  # campaigns with answers since they were last looked at
        self._stopping = asyncio.Event()
        self._producer: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._workers: list[asyncio.Task[None]] = []

    async def start(self) -> None:
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
        self._recorder = asyncio.create_task(self._record(), name="campaigns:record")
        self._watcher = asyncio.create_task(self._watch(), name="campaigns:watch")
        self._workers = [
            asyncio.create_task(self._work(), name=f"campaigns:send:{n}") for n in range(self._concurrency)
        ]

    def wake(self) -> None:
        """Look for work now (a campaign was started or resumed)."""
        self._wake.set()

    async def stop(self) -> None:
        """Finish the messages being sent, give back the claimed ones, store every answer."""
        self._stopping.set()
        self._wake.set()
        if self._producer is not None:
            await asyncio.gather(self._producer, return_exceptions=True)
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
        self._producer, self._recorder, self._watcher, self._workers = None, None, None, []

    async def send_test(self, campaign_id: int, client_id: int, address: str) -> str:
        """One copy to ``address``, as ``client_id``'s card would get it, untracked (its opens and
        clicks count nowhere; its unsubscribe link names no recipient); its Message-ID.

        Raises ``NotFound``, ``TemplateProblem``, ``ValueError`` (the address) or an ``SmtpError``."""
        async with self.context.reading() as session:
            campaign = await Campaigns(session).get(campaign_id)
            client = await session.get(Client, client_id)
            if client is None or client.deleted_at is not None:
                raise NotFound(f"client {client_id} not found")
            described = self._describe(campaign, tracked=False)
            variables = described.maker.variables(0, address, Card.of(client), Person())
        copy = described.maker.make(0, address, variables)
        message_id, raw = compose(self._outgoing(campaign_id, address, None, described, copy))
        if self.dkim is not None:
            raw = await asyncio.to_thread(self.dkim.sign, raw)
        await self._pools[described.pool].send(described.envelope_from, [address], raw)
        return f"<{message_id}>"

    # -- claiming and rendering --------------------------------------------------------------

    async def _produce(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = await self._claim()
            except Exception:  # the database is away, say: the claim rolled back, nothing is lost
                log.exception("claiming campaign recipients failed")
                await self._pause(IDLE_POLL * 5)
                continue
            if not batch:
                await self._pause(IDLE_POLL)
                continue
            try:
                ready = await self._prepare(batch)
            except Exception:
                log.exception("preparing campaign messages failed; the recipients are queued again")
                await self._return([c.recipient_id for c in batch])
                await self._pause(IDLE_POLL * 5)
                continue
            for item in ready:
                await self._ready.put(item)  # waits while the workers are a batch behind

    async def _claim(self) -> list[Claimed] | None:
        """Store the answers waiting and claim the next recipients, in one transaction (on SQLite
        every write transaction waits for the others: fewer is faster).  A campaign can only have
        finished when a claim comes back short."""
        answers, self._answers = self._answers, []
        try:
            async with self.context.transaction() as session:
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
        jobs: list[tuple[Claimed, _Campaign, dict[str, object]]] = []
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
            jobs.append(
                (claimed, campaign, campaign.maker.variables(claimed.recipient_id, claimed.address, card, person))
            )
        built = await asyncio.to_thread(lambda: [self._build(*job) for job in jobs])
        ready = []
        for (claimed, _, _), result in zip(jobs, built, strict=True):
            if isinstance(result, str):
                self._answer(Outcome(claimed, Result.failed, utcnow(), result))
            else:
                ready.append(result)
        return ready

    async def _campaign(self, session: AsyncSession, campaign_id: int) -> _Campaign | None:
        campaign = await session.get(Campaign, campaign_id)
        if campaign is None:
            return None
        cached = self._campaigns.get(campaign_id)
        if cached is not None and cached[0] == campaign.updated_at:
            return cached[1]
        made = self._describe(campaign, campaign.tracking)
        self._campaigns[campaign_id] = (campaign.updated_at, made)
        return made

    def _describe(self, campaign: Campaign, tracked: bool) -> _Campaign:
        envelope = self.settings.bounce_address or (
            self.settings.bounce_mailbox.address if self.settings.bounce_mailbox else ""
        )
        return _Campaign(
            maker=CopyMaker(campaign, self.urls, tracked=tracked),
            sender=Address(campaign.from_address, campaign.from_name),
            reply_to=campaign.reply_to,
            pool=self._pool_for(campaign),
            envelope_from=envelope or campaign.from_address,
        )

    def _build(self, claimed: Claimed, campaign: _Campaign, variables: dict[str, object]) -> _Ready | str:
        """Runs in a worker thread: render, compose, sign.  A string says why it cannot be sent."""
        try:
            copy = campaign.maker.make(claimed.recipient_id, claimed.address, variables)
            _, raw = compose(self._outgoing(claimed.campaign_id, claimed.address, claimed.message_id, campaign, copy))
            if self.dkim is not None:
                raw = self.dkim.sign(raw)
        except (TemplateProblem, ValueError) as exc:
            return str(exc)
        return _Ready(claimed, campaign.pool, campaign.envelope_from, raw)

    def _outgoing(
        self, campaign_id: int, address: str, message_id: str | None, campaign: _Campaign, copy: Copy
    ) -> Outgoing:
        unsubscribe = f"<{copy.unsubscribe_url}>"
        mailto = self.settings.unsubscribe_mailto or campaign.envelope_from
        if mailto:
            token = copy.unsubscribe_url.rsplit("/", 1)[1]
            unsubscribe = f"<mailto:{mailto}?subject={quote('unsubscribe ' + token)}>, {unsubscribe}"
        headers = [
            ("List-Unsubscribe", unsubscribe),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),  # RFC 8058
            ("X-Hub-Campaign", str(campaign_id)),
            ("Feedback-ID", f"{campaign_id}:campaign:hub"),  # Gmail's complaint-rate reports group by it
        ]
        if campaign.reply_to:
            headers.append(("Reply-To", campaign.reply_to))
        rendered = copy.rendered
        return Outgoing(
            sender=campaign.sender,
            to=(Address(address, ""),),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html or None,
            message_id=message_id.strip("<>") if message_id else None,
            headers=tuple(headers),
        )

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
            async with self.context.transaction() as session:
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
                    async with self.context.transaction() as session:
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
