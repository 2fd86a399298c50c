"""Pops and withdrawals in the PBX's order, with the cards of waiting pops read together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.telephony.events import CallKey
from hub.context import HubContext
from hub.pop_dispatch import PopDispatcher, Withdrawal
from hub.screen_pop import PopHub, PopRequest
from tests.test_screen_pop import Socket

KNOWN = "+74951234567"


def _ring(linkedid: str, extension: str, caller: str | None = KNOWN) -> PopRequest:
    return PopRequest(CallKey("office", linkedid), extension, caller, None, "support", "4950000000", "ring")


@contextmanager
def phone_lookups(context: HubContext) -> Iterator[list[str]]:
    """The phone lookups the database was asked for while the block ran."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "FROM phones" in statement:
            seen.append(statement)

    event.listen(context.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(context.engine.sync_engine, "before_cursor_execute", count)


@asynccontextmanager
async def dispatcher(context: HubContext) -> AsyncIterator[tuple[PopDispatcher, dict[str, Socket]]]:
    pops = PopHub()
    sockets = {ext: Socket() for ext in ("101", "102", "103")}
    for ext, socket in sockets.items():
        pops.attach(ext, socket)
    popper = PopDispatcher(context, pops)
    popper.start()
    try:
        yield popper, sockets
    finally:
        await popper.stop()


@pytest.fixture
async def client_id(hub_context: HubContext) -> int:
    async with hub_context.transaction() as session:
        client = await ClientBook(session, hub_context.rules).create(
            ClientIn(name="Ромашка", tags=["vip"], phones=[{"number": "8 (495) 123-45-67"}]), SYSTEM
        )
    return client.id


async def test_a_ringall_queue_is_looked_up_once_and_every_step_arrives_in_order(
    hub_context: HubContext, client_id: int
) -> None:
    key = CallKey("office", "1.0")
    with phone_lookups(hub_context) as lookups:
        async with dispatcher(hub_context) as (popper, sockets):
            for ext in ("101", "102", "103"):
                popper.submit(_ring("1.0", ext))
            popper.submit(Withdrawal(key, ("102", "103"), "answered_elsewhere", "101"))
            popper.submit(Withdrawal(key, None, "ended"))
    assert len(lookups) == 1
    for ext, socket in sockets.items():
        kinds = [(f["type"], f.get("reason")) for f in socket.frames]
        expected_end = "ended" if ext == "101" else "answered_elsewhere"
        assert kinds == [("pop", None), ("withdraw", expected_end)], ext
        pop = socket.frames[0]
        assert pop["extension"] == ext and pop["client"]["id"] == client_id and pop["client"]["tags"] == ["vip"]


async def test_unknown_and_anonymous_callers_get_quick_create(hub_context: HubContext, client_id: int) -> None:
    async with dispatcher(hub_context) as (popper, sockets):
        popper.submit(_ring("2.0", "101", "+79169999999"))
        popper.submit(_ring("2.1", "102", None))
    unknown, anonymous = sockets["101"].frames[0], sockets["102"].frames[0]
    assert unknown["unknown"] and unknown["quick_create"] == {"phones": [{"number": "+79169999999"}]}
    assert anonymous["unknown"] and anonymous["quick_create"] == {"phones": []} and anonymous["match"] == "none"


async def test_the_call_log_gets_the_card_the_pop_found_for_the_same_number_once(
    hub_context: HubContext, client_id: int
) -> None:
    async with dispatcher(hub_context) as (popper, _sockets):
        popper.submit(_ring("3.0", "101"))
        popper.submit(_ring("3.1", "101", "+79169999999"))
        popper.submit(_ring("3.2", "101"))
    assert popper.match_for(CallKey("office", "3.0"), KNOWN) == (client_id, None)
    assert popper.match_for(CallKey("office", "3.0"), KNOWN) is None  # handed over once
    assert popper.match_for(CallKey("office", "3.1"), "+79169999999") is None  # unknown: looked up again later
    assert popper.match_for(CallKey("office", "3.2"), "+79160000000") is None  # another number: no use


async def test_a_failed_lookup_still_shows_who_is_calling(hub_context: HubContext, monkeypatch: Any) -> None:
    @asynccontextmanager
    async def broken() -> AsyncIterator[None]:
        raise ConnectionError("database went away")
        yield

    monkeypatch.setattr(hub_context, "reading", broken)
    async with dispatcher(hub_context) as (popper, sockets):
        popper.submit(_ring("4.0", "101"))
        popper.submit(Withdrawal(CallKey("office", "4.0"), None, "ended"))
    pop, withdrawal = sockets["101"].frames
    assert pop["caller"] == KNOWN and pop["match"] == "unavailable" and "unknown" not in pop
    assert withdrawal["type"] == "withdraw"


async def test_stop_applies_what_is_queued(hub_context: HubContext) -> None:
    async with dispatcher(hub_context) as (popper, sockets):
        popper.submit(_ring("5.0", "101", None))
        await asyncio.sleep(0)
        popper.submit(Withdrawal(CallKey("office", "5.0"), None, "ended"))
    assert [f["type"] for f in sockets["101"].frames] == ["pop", "withdraw"]
