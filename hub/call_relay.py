"""Click-to-call asked of a node that does not follow the PBX (the API is behind a load
balancer): the request goes over the node bus to every node, the one following that PBX places
the call and sends the answer back.  The call is filed under the chosen client by that node,
which is the one that sees it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from typing import Any

from connectors.ami import AmiError, AmiNotConnected, OriginateResult
from crm_core.models import User
from hub.context import HubContext
from hub.node_bus import NodeBus
from hub.telephony import ClickToCall, NoPbx, Telephony

log = logging.getLogger("hub.telephony")
REQUESTS = "hub_originate"
ANSWERS = "hub_originate_answers"
PBX_ERRORS: dict[str, type[AmiError]] = {"pbx_unreachable": AmiNotConnected, "pbx_error": AmiError}


class CallRelay:
    def __init__(self, bus: NodeBus, context: HubContext, telephony: Telephony) -> None:
        self.bus = bus
        self.context = context
        self.telephony = telephony
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._placing: set[asyncio.Task[None]] = set()
        bus.subscribe(REQUESTS, self._requested)
        bus.subscribe(ANSWERS, self._answered)
        telephony.elsewhere = self.click_to_call

    async def click_to_call(
        self, user: User, number: str, *, pbx: str, client_id: int | None, contact_id: int | None, timeout: float
    ) -> ClickToCall:
        """Ask the node following ``pbx``; raises as ``Telephony.click_to_call`` would."""
        request_id = secrets.token_hex(8)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = answer
        request = {"id": request_id, "pbx": pbx, "user_id": user.id, "number": number, "client_id": client_id,
                   "contact_id": contact_id}  # fmt: skip
        try:
            await self.bus.send(REQUESTS, request)
            found = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise AmiNotConnected(pbx, f"no hub node following it answered within {timeout:g} s") from None
        finally:
            self._waiting.pop(request_id, None)
        if found.get("error") == "no_pbx":
            raise NoPbx(found["message"])
        if "error" in found:
            raise PBX_ERRORS.get(found["error"], AmiError)(pbx, found["message"])
        return ClickToCall(found["originate_id"], found["pbx"], OriginateResult(**found["result"]))

    async def _requested(self, request: dict[str, Any]) -> None:
        if not self.telephony.follows(request["pbx"]):
            return  # another node's, or nobody's: the asker times out
        task = asyncio.create_task(self._place(request), name=f"originate:{request['id']}")  # pops must not wait
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)

    async def _place(self, request: dict[str, Any]) -> None:
        answer: dict[str, Any] = {"id": request["id"]}
        try:
            async with self.context.reading() as session:
                user = await session.get(User, request["user_id"])
                if user is not None:
                    session.expunge(user)  # kept as read: the reading session's rollback would expire it
            if user is None:
                raise NoPbx("the asking user no longer exists")
            if not self.telephony.follows(request["pbx"]):  # lost it meanwhile: never relayed a second time
                raise AmiNotConnected(request["pbx"], "this node stopped following the PBX; try again")
            placed = await self.telephony.click_to_call(
                user, request["number"], pbx=request["pbx"], client_id=request["client_id"],
                contact_id=request["contact_id"],
            )  # fmt: skip
            answer |= {"originate_id": placed.originate_id, "pbx": placed.pbx,
                       "result": dataclasses.asdict(placed.result)}  # fmt: skip
        except NoPbx as exc:
            answer |= {"error": "no_pbx", "message": str(exc)}
        except AmiNotConnected as exc:
            answer |= {"error": "pbx_unreachable", "message": str(exc).removeprefix(f"{exc.pbx}: ")}
        except AmiError as exc:
            answer |= {"error": "pbx_error", "message": str(exc).removeprefix(f"{exc.pbx}: ")}
        except Exception as exc:  # the asker must hear back, whatever happened
            log.exception("click-to-call for another node failed", extra={"fields": {"pbx": request["pbx"]}})
            answer |= {"error": "pbx_error", "message": f"{type(exc).__name__}: {exc}"}
        await self.bus.send(ANSWERS, answer)

    async def _answered(self, answer: dict[str, Any]) -> None:
        waiting = self._waiting.get(answer["id"])
        if waiting is not None and not waiting.done():
            waiting.set_result(answer)
