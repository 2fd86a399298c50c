"""The hub's API in front of the fake 1C, for the tests of the 1C API and of the accountant's
pages: these fixtures replace conftest's ``hub_context`` and ``http`` where they are imported."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from hub.context import HubContext
from hub.onec import OnecSync
from hub.web.app import make_app
from tests.conftest import bearer


@pytest.fixture
def hub_context(onec: OnecSync) -> HubContext:
    """The hub with an [[onec]] connection to the fake: conftest's ``tokens`` log in to it."""
    return onec.context


@pytest.fixture
async def http(onec: OnecSync) -> AsyncIterator[TestClient]:
    client = TestClient(TestServer(make_app(onec.context, onec=onec)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def api_json(http: TestClient, method: str, path: str, token: str, status: int = 200, **kwargs: Any) -> Any:
    resp = await http.request(method, path, headers=bearer(token), **kwargs)
    assert resp.status == status, f"{method} {path}: {resp.status} {await resp.text()}"
    return await resp.json()
