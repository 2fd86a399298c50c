"""The /metrics figures only the database knows, read at each scrape: mail waiting to go,
webhook work waiting, 1C sync age."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from crm_core.campaigns.models import Recipient, RecipientStatus
from crm_core.outbox import Event, publish
from hub.context import HubContext
from tests.test_tracking import _sent


def _figure(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found is not None, f"{name} not in /metrics"
    return float(found.group(1))


async def test_waiting_mail_and_webhook_work_are_counted_at_each_scrape(
    http: TestClient, hub_context: HubContext
) -> None:
    first = await (await http.get("/metrics")).text()
    assert _figure(first, "hub_database_up") == 1.0
    assert _figure(first, 'hub_campaign_recipients{status="queued"}') == 0.0
    async with hub_context.transaction() as session:
        await _sent(session)  # a started campaign: one recipient sent, the others queued
        queued = await session.scalar(
            select(func.count()).select_from(Recipient).where(Recipient.status == RecipientStatus.queued)
        )
        await publish(session, Event("client.created", {"id": 1}, 1))
    figures = await (await http.get("/metrics")).text()
    assert queued and _figure(figures, 'hub_campaign_recipients{status="queued"}') == queued
    assert _figure(figures, 'hub_campaign_recipients{status="review"}') == 0.0
    assert _figure(figures, "hub_outbox_events_waiting") >= 1.0
    assert _figure(figures, "hub_webhook_deliveries_pending") == 0.0
