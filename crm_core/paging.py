"""One page of a longer list, and the query that fetches it with the total count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int


async def fetch_page(
    session: AsyncSession,
    entity: type[T],
    where: Any,
    order_by: tuple[Any, ...],
    page: int,
    per_page: int,
    options: tuple[Any, ...] = (),
) -> Page[T]:
    """Rows of ``entity`` meeting ``where``, page ``page`` (from 1) in ``order_by`` order;
    ``options`` are loader options (the relationships the caller will read)."""
    total = await session.scalar(select(func.count()).select_from(entity).where(where))
    rows = await session.scalars(
        select(entity).where(where).order_by(*order_by).offset((page - 1) * per_page).limit(per_page).options(*options)
    )
    return Page(list(rows.all()), int(total or 0), page, per_page)
