"""What a timeline is made of: its items, and the shape of a source that gives them.

Apart from ``crm_core.timeline`` so that the sources (calls, mail, mailings...) can make items
without importing the module that lists them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    kind: str  # "card", "note", "call", "email", "mailing", "onec"
    id: str
    title: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "kind": self.kind, "id": self.id, "title": self.title, "data": self.data}


Source = Callable[[AsyncSession, int, datetime | None, int], Awaitable[list[TimelineItem]]]
