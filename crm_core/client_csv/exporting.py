"""Cards to CSV: the columns the reader understands, so an export reads back as the same cards."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from crm_core.client_csv.cells import FORMULA_START
from crm_core.client_csv.columns import ADDRESS_KIND, card_field
from crm_core.client_data import client_to_dict, person_name
from crm_core.models import Client, ClientKind, ClientStatus

_TITLES = {
    "name": "Наименование",
    "full_name": "Полное наименование",
    "kind": "Вид",
    "inn": "ИНН",
    "kpp": "КПП",
    "ogrn": "ОГРН",
    "address_legal": "Юридический адрес",
    "address_actual": "Фактический адрес",
    "address_postal": "Почтовый адрес",
    "address_other": "Другой адрес",
    "phones": "Телефон",
    "emails": "Email",
    "website": "Сайт",
    "status": "Статус",
    "tags": "Теги",
    "contacts": "Контактное лицо",
    "owner": "Ответственный",
}
_KIND_TITLES = {ClientKind.legal_entity: "Юр. лицо", ClientKind.sole_trader: "ИП", ClientKind.individual: "Физ. лицо"}
_STATUS_TITLES = {ClientStatus.lead: "Лид", ClientStatus.active: "Активный", ClientStatus.inactive: "Неактивный"}
_SAFE_NUMBERISH = re.compile(r"^[\d\s()+\-.,;/]*$")


def export_clients_csv(clients: Iterable[Client]) -> bytes:
    """UTF-8 with BOM, ``;``-separated: what Russian Excel opens directly and ``import_clients`` reads."""
    cards = [client_to_dict(c) for c in clients]
    custom: dict[str, str] = {}  # custom field key -> column title
    for card in cards:
        for name in card["custom_fields"]:
            if name not in custom:  # a key that reads as a card column would come back as that column
                clash = card_field(name) is not None or not name.strip() or name != name.strip()
                custom[name] = f"{name.strip()} (доп.)" if clash else name
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", quotechar='"', lineterminator="\r\n")
    writer.writerow(list(_TITLES.values()) + list(custom.values()))
    for card in cards:
        row = [_export_cell(card, target) for target in _TITLES]
        row += [_custom_value(card["custom_fields"].get(name)) for name in custom]
        writer.writerow([_guard_formula(v) for v in row])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def _export_cell(card: dict[str, Any], target: str) -> str:
    if target == "kind":
        return _KIND_TITLES[ClientKind(card["kind"])]
    if target == "status":
        return _STATUS_TITLES[ClientStatus(card["status"])]
    if target in ADDRESS_KIND:
        return "\n".join(a["text"] for a in card["addresses"] if a.get("kind") == ADDRESS_KIND[target])
    if target == "phones":
        return ", ".join(_with_label(p["label"], p["number"]) for p in card["phones"])
    if target == "emails":
        return ", ".join(_with_label(e["label"], e["address"]) for e in card["emails"])
    if target == "tags":
        return ", ".join(card["tags"])
    if target == "contacts":
        return "\n".join(_export_contact(c) for c in card["contacts"])
    if target == "owner":
        return "" if card["owner_id"] is None else str(card["owner_id"])
    value = card[target]
    return "" if value is None else str(value)


def _export_contact(contact: dict[str, Any]) -> str:
    parts = [person_name(contact["last_name"], contact["first_name"], contact["middle_name"])]
    if contact["position"] or contact["note"]:
        parts.append(contact["position"])
    parts += [_with_label(p["label"], p["number"]) for p in contact["phones"]]
    parts += [_with_label(e["label"], e["address"]) for e in contact["emails"]]
    if contact["note"]:
        parts.append(contact["note"])
    return ", ".join(parts)


def _with_label(label: str, value: str) -> str:
    return f"{label}: {value}" if label else value


def _custom_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _guard_formula(value: str) -> str:
    """Excel runs a cell starting with = + - @ as a formula; phone numbers are left alone."""
    if value.startswith(FORMULA_START) and not (value[0] in "+-" and _SAFE_NUMBERISH.match(value)):
        return "'" + value
    return value
