"""The operator's page and its pop socket let in operators (and admins) with an extension only."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from crm_core.models import Role
from tests.conftest import PASSWORD, bearer


async def test_operator_page_needs_a_login_and_the_operator_role(http: TestClient, tokens: dict) -> None:
    resp = await http.get("/operator", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/login?next=/operator"
    await http.post("/api/auth/login", json={"username": "marketer", "password": PASSWORD})
    assert (await http.get("/operator")).status == 403
    await http.post("/api/auth/logout")
    await http.post("/api/auth/login", json={"username": "operator", "password": PASSWORD})
    page = await http.get("/operator")
    assert page.status == 200
    html = await page.text()
    assert "/static/operator.js" in html and "101" in html
    assert (await http.get("/static/operator.js")).status == 200


async def test_pop_socket_greets_the_operator_by_extension(http: TestClient, tokens: dict) -> None:
    async with http.ws_connect("/ws", headers=bearer(tokens[Role.operator])) as ws:
        hello = await ws.receive_json(timeout=5)
        assert hello == {"type": "hello", "extension": "101", "user": "operator"}
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "pong"


@pytest.mark.parametrize(("role", "status"), [(None, 401), (Role.marketer, 403), (Role.admin, 409)])
async def test_pop_socket_refuses_who_gets_no_pops(
    http: TestClient, tokens: dict, role: Role | None, status: int
) -> None:
    headers = bearer(tokens[role]) if role else {}
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect("/ws", headers=headers)
    assert refused.value.status == status  # the admin of the fixtures has no extension: 409
