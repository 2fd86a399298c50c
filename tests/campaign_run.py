"""A campaign driven over a running hub's API, as a marketer would: clients imported, a segment,
the campaign started, the recipients left for review after a crash settled from what the SMTP
server received.  For the tests that kill hubs with `kill -9` in the middle of a mailing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from tests.hub_process import WAIT, Hub
from tests.smtp_server import SmtpTestServer


def smtp_section(smtp_server: SmtpTestServer, concurrency: int, rate: int) -> str:
    return (
        "[campaigns]\n"
        f"concurrency = {concurrency}\n"
        f"rate_per_second = {rate}\n"
        'tracking_url = "https://hub.example.com"\n'
        "[campaigns.smtp]\n"
        f'host = "{smtp_server.host}"\n'
        f"port = {smtp_server.port}\n"
        'security = "none"\n'
    )


def address(n: int) -> str:
    return f"c{n}@clients.example"


class CampaignRun:
    def __init__(self, api: aiohttp.ClientSession) -> None:
        self.api = api
        self.path = ""

    async def call(self, hub: Hub, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        async with self.api.request(method, hub.url + path, **kwargs) as resp:
            assert resp.status == status, f"{method} {path}: {resp.status} {await resp.text()}"
            return await resp.json()

    async def start(self, hub: Hub, recipients: int) -> None:
        """Import ``recipients`` clients, make a segment of them all and start a campaign to it."""
        rows = "".join(f"Клиент {n};{address(n)}\n" for n in range(recipients))
        report = await self.call(hub, "POST", "/api/clients/import", data=("Наименование;Email\n" + rows).encode(),
                                 headers={"Content-Type": "text/csv"})  # fmt: skip
        assert report["imported"] == recipients, report
        segment = await self.call(hub, "POST", "/api/segments", 201, json={"name": "Все", "rules": {}})
        campaign = await self.call(hub, "POST", "/api/campaigns", 201, json={
            "name": "Декабрь", "from_address": "news@shop.example.com", "subject": "Для {{ client.name }}",
            "html": '<p>{{ client.name }}</p><a href="https://shop.example.com/">Магазин</a>',
            "segment_id": segment["id"]})  # fmt: skip
        self.path = f"/api/campaigns/{campaign['id']}"
        started = await self.call(hub, "POST", self.path + "/start")
        assert started["recipients"]["queued"] == recipients

    async def finished(self, hub: Hub) -> bool:
        return bool((await self.call(hub, "GET", self.path))["status"] == "finished")

    async def settle_review(self, hub: Hub, smtp_server: SmtpTestServer) -> int:
        """Answer for the recipients in review as a marketer would, from what the server received:
        count as sent those that arrived, send again the others; how many were in review."""
        review = (await self.call(hub, "GET", self.path + "/recipients?status=review&limit=1000"))["items"]
        delivered = {m.rcpt_tos[0] for m in smtp_server.messages}
        arrived = [r["id"] for r in review if r["address"] in delivered]
        lost = [r["id"] for r in review if r["address"] not in delivered]
        if arrived:
            await self.call(hub, "POST", self.path + "/review", json={"action": "count_as_sent",
                                                                       "recipient_ids": arrived})  # fmt: skip
        if lost:
            await self.call(hub, "POST", self.path + "/review", json={"action": "send_again", "recipient_ids": lost})
        return len(review)

    async def counts(self, hub: Hub) -> dict[str, int]:
        counts: dict[str, int] = (await self.call(hub, "GET", self.path))["recipients"]
        return counts


async def until(what: str, check: Any, hub: Hub, timeout: float = WAIT) -> None:
    """Wait for ``await check()``; fail early if ``hub`` died."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}\n{hub.log()}")
        if hub.proc is not None and hub.proc.poll() is not None:
            raise AssertionError(f"the hub exited with {hub.proc.returncode} waiting for: {what}\n{hub.log()}")
        await asyncio.sleep(0.05)
