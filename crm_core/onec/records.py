"""A counterparty as both sides can say it: the fields the sync keeps equal, normalised.

A hub card and a 1C catalogue item are both turned into a ``Counterparty`` before anything is
compared, so "+7 (495) 123-45-67" and "84951234567" are one phone, and an empty INN is ``None``
whichever side left it blank.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from crm_core import emails, phones
from crm_core.models import Client, ClientKind

# The fields the sync compares, in the order a log shows them.
FIELDS = (
    "name",
    "full_name",
    "kind",
    "inn",
    "kpp",
    "ogrn",
    "phones",
    "emails",
    "legal_address",
    "actual_address",
    "group",
    "deleted",
)
LIST_FIELDS = frozenset({"phones", "emails"})
GROUP_FIELD = "1c_group"  # the card's custom field that shows the 1C folder


@dataclass(frozen=True, slots=True)
class Counterparty:
    name: str
    full_name: str = ""
    kind: str = "legal"  # "legal" or "person": all 1C can tell (a sole trader is a person there)
    inn: str | None = None
    kpp: str | None = None
    ogrn: str | None = None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    legal_address: str | None = None
    actual_address: str | None = None
    group: str | None = None  # the 1C folder's path, "Покупатели / Москва"
    deleted: bool = False

    def values(self) -> dict[str, Any]:
        """Plain JSON-able values by field (lists for the tuples), as the link's base stores them."""
        data = asdict(self)
        for name in LIST_FIELDS:
            data[name] = list(data[name])
        return data

    @classmethod
    def from_values(cls, data: dict[str, Any]) -> Counterparty:
        known = {k: v for k, v in data.items() if k in FIELDS}
        for name in LIST_FIELDS & known.keys():
            known[name] = tuple(known[name])
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Remote:
    """A counterparty as read from 1C: its reference, its version, and what it says."""

    ref_key: str
    data_version: str
    record: Counterparty
    code: str = ""
    comment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def text(value: str | None) -> str | None:
    """Blank is None; inner runs of spaces are one space."""
    if value is None:
        return None
    cleaned = " ".join(value.split())
    return cleaned or None


def phone_key(raw: str, region: str) -> str:
    """A phone as the sync compares it: E.164 when it is a possible number, else its digits."""
    number = phones.normalise(raw, region)
    return number.e164 or number.digits or raw.strip()


def email_key(address: str) -> str:
    return emails.normalise(address).lowered


_QUOTES = re.compile(r"[\"'«»“”„]")


def name_key(name: str) -> str:
    """The "exact normalised name" the first sync matches on: case, quotes and spacing ignored."""
    return " ".join(_QUOTES.sub(" ", name).casefold().replace("ё", "е").split())


def kind_of(kind: ClientKind) -> str:
    return "legal" if kind is ClientKind.legal_entity else "person"


def client_kind(kind: str, current: ClientKind | None, ogrn: str | None) -> ClientKind:
    """A 1C kind as a card's: a person stays what the card said, else is a sole trader when their
    OGRNIP (15 digits) says so, else an individual."""
    if kind == "legal":
        return ClientKind.legal_entity
    if current in (ClientKind.sole_trader, ClientKind.individual):
        return current
    return ClientKind.sole_trader if ogrn and len(ogrn) == 15 else ClientKind.individual


def of_client(client: Client, region: str) -> Counterparty:
    """The hub's card as a counterparty: the card's own phones and e-mails, not its contacts'."""
    legal = next((a["text"] for a in client.addresses if a.get("kind") == "legal"), None)
    actual = next((a["text"] for a in client.addresses if a.get("kind") == "actual"), None)
    group = client.custom_fields.get(GROUP_FIELD)
    return Counterparty(
        name=text(client.name) or "",
        full_name=text(client.full_name) or "",
        kind=kind_of(client.kind),
        inn=text(client.inn),
        kpp=text(client.kpp),
        ogrn=text(client.ogrn),
        phones=tuple(sorted({phone_key(p.raw, region) for p in client.phones if p.contact_id is None})),
        emails=tuple(sorted({e.address_lower for e in client.emails if e.contact_id is None})),
        legal_address=text(legal),
        actual_address=text(actual),
        group=text(group) if isinstance(group, str) else None,
        deleted=client.deleted_at is not None,
    )
