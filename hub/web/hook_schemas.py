"""Shapes of the incoming webhooks and of their tokens' administration."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from crm_core.client_data import ClientIn
from crm_core.inbound_hooks import HookKind
from hub.web.schemas import _In, _Out, _partial

ClientHookIn = _partial(
    ClientIn,
    "ClientHookIn",
    id=(
        int | None,
        Field(None, description="Update this card; without it, the card with the same INN/KPP, or a new one"),
    ),
)


class HookIn(_In):
    name: str = Field(
        min_length=1,
        max_length=50,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The sending system, e.g. site or cloudpbx",
    )
    kinds: list[HookKind] = Field(min_length=1, description="What the token may push")


class HookOut(_Out):
    id: int
    name: str
    kinds: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    token: str | None = Field(None, description="hook_...: shown once, when the hook is made")


class HookListOut(_Out):
    items: list[HookOut]


class ClientHookOut(_Out):
    id: int
    created: bool = Field(description="True: a new card; false: an existing one was updated")
    version: int


class CallHookOut(_Out):
    call_id: int
    logged: bool = Field(description="False: this call_id was already reported, nothing changed")
    status: str
    client_id: int | None


class SyncHookIn(_In):
    client_id: int | None = None
    inn: str | None = Field(None, pattern=r"^\d{10}(\d{2})?$")
    kpp: str | None = Field(None, pattern=r"^\d{9}$")

    @model_validator(mode="after")
    def _named(self) -> SyncHookIn:
        if self.client_id is None and self.inn is None:
            raise ValueError("name the client by client_id or by inn (and kpp)")
        return self


class SyncHookOut(_Out):
    id: int
    client_id: int
    status: str
    requested_at: datetime
    new: bool = Field(description="False: a request for this card was already waiting")
