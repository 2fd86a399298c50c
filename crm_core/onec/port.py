"""What the sync needs from a 1C connection, and the failures it must tell apart.

The OData connector implements ``CounterpartyPort``; the sync engine knows nothing of HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crm_core.onec.records import Counterparty, Remote

Progress = Callable[[int], None]  # called with how many more items were read


class PeerError(Exception):
    """1C refused one request (its own message, in Russian, is the text); other items go on."""

    transient = False  # 1C failed inside (its "internal error"): the same request may well pass later


class PeerUnavailable(PeerError):
    """1C cannot be reached or keeps failing: the run stops here and a later run resumes."""


class VersionMoved(PeerError):
    """The item changed in 1C since it was read: read it again and merge once more."""


@dataclass(frozen=True, slots=True)
class RemoteVersion:
    data_version: str
    deleted: bool


class CounterpartyPort(Protocol):
    async def versions(self, progress: Progress | None = None) -> dict[str, RemoteVersion]:
        """Every item's reference and ``DataVersion``: the cheap list change detection reads."""
        ...

    def pages(self, progress: Progress | None = None) -> AsyncIterator[list[Remote]]:
        """Every item, whole, a page at a time (a first sync, or when most items changed)."""
        ...

    async def fetch(self, refs: Sequence[str]) -> list[Remote]:
        """These items, whole; those that no longer exist are left out."""
        ...

    async def create(self, record: Counterparty, marker: str) -> Remote:
        """A new item; ``marker`` goes with it so that ``find`` can recognise it after a lost answer."""
        ...

    async def find(self, record: Counterparty, marker: str) -> list[Remote]:
        """Items that may be the one ``create`` was making when its answer was lost."""
        ...

    async def update(self, ref_key: str, expected_version: str, changes: Mapping[str, Any]) -> Remote:
        """Write these fields; raise ``VersionMoved`` when the item is no longer at ``expected_version``."""
        ...
