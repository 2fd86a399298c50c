"""The header: which card field each column title feeds, and where the header row is."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm_core.client_csv.errors import CsvError
from crm_core.client_csv.records import records

HEADER_SEARCH_RECORDS = 10  # a title or blank lines may precede the header

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "short name",
        "company",
        "organization",
        "organisation",
        "client",
        "наименование",
        "краткое наименование",
        "наименование краткое",
        "название",
        "организация",
        "компания",
        "контрагент",
        "клиент",
    ),
    "full_name": (
        "full name",
        "fullname",
        "legal name",
        "полное наименование",
        "наименование полное",
        "полное название",
        "официальное наименование",
    ),
    "kind": (
        "kind",
        "type",
        "client type",
        "вид",
        "тип",
        "вид контрагента",
        "тип контрагента",
        "юр физ лицо",
        "юридическое физическое лицо",
        "юр лицо физ лицо",
    ),
    "inn": ("inn", "инн", "tax id"),
    "kpp": ("kpp", "кпп"),
    "inn_kpp": ("inn kpp", "инн кпп"),
    "ogrn": ("ogrn", "ogrnip", "огрн", "огрнип", "огрн огрнип"),
    "address_legal": (
        "address",
        "legal address",
        "адрес",
        "юридический адрес",
        "адрес юридический",
        "юр адрес",
        "юр адрес организации",
    ),
    "address_actual": ("actual address", "фактический адрес", "адрес фактический", "факт адрес"),
    "address_postal": ("postal address", "почтовый адрес", "адрес почтовый", "адрес для корреспонденции"),
    "address_other": ("other address", "другой адрес", "прочий адрес"),
    "website": ("website", "web site", "site", "url", "web", "www", "сайт", "веб сайт"),
    "status": ("status", "статус"),
    "tags": ("tags", "tag", "labels", "теги", "тег", "метки", "метка"),
    "phones": ("phone", "phones", "tel", "telephone", "телефон", "телефоны", "тел", "номер телефона"),
    "emails": (
        "email",
        "emails",
        "e mail",
        "e mails",
        "mail",
        "электронная почта",
        "эл почта",
        "адрес электронной почты",
        "почта",
    ),
    "contacts": ("contact", "contacts", "contact person", "контактное лицо", "контактные лица", "контакт", "контакты"),
    "owner": ("owner", "owner id", "manager", "responsible", "ответственный", "менеджер", "ответственный менеджер"),
}
_FIELD_OF = {alias: target for target, aliases in _ALIASES.items() for alias in aliases}
_REPEATABLE = {
    "address_legal",
    "address_actual",
    "address_postal",
    "address_other",
    "tags",
    "phones",
    "emails",
    "contacts",
}
ADDRESS_KIND = {
    "address_legal": "legal",
    "address_actual": "actual",
    "address_postal": "postal",
    "address_other": "other",
}


@dataclass(frozen=True, slots=True)
class Column:
    index: int
    title: str
    target: str | None  # None: stored in custom_fields under ``title``
    blank: bool = False  # no title in the file; reported as unknown only if it holds values


def card_field(title: str) -> str | None:
    """The card field a column title feeds, or None (the column goes to custom_fields)."""
    return _FIELD_OF.get(_key(title))


def requisite_title(titles: dict[str, str], target: str = "inn") -> str:
    """The column an INN, KPP or OGRN problem names: its own, else the combined 'ИНН/КПП' one."""
    return titles.get(target) or titles.get("inn_kpp", target)


def find_header(text: str, delimiter: str) -> tuple[int, list[Column]] | None:
    """The header's line and columns: the first of the leading records that has a name column."""
    seen = 0
    for line, cells in records(text, delimiter):
        if not any(c.strip() for c in cells):
            continue
        columns = _map_header(cells)
        if columns is not None:
            return line, columns
        seen += 1
        if seen >= HEADER_SEARCH_RECORDS:
            return None
    return None


def check_header(columns: list[Column], line: int) -> None:
    """``CsvError`` when two columns would fill the same single-valued field."""
    first: dict[str, Column] = {}
    for column in columns:
        if column.target is None or column.target in _REPEATABLE:
            continue
        if column.target in first:
            other = first[column.target]
            raise CsvError(
                f"line {line}: columns {other.index + 1} ({other.title!r}) and {column.index + 1} "
                f"({column.title!r}) both mean {column.target}; keep one"
            )
        first[column.target] = column
    if "inn_kpp" in first and ("inn" in first or "kpp" in first):
        raise CsvError(f"line {line}: the file has both an 'ИНН/КПП' column and separate ИНН or КПП columns")


def _key(title: str) -> str:
    """Case-insensitive, trimmed, punctuation-blind: "Юр. адрес" and "юр адрес" are one key."""
    text = title.casefold().replace("ё", "е").replace("_", " ")
    return " ".join(re.findall(r"\w+", text))


def _map_header(cells: list[str]) -> list[Column] | None:
    """The columns, or None when no column is a name column (so this is not the header)."""
    columns = []
    custom_titles: set[str] = set()
    for index, raw in enumerate(cells):
        title = raw.strip().lstrip("\ufeff").strip()
        target = card_field(title)
        if target is None:
            title = title or f"column {index + 1}"
            if title in custom_titles:  # two "Примечание" columns must not overwrite each other
                title = f"{title} ({index + 1})"
            custom_titles.add(title)
        columns.append(Column(index, title, target, blank=not raw.strip()))
    if not any(c.target == "name" for c in columns):
        return None
    return columns
