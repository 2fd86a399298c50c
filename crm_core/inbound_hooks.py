"""Tokens for incoming webhooks: what an outside system (a website, a cloud PBX) may push in.

Each token is made for one system, allowed only the kinds of hook it needs, and can be
revoked alone.  Like API tokens, only its SHA-256 is stored; it is shown once, at creation.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal, get_args

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import Base, Json, UTCDateTime, utcnow
from crm_core.users import digest

HookKind = Literal["clients", "calls", "onec_sync"]
HOOK_KINDS: tuple[str, ...] = get_args(HookKind)
TOKEN_PREFIX = "hook_"


class InboundHook(Base):
    __tablename__ = "inbound_hooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # also the source of what it logs
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kinds: Mapped[list[str]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def allows(self, kind: str) -> bool:
        return kind in self.kinds


class InboundHooks:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str, kinds: list[str]) -> tuple[InboundHook, str]:
        """The hook and its token: the only time the token is seen."""
        unknown = sorted(set(kinds) - set(HOOK_KINDS))
        if unknown or not kinds:
            raise InvalidInput(f"kinds must be some of {', '.join(HOOK_KINDS)}", field="kinds")
        if await self.session.scalar(select(InboundHook.id).where(InboundHook.name == name)) is not None:
            raise Conflict(f"an incoming webhook named {name!r} already exists")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        hook = InboundHook(name=name, token_hash=digest(token), kinds=sorted(set(kinds)), created_at=utcnow())
        self.session.add(hook)
        await self.session.flush()
        return hook, token

    async def all(self) -> list[InboundHook]:
        return list((await self.session.scalars(select(InboundHook).order_by(InboundHook.id))).all())

    async def for_token(self, token: str) -> InboundHook | None:
        """The live hook this token belongs to, marked as used; None for an unknown or revoked one."""
        hook = await self.session.scalar(
            select(InboundHook).where(InboundHook.token_hash == digest(token), InboundHook.revoked_at.is_(None))
        )
        if hook is not None:
            hook.last_used_at = utcnow()
        return hook

    async def revoke(self, hook_id: int) -> None:
        hook = await self.session.get(InboundHook, hook_id)
        if hook is None:
            raise NotFound(f"incoming webhook {hook_id} not found")
        hook.revoked_at = hook.revoked_at or utcnow()
