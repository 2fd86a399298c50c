"""A counterparty's recent documents in 1C (invoices, shipments): read-only, for the card.

Which document types are read is configured; Enterprise Accounting names them
``Document_СчетНаОплатуПокупателю`` and ``Document_РеализацияТоваровУслуг``.  A type the
infobase does not publish is skipped (and said once in the log), not an error for the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from connectors.onec.client import OdataClient, guid
from connectors.onec.errors import OnecNotPublished

log = logging.getLogger("hub.onec")
EMPTY_DATE = "0001-01-01T00:00:00"
_SELECT = ["Ref_Key", "Number", "Date", "Posted", "СуммаДокумента"]


@dataclass(frozen=True, slots=True)
class Document:
    entity_set: str
    ref_key: str
    number: str
    date: datetime | None  # 1C dates carry no zone; read as UTC
    amount: float | None
    posted: bool


class DocumentReader:
    def __init__(self, client: OdataClient, entity_sets: list[str]) -> None:
        self.client = client
        self.entity_sets = list(entity_sets)
        self._unpublished: set[str] = set()

    async def recent(self, counterparty: str, since: datetime, limit: int = 20) -> list[Document]:
        """Documents of this counterparty dated ``since`` or later, not marked for deletion, newest first."""
        found: list[Document] = []
        stamp = since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        wanted = f"Контрагент_Key eq {guid(counterparty)} and DeletionMark eq false and Date ge datetime'{stamp}'"
        for entity_set in self.entity_sets:
            if entity_set in self._unpublished:
                continue
            try:
                rows = await self.client.entries(
                    entity_set, select=_SELECT, filter=wanted, orderby="Date desc", top=limit
                )
            except OnecNotPublished as exc:
                self._unpublished.add(entity_set)
                log.warning("1C document type not published", extra={"fields": {"entity_set": entity_set,
                                                                                  "detail": str(exc)}})  # fmt: skip
                continue
            found.extend(_document(entity_set, row) for row in rows)
        found.sort(key=lambda d: d.date or datetime.min.replace(tzinfo=UTC), reverse=True)
        return found[:limit]


def _document(entity_set: str, row: dict[str, object]) -> Document:
    raw_date = str(row.get("Date") or EMPTY_DATE)
    date = None if raw_date.startswith(EMPTY_DATE[:10]) else datetime.fromisoformat(raw_date).replace(tzinfo=UTC)
    amount = row.get("СуммаДокумента")
    return Document(
        entity_set=entity_set,
        ref_key=str(row["Ref_Key"]),
        number=str(row.get("Number") or "").strip(),
        date=date,
        amount=float(amount) if isinstance(amount, int | float | str) and str(amount) else None,
        posted=bool(row.get("Posted")),
    )
