"""Screen-pops decided by the node that follows a PBX, shown by every node: an operator's
browser may be connected to any of them.

Each pop and withdrawal goes to every node (this one too) over the node bus, and each node
applies them, in the order they were sent, to its own ``PopHub``.  A card too large for a
notification even compressed loses its oldest history lines rather than the pop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from crm_core.telephony.events import CallKey
from hub.node_bus import NodeBus, TooLarge
from hub.screen_pop import PopHub

log = logging.getLogger("hub.screen_pop")
CHANNEL = "hub_pops"
TRIMMABLE = ("candidates", "last_calls", "last_emails")  # lists a pop can show fewer of


class PopRelay:
    def __init__(self, bus: NodeBus, pops: PopHub) -> None:
        self.bus = bus
        self.pops = pops
        bus.subscribe(CHANNEL, self._apply)

    def message_for(self, key: CallKey) -> dict[str, Any] | None:
        return self.pops.message_for(key)

    async def pop(self, key: CallKey, extension: str, message: dict[str, Any]) -> None:
        operation: dict[str, Any] = {"op": "pop", "key": [key.pbx, key.linkedid], "extension": extension,
                                     "message": message}  # fmt: skip
        while True:
            try:
                return await self.bus.send(CHANNEL, operation)
            except TooLarge:
                operation = {**operation, "message": _trimmed(operation["message"])}
                log.warning("a large pop was relayed with part of its history", extra={"fields": {"call": str(key)}})

    async def withdraw(self, key: CallKey, extensions: Iterable[str], reason: str, by: str | None = None) -> None:
        await self.bus.send(
            CHANNEL,
            {"op": "withdraw", "key": [key.pbx, key.linkedid], "extensions": sorted(extensions), "reason": reason,
             "by": by},
        )  # fmt: skip

    async def withdraw_all(self, key: CallKey, reason: str) -> None:
        await self.bus.send(CHANNEL, {"op": "withdraw", "key": [key.pbx, key.linkedid], "extensions": None,
                                      "reason": reason})  # fmt: skip

    async def _apply(self, operation: dict[str, Any]) -> None:
        key = CallKey(*operation["key"])
        if operation["op"] == "pop":
            await self.pops.pop(key, operation["extension"], operation["message"])
        elif operation["extensions"] is None:
            await self.pops.withdraw_all(key, operation["reason"])
        else:
            await self.pops.withdraw(key, operation["extensions"], operation["reason"], operation.get("by"))


def _trimmed(message: dict[str, Any]) -> dict[str, Any]:
    """The message with half of each history list (a copy: the caller's may be shared)."""
    copy: dict[str, Any] = json.loads(json.dumps(message, default=str))
    lists = [(m, name) for m in (copy, copy.get("client")) if isinstance(m, dict) for name in TRIMMABLE
             if isinstance(m.get(name), list) and m[name]]  # fmt: skip
    if not lists:
        raise TooLarge("a pop too large to relay, with no history to trim")
    for holder, name in lists:
        holder[name] = holder[name][: len(holder[name]) // 2]
    return copy
