"""Screen-pops: the right extensions see the card, and every pop is withdrawn in the end."""

from __future__ import annotations

import json

from crm_core.telephony.events import CallKey
from hub.screen_pop import PopHub

KEY = CallKey("office", "1795476470.0")


class Socket:
    def __init__(self) -> None:
        self.frames: list[dict] = []

    async def send_str(self, data: str) -> None:
        self.frames.append(json.loads(data))


class BrokenSocket:
    async def send_str(self, data: str) -> None:
        raise ConnectionResetError


async def test_pop_reaches_every_socket_of_the_ringing_extension_only() -> None:
    hub, anna_tab1, anna_tab2, boris = PopHub(), Socket(), Socket(), Socket()
    hub.attach("101", anna_tab1)
    hub.attach("101", anna_tab2)
    hub.attach("102", boris)
    await hub.pop(KEY, "101", {"type": "pop", "call_id": str(KEY)})
    assert anna_tab1.frames == anna_tab2.frames == [{"type": "pop", "call_id": str(KEY)}]
    assert boris.frames == []


async def test_withdrawal_names_the_reason_and_who_answered() -> None:
    hub, anna, boris = PopHub(), Socket(), Socket()
    hub.attach("101", anna)
    hub.attach("102", boris)
    await hub.pop(KEY, "101", {"type": "pop"})
    await hub.pop(KEY, "102", {"type": "pop"})
    await hub.withdraw(KEY, ["102"], "answered_elsewhere", by="101")
    assert boris.frames[-1] == {"type": "withdraw", "call_id": str(KEY), "reason": "answered_elsewhere", "by": "101"}
    assert hub.showing(KEY) == {"101"}
    await hub.withdraw_all(KEY, "ended")
    assert anna.frames[-1]["reason"] == "ended" and hub.showing(KEY) == set()


async def test_a_page_opened_while_ringing_gets_the_pop_and_a_dead_socket_harms_no_one() -> None:
    hub, late, broken = PopHub(), Socket(), BrokenSocket()
    hub.attach("101", broken)
    await hub.pop(KEY, "101", {"type": "pop", "caller": "+74951234567"})
    assert hub.attach("101", late) == [{"type": "pop", "caller": "+74951234567"}]
    hub.detach("101", broken)
    await hub.withdraw_all(KEY, "ended")
    assert late.frames == [{"type": "withdraw", "call_id": str(KEY), "reason": "ended", "by": None}]


async def test_withdrawing_an_unknown_call_does_nothing() -> None:
    hub, anna = PopHub(), Socket()
    hub.attach("101", anna)
    await hub.withdraw(KEY, ["101"], "ended")
    assert anna.frames == []
