"""Record fields onto a hub card: what ``ClientBook`` is asked to create or change.

Only the card's own phones, e-mails and legal/actual addresses are synced; a kept phone keeps
the number as typed and its label, contacts and other addresses are left alone.
"""

from __future__ import annotations

from typing import Any

from crm_core.client_data import ClientIn
from crm_core.models import Client
from crm_core.onec.records import GROUP_FIELD, Counterparty, client_kind, kind_of, phone_key


def new_card(record: Counterparty) -> ClientIn:
    """A card for a counterparty first seen in 1C (ValidationError when the hub's rules refuse it)."""
    addresses = [
        {"kind": kind, "text": value}
        for kind, value in (("legal", record.legal_address), ("actual", record.actual_address))
        if value
    ]
    return ClientIn.model_validate(
        {
            "kind": client_kind(record.kind, None, record.ogrn),
            "name": record.name or record.full_name or "(без названия)",
            "full_name": record.full_name,
            "inn": record.inn,
            "kpp": record.kpp,
            "ogrn": record.ogrn,
            "addresses": addresses,
            "phones": [{"number": p} for p in record.phones],
            "emails": [{"address": e} for e in record.emails],
            "custom_fields": {GROUP_FIELD: record.group} if record.group else {},
        }
    )


def card_changes(client: Client, to_hub: dict[str, Any], region: str) -> dict[str, Any]:
    """``ClientBook.update`` changes for these record fields (``deleted`` is not among them)."""
    changes: dict[str, Any] = {}
    for name in ("name", "full_name", "inn", "kpp", "ogrn"):
        if name in to_hub:
            changes[name] = to_hub[name] or ("" if name in ("name", "full_name") else None)
    if "kind" in to_hub or "ogrn" in to_hub:
        ogrn = to_hub.get("ogrn", client.ogrn)
        changes["kind"] = client_kind(to_hub.get("kind", kind_of(client.kind)), client.kind, ogrn).value
    if "phones" in to_hub:
        wanted = set(to_hub["phones"])
        kept = [p for p in client.phones if p.contact_id is None and phone_key(p.raw, region) in wanted]
        have = {phone_key(p.raw, region) for p in kept}
        changes["phones"] = [{"number": p.raw, "label": p.label} for p in kept] + [
            {"number": number} for number in to_hub["phones"] if number not in have
        ]
    if "emails" in to_hub:
        wanted = set(to_hub["emails"])
        kept_emails = [e for e in client.emails if e.contact_id is None and e.address_lower in wanted]
        have = {e.address_lower for e in kept_emails}
        changes["emails"] = [{"address": e.address, "label": e.label} for e in kept_emails] + [
            {"address": address} for address in to_hub["emails"] if address not in have
        ]
    if "legal_address" in to_hub or "actual_address" in to_hub:
        addresses = [dict(a) for a in client.addresses]
        for kind in ("legal", "actual"):
            key = f"{kind}_address"
            if key in to_hub:
                addresses = [a for a in addresses if a.get("kind") != kind]
                if to_hub[key]:
                    addresses.append({"kind": kind, "text": to_hub[key]})
        changes["addresses"] = addresses
    if "group" in to_hub:
        custom = {k: v for k, v in client.custom_fields.items() if k != GROUP_FIELD}
        if to_hub["group"]:
            custom[GROUP_FIELD] = to_hub["group"]
        changes["custom_fields"] = custom
    return changes
