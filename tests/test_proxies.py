"""Behind nginx the client's address comes from X-Forwarded-For, and only when the request
comes from a trusted proxy: anyone else could write that header."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from sqlalchemy import select

from crm_core.campaigns.models import TrackingHit
from crm_core.campaigns.tokens import Purpose
from hub.web.app import make_app
from hub.web.tracking import HITS
from tests.conftest import open_context
from tests.test_tracking import BROWSER
from tests.test_tracking_web import _recipient, _token


@pytest.mark.parametrize(
    ("trusted", "forwarded", "recorded"),
    [
        (["127.0.0.0/8"], "203.0.113.7", "203.0.113.7"),  # nginx on this host vouches for the client
        (["127.0.0.0/8", "10.0.0.0/8"], "203.0.113.7, 10.1.2.3", "203.0.113.7"),  # two proxies in a row
        (["127.0.0.0/8"], "10.9.9.9, 203.0.113.7", "203.0.113.7"),  # what the client wrote itself is not believed
        ([], "203.0.113.7", "127.0.0.1"),  # no trusted proxy: the header is anybody's
        (["10.0.0.0/8"], "203.0.113.7", "127.0.0.1"),  # a peer that is not a trusted proxy
        (["127.0.0.0/8"], ("10.9.9.9", "203.0.113.7"), "203.0.113.7"),  # the proxy added a line of its own
    ],
)
async def test_the_recorded_address_is_the_clients_only_through_trusted_proxies(
    database_url: str, tmp_path: Path, trusted: list[str], forwarded: str | tuple[str, ...], recorded: str
) -> None:
    context = await open_context(database_url, tmp_path / "data", trusted_proxies=trusted)
    try:
        recipient_id, _ = await _recipient(context)
        async with TestClient(TestServer(make_app(context))) as http:
            lines = (forwarded,) if isinstance(forwarded, str) else forwarded
            headers = CIMultiDict([("User-Agent", BROWSER), *(("X-Forwarded-For", line) for line in lines)])
            response = await http.get(f"/t/o/{_token(context, Purpose.open, recipient_id)}", headers=headers)
            assert response.status == 200
            await http.app[HITS].flush()  # type: ignore[index]
        async with context.reading() as session:
            assert (await session.scalars(select(TrackingHit.ip))).all() == [recorded]
    finally:
        await context.close()
