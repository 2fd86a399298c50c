"""What a bounce does: recorded against the recipient it came back for, the address suppressed
when it is bad (a hard bounce), unwanted (a complaint) or keeps failing (``soft_limit`` soft
bounces), and ``mailing.bounced`` published.

A report is matched to its recipient by the Message-ID it returns, then by its campaign's
X-Hub-Campaign, then by the address's most recent sending; an address nobody sent to is
recorded and, when hard, suppressed all the same: it is bad whoever writes to it.

Filed twice, a bounce must not count twice.  The caller records a report in the transaction
that moves its mailbox checkpoint (``hub.bounce_ingest``), so a restart does not read it
again; a folder read again from the start (a new UIDVALIDITY) is met by skipping a bounce
already recorded for the same address, kind, status and time, the time being when the
bounce reached the mailbox.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.bounce_reports import BounceReport, FailedRecipient
from crm_core.campaigns.models import Bounce, Recipient, Suppression, SuppressionReason
from crm_core.outbox import Event, publish

_AT_ONCE = {"hard": SuppressionReason.hard_bounce, "complaint": SuppressionReason.complaint}


class Bounces:
    def __init__(self, session: AsyncSession, soft_limit: int) -> None:
        if soft_limit < 1:
            raise ValueError("soft_limit must be at least 1")
        self.session = session
        self.soft_limit = soft_limit

    async def record(self, report: BounceReport, at: datetime) -> list[Bounce]:
        """The bounces newly recorded, one per failed recipient not recorded before."""
        recorded = []
        for failed in report.recipients:
            key = failed.address.lower()
            if await self._already(key, failed, at):
                continue
            recipient = await self._recipient(key, report)
            bounce = Bounce(address_key=key, recipient_id=recipient.id if recipient else None, kind=failed.kind,
                            status=failed.status, diagnostic=failed.diagnostic, at=at)  # fmt: skip
            self.session.add(bounce)
            await self.session.flush()
            await self._suppress_if_due(key, failed, recipient, at)
            if recipient is not None:
                await self._publish(recipient, failed, at)
            recorded.append(bounce)
        return recorded

    # -- private -----------------------------------------------------------------------------

    async def _already(self, key: str, failed: FailedRecipient, at: datetime) -> bool:
        same_status = Bounce.status.is_(None) if failed.status is None else Bounce.status == failed.status
        found = await self.session.scalar(
            select(Bounce.id)
            .where(Bounce.address_key == key, Bounce.kind == failed.kind, same_status, Bounce.at == at)
            .limit(1)
        )
        return found is not None

    async def _recipient(self, key: str, report: BounceReport) -> Recipient | None:
        mine = select(Recipient).where(Recipient.address_key == key)
        if report.original_message_id is not None:
            found = await self.session.scalar(mine.where(Recipient.message_id == report.original_message_id))
            if found is not None:
                return found
        if report.campaign_id is not None:
            found = await self.session.scalar(mine.where(Recipient.campaign_id == report.campaign_id))
            if found is not None:
                return found
        return await self.session.scalar(
            mine.where(Recipient.sent_at.is_not(None)).order_by(Recipient.sent_at.desc(), Recipient.id.desc()).limit(1)
        )

    async def _suppress_if_due(
        self, key: str, failed: FailedRecipient, recipient: Recipient | None, at: datetime
    ) -> None:
        reason = _AT_ONCE.get(failed.kind)
        if reason is None:
            soft = await self.session.scalar(
                select(func.count()).select_from(Bounce).where(Bounce.address_key == key, Bounce.kind == "soft")
            )
            if (soft or 0) < self.soft_limit:
                return
            reason = SuppressionReason.soft_bounces
        if await self.session.scalar(select(Suppression.id).where(Suppression.address_key == key)) is not None:
            return
        detail = " ".join(filter(None, (failed.status, failed.diagnostic)))
        # An unsubscribe of the same address may have come first meanwhile: then it is suppressed already.
        with contextlib.suppress(IntegrityError):
            async with self.session.begin_nested():
                self.session.add(Suppression(address_key=key, reason=reason, detail=detail, created_at=at,
                                             campaign_id=recipient.campaign_id if recipient else None))  # fmt: skip

    async def _publish(self, recipient: Recipient, failed: FailedRecipient, at: datetime) -> None:
        payload = {
            "campaign_id": recipient.campaign_id,
            "recipient_id": recipient.id,
            "client_id": recipient.client_id,
            "contact_id": recipient.contact_id,
            "address": recipient.address,
            "at": at,
            "kind": failed.kind,
            "status": failed.status,
            "diagnostic": failed.diagnostic,
        }
        await publish(self.session, Event("mailing.bounced", payload, recipient.client_id))
