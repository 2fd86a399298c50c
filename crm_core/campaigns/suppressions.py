"""The suppression list as marketers manage it: look it up, add an address by hand, take one off."""

from __future__ import annotations

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from crm_core.campaigns.models import Suppression, SuppressionReason
from crm_core.emails import is_plausible
from crm_core.errors import Conflict, InvalidInput, NotFound
from crm_core.models import utcnow
from crm_core.paging import Page, fetch_page


class SuppressionList:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def page(self, contains: str | None, page: int, per_page: int) -> Page[Suppression]:
        where = Suppression.address_key.contains(contains.strip().lower(), autoescape=True) if contains else true()
        order = (Suppression.created_at.desc(), Suppression.id.desc())
        return await fetch_page(self.session, Suppression, where, order, page, per_page)

    async def add(self, address: str, detail: str) -> Suppression:
        key = address.strip().lower()
        if not is_plausible(key):
            raise InvalidInput("not an e-mail address", field="address")
        if await self.session.scalar(select(Suppression.id).where(Suppression.address_key == key)) is not None:
            raise Conflict(f"{key} is already suppressed")
        entry = Suppression(address_key=key, reason=SuppressionReason.manual, detail=detail, created_at=utcnow())
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def remove(self, suppression_id: int) -> None:
        """Mail may go to the address again (say it asked to subscribe again)."""
        entry = await self.session.get(Suppression, suppression_id)
        if entry is None:
            raise NotFound(f"suppression {suppression_id} not found")
        await self.session.delete(entry)
