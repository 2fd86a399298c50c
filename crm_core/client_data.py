"""What a client card looks like on the way in (validated) and on the way out (plain data).

The API, the CSV import and, later, the 1C sync all build cards through ``ClientIn``,
so a rule such as "a legal entity's INN has 10 digits" is written once, here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crm_core import emails
from crm_core.models import Client, ClientKind, ClientStatus
from crm_core.requisites import inn_problem, kpp_problem, ogrn_problem

_KIND_TEXT = {
    ClientKind.legal_entity: "a legal entity",
    ClientKind.sole_trader: "a sole trader",
    ClientKind.individual: "an individual",
}
# Which kinds of counterparty have which identifier, and of what length.
_REQUISITES: dict[str, tuple[Callable[[str], str | None], dict[ClientKind, int]]] = {
    "inn": (inn_problem, {ClientKind.legal_entity: 10, ClientKind.sole_trader: 12, ClientKind.individual: 12}),
    "kpp": (kpp_problem, {ClientKind.legal_entity: 9}),
    "ogrn": (ogrn_problem, {ClientKind.legal_entity: 13, ClientKind.sole_trader: 15}),
}
AddressKind = Literal["legal", "actual", "postal", "other"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


MAX_PHONE_DIGITS = 20  # E.164 allows 15; the rest is room for extensions typed inline


class PhoneIn(_Strict):
    number: str = Field(min_length=1, max_length=100, description="As typed; normalised to E.164")
    label: str = Field("", max_length=50)

    @field_validator("number")
    @classmethod
    def _not_too_long(cls, value: str) -> str:
        if sum(ch.isdigit() for ch in value) > MAX_PHONE_DIGITS:
            raise ValueError(f"a phone number has at most {MAX_PHONE_DIGITS} digits")
        return value


class EmailIn(_Strict):
    address: str = Field(min_length=3, max_length=320)
    label: str = Field("", max_length=50)

    @field_validator("address")
    @classmethod
    def _plausible(cls, value: str) -> str:
        if not emails.is_plausible(value):
            raise ValueError("not an e-mail address")
        return value


class AddressIn(_Strict):
    kind: AddressKind = "legal"
    text: str = Field(min_length=1, max_length=1000)


class ContactIn(_Strict):
    id: int | None = Field(None, description="Keep this contact's id when updating")
    first_name: str = Field("", max_length=100)
    middle_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    position: str = Field("", max_length=200)
    note: str = Field("", max_length=10_000)
    phones: list[PhoneIn] = Field(default_factory=list)
    emails: list[EmailIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_a_name(self) -> ContactIn:
        if not (self.first_name or self.last_name):
            raise ValueError("a contact needs a first or last name")
        return self


class ClientIn(_Strict):
    """A whole card.  Requisites are checked against the kind of counterparty."""

    kind: ClientKind = ClientKind.legal_entity
    name: str = Field(min_length=1, max_length=300)
    full_name: str = Field("", max_length=1000)
    inn: str | None = Field(None, max_length=12)
    kpp: str | None = Field(None, max_length=9)
    ogrn: str | None = Field(None, max_length=15)
    addresses: list[AddressIn] = Field(default_factory=list)
    website: str | None = Field(None, max_length=300)
    status: ClientStatus = ClientStatus.active
    owner_id: int | None = None
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    phones: list[PhoneIn] = Field(default_factory=list)
    emails: list[EmailIn] = Field(default_factory=list)
    contacts: list[ContactIn] = Field(default_factory=list)

    @field_validator("inn", "kpp", "ogrn", "website", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        cleaned = sorted({tag.strip() for tag in value if tag.strip()})
        if any(len(tag) > 100 for tag in cleaned):
            raise ValueError("a tag is at most 100 characters")
        return cleaned

    @model_validator(mode="after")
    def _requisites_fit_kind(self) -> ClientIn:
        for name, (check, lengths) in _REQUISITES.items():
            value = getattr(self, name)
            if value is None:
                continue
            title = name.upper()
            if self.kind not in lengths:
                raise ValueError(f"{name}: {_KIND_TEXT[self.kind]} has no {title}")
            problem = check(value)
            if problem:
                raise ValueError(f"{name}: {problem}")
            if len(value) != lengths[self.kind]:
                raise ValueError(f"{name}: {_KIND_TEXT[self.kind]} has a {lengths[self.kind]}-digit {title}")
        return self


def person_name(last_name: str | None, first_name: str | None, middle_name: str | None) -> str:
    """Russian order: surname, given name, patronymic."""
    return " ".join(p for p in (last_name, first_name, middle_name) if p)


def client_to_dict(client: Client) -> dict[str, Any]:
    """The card as the API and exports show it."""

    def phones(contact_id: int | None) -> list[dict[str, Any]]:
        return [
            {"id": p.id, "number": p.raw, "e164": p.e164, "extension": p.extension, "label": p.label}
            for p in client.phones
            if p.contact_id == contact_id
        ]

    def addresses(contact_id: int | None) -> list[dict[str, Any]]:
        return [
            {"id": e.id, "address": e.address, "label": e.label} for e in client.emails if e.contact_id == contact_id
        ]

    return {
        "id": client.id,
        "kind": client.kind.value,
        "name": client.name,
        "full_name": client.full_name,
        "inn": client.inn,
        "kpp": client.kpp,
        "ogrn": client.ogrn,
        "addresses": list(client.addresses),
        "website": client.website,
        "status": client.status.value,
        "owner_id": client.owner_id,
        "tags": [t.tag for t in client.tags],
        "custom_fields": dict(client.custom_fields),
        "phones": phones(None),
        "emails": addresses(None),
        "contacts": [
            {
                "id": c.id,
                "first_name": c.first_name,
                "middle_name": c.middle_name,
                "last_name": c.last_name,
                "position": c.position,
                "note": c.note,
                "phones": phones(c.id),
                "emails": addresses(c.id),
            }
            for c in client.contacts
        ],
        "created_at": _iso(client.created_at),
        "updated_at": _iso(client.updated_at),
        "version": client.version,
    }


def client_to_input(client: Client) -> dict[str, Any]:
    """The card in ``ClientIn`` form, so a partial update can be merged and re-validated."""
    data = client_to_dict(client)
    for key in ("id", "created_at", "updated_at", "version"):
        data.pop(key)
    data["phones"] = [{"number": p["number"], "label": p["label"]} for p in data["phones"]]
    data["emails"] = [{"address": e["address"], "label": e["label"]} for e in data["emails"]]
    for contact in data["contacts"]:
        contact["phones"] = [{"number": p["number"], "label": p["label"]} for p in contact["phones"]]
        contact["emails"] = [{"address": e["address"], "label": e["label"]} for e in contact["emails"]]
    return data


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
