"""One cell's text to card values: Excel's quirks undone, kinds, statuses, labelled items, contacts."""

from __future__ import annotations

import re
from typing import Any

from crm_core.models import ClientKind, ClientStatus

FORMULA_START = tuple("=+-@")

_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.S)
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+(?:\s*(?:доб|ext|x|#)\.?\s*\d+)?$", re.I)
_KINDS = {
    ClientKind.legal_entity: (
        "legalentity",
        "legal",
        "company",
        "organization",
        "organisation",
        "юрлицо",
        "юридическоелицо",
        "юр",
        "организация",
        "юл",
    ),
    ClientKind.sole_trader: ("soletrader", "ip", "ип", "индивидуальныйпредприниматель", "предприниматель"),
    ClientKind.individual: ("individual", "person", "физлицо", "физическоелицо", "частноелицо", "физ", "фл"),
}
_STATUSES = {
    ClientStatus.lead: ("lead", "лид", "потенциальный", "потенциальныйклиент", "новый"),
    ClientStatus.active: ("active", "активный", "активен", "действующий", "действует"),
    ClientStatus.inactive: ("inactive", "неактивный", "неактивен", "архив", "архивный", "недействующий"),
}
# field -> (alias -> value, what a problem says to use instead)
_CHOICES: dict[str, tuple[dict[str, ClientKind | ClientStatus], str]] = {
    "kind": ({a: kind for kind, aliases in _KINDS.items() for a in aliases}, "Юр. лицо, ИП or Физ. лицо"),
    "status": ({a: status for status, aliases in _STATUSES.items() for a in aliases}, "Лид, Активный or Неактивный"),
}


def cell(raw: str) -> str:
    """Undo Excel's text trick (``="0123"``) and the export's formula guard (``'=...``)."""
    value = raw.strip()
    excel = _EXCEL_TEXT.match(value)
    if excel:
        value = excel.group(1).strip()
    if value.startswith("'") and value[1:2] and value[1] in FORMULA_START:
        value = value[1:]
    return value


def choice(target: str, value: str) -> ClientKind | ClientStatus:
    """The kind or status a cell names, whatever its case and punctuation; ``ValueError`` if none."""
    known, hint = _CHOICES[target]
    found = known.get(_letters(value))
    if found is None:
        raise ValueError(f"unknown {target} {value!r} (use {hint})")
    return found


def items(text: str) -> list[str]:
    """The phones, e-mails or tags of one cell, separated by ``,``, ``;`` or line breaks."""
    return [item.strip() for item in re.split(r"[,;\r\n]+", text) if item.strip()]


def labelled(item: str) -> tuple[str, str]:
    """``"mobile: +7 916..."`` -> ("mobile", "+7 916..."); a bare value has an empty label."""
    label, sep, value = item.partition(": ")
    if sep and label.strip() and value.strip() and len(label) <= 50 and not re.search(r"[\d@]", label):
        return label.strip(), value.strip()
    return "", item.strip()


def requisite(value: str) -> str:
    """An INN, KPP or OGRN without the spaces Excel or a person put in."""
    return re.sub(r"\s+", "", value)


def contact(text: str) -> dict[str, Any]:
    """``Surname Name Patronymic, position, phones..., e-mails..., note`` as a contact card."""
    parts = [p.strip() for p in text.split(",")]
    words = parts[0].split()
    if len(words) == 1:
        names = {"first_name": words[0]}
    else:
        names = {
            "last_name": words[0] if words else "",
            "first_name": " ".join(words[1:2]),
            "middle_name": " ".join(words[2:]),
        }
    found: dict[str, Any] = {**names, "phones": [], "emails": []}
    notes: list[str] = []
    for position, part in enumerate(parts[1:], start=1):
        label, value = labelled(part)
        if "@" in value:
            found["emails"].append({"address": value, "label": label})
        elif _is_phone(value):
            found["phones"].append({"number": value, "label": label})
        elif position == 1:
            found["position"] = part
        elif part:
            notes.append(part)
    if notes:
        found["note"] = ", ".join(notes)
    return found


def _letters(value: str) -> str:
    return "".join(ch for ch in value.casefold().replace("ё", "е") if ch.isalnum())


def _is_phone(value: str) -> bool:
    return bool(_PHONE_LIKE.match(value)) and sum(ch.isdigit() for ch in value) >= 5
