"""The first sync's question: which hub card, if any, is this 1C counterparty?

Certain: the same INN and KPP (INN alone for a 12-digit INN: sole traders and individuals
have no KPP), and exactly one card.  Everything weaker (the same normalised name, the same
INN where one side has no KPP, several cards) is proposed to a user, never merged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from crm_core.onec.records import Counterparty, name_key


@dataclass(frozen=True, slots=True)
class Card:
    client_id: int
    name: str
    inn: str | None
    kpp: str | None


@dataclass(frozen=True, slots=True)
class Match:
    verdict: Literal["link", "propose", "none"]
    client_ids: tuple[int, ...] = ()
    reason: str = ""


NO_MATCH = Match("none")


class MatchIndex:
    """The cards not yet linked to this connection, indexed by requisites and by name."""

    def __init__(self, cards: list[Card], refused: set[tuple[str, int]] | None = None) -> None:
        self._by_requisites: dict[tuple[str, str | None], list[int]] = defaultdict(list)
        self._by_inn: dict[str, list[int]] = defaultdict(list)
        self._by_name: dict[str, list[Card]] = defaultdict(list)
        for card in cards:
            if card.inn:
                self._by_requisites[card.inn, card.kpp].append(card.client_id)
                self._by_inn[card.inn].append(card.client_id)
            self._by_name[name_key(card.name)].append(card)
        self._taken: set[int] = set()
        self._refused = refused or set()  # (ref_key, client_id) pairs a user said are different

    def take(self, client_id: int) -> None:
        """The card is linked now: it matches nothing else."""
        self._taken.add(client_id)

    def match(self, ref_key: str, record: Counterparty) -> Match:
        def free(ids: list[int]) -> tuple[int, ...]:
            return tuple(i for i in ids if i not in self._taken and (ref_key, i) not in self._refused)

        if record.inn:
            if len(record.inn) == 12:
                same = free(self._by_inn.get(record.inn, []))
                reason = "the same INN"
            else:
                same = free(self._by_requisites.get((record.inn, record.kpp), []))
                reason = "the same INN and KPP"
            if len(same) == 1:
                return Match("link", same, reason)
            if same:
                return Match("propose", same, f"several cards have {reason}")
            if len(record.inn) == 10:
                loose = free(self._by_requisites.get((record.inn, None), []))
                if loose:
                    return Match("propose", loose, "the same INN; the card has no KPP")
        named = [
            card.client_id
            for card in self._by_name.get(name_key(record.name), [])
            if not (card.inn and record.inn and card.inn != record.inn)
        ]
        same = free(named)
        if same:
            return Match("propose", same, "the same name")
        return NO_MATCH
