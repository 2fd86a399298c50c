from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.client_data import ClientIn, client_to_dict
from crm_core.clients import ClientBook, ClientQuery, MatchRules
from crm_core.errors import Conflict


async def test_client_with_russian_number_is_found_by_e164_and_by_last_ten_digits(session: AsyncSession) -> None:
    book = ClientBook(session)
    client = await book.create(ClientIn(name="Ромашка", phones=[{"number": "8 (495) 123-45-67"}]), SYSTEM)
    await session.commit()
    exact = await book.find_by_phone("+74951234567")
    assert exact.match == "exact" and exact.client_ids == [client.id]
    by_tail = await book.find_by_phone("4951234567")
    assert by_tail.client_ids == [client.id]
    card = client_to_dict(await book.get(client.id))
    assert card["phones"][0]["number"] == "8 (495) 123-45-67"
    assert card["phones"][0]["e164"] == "+74951234567"
