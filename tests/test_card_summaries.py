"""Card summaries for screen-pops: many cards in three statements, each with its own last calls."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.audit import SYSTEM
from crm_core.card_summaries import RECENT_CALLS, card_summaries
from crm_core.client_data import ClientIn
from crm_core.clients import ClientBook
from crm_core.models import Role
from crm_core.telephony.call_log import CallLog
from crm_core.users import NewUser, UserDirectory
from tests.test_call_log import T0, _record


async def test_each_card_gets_its_tags_owner_and_own_last_calls(session: AsyncSession) -> None:
    owner = await UserDirectory(session).create(NewUser("anna", Role.operator, full_name="Анна Петрова"))
    book = ClientBook(session)
    busy = await book.create(
        ClientIn(name="Ромашка", full_name="ООО «Ромашка»", inn="7707083893", tags=["vip", "b2b"], owner_id=owner.id),
        SYSTEM,
    )
    quiet = await book.create(ClientIn(name="Лютик"), SYSTEM)
    gone = await book.create(ClientIn(name="Удалённый"), SYSTEM)
    await book.delete(gone.id, SYSTEM)
    log = CallLog(session)
    await log.record_many(
        [(_record(f"8.{i}", started_at=T0 + timedelta(minutes=i)), (busy.id, None)) for i in range(RECENT_CALLS + 2)]
    )
    await log.record(_record("9.0", caller="+79160000000"), (quiet.id, None))

    cards = await card_summaries(session, [busy.id, quiet.id, gone.id, 999_999])

    assert set(cards) == {busy.id, quiet.id}
    card = cards[busy.id]
    assert (card.name, card.full_name, card.inn) == ("Ромашка", "ООО «Ромашка»", "7707083893")
    assert card.owner == "Анна Петрова"
    assert card.tags == ["b2b", "vip"]
    newest_first = [f"8.{i}" for i in range(RECENT_CALLS + 1, 1, -1)]
    assert [c.started_at for c in card.recent_calls] == [T0 + timedelta(minutes=int(x[2:])) for x in newest_first]
    assert len(cards[quiet.id].recent_calls) == 1 and cards[quiet.id].tags == []
    assert await card_summaries(session, []) == {}
