"""Where each synced field lives in a configuration's counterparty catalogue.

Configurations name things differently (Enterprise Accounting 3.0 says
``ЮридическоеФизическоеЛицо``, Trade Management 11 ``ЮрФизЛицо``); a preset per ``kind``,
overridable field by field from the config, and checked against ``$metadata`` before a sync.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, cast
from xml.etree import ElementTree


@dataclass(frozen=True, slots=True)
class FieldMap:
    entity_set: str = "Catalog_Контрагенты"
    name: str = "Description"
    full_name: str = "НаименованиеПолное"
    kind: str = "ЮридическоеФизическоеЛицо"
    inn: str = "ИНН"
    kpp: str = "КПП"
    ogrn: str = "РегистрационныйНомер"
    contact_info: str = "КонтактнаяИнформация"
    comment: str = "Комментарий"
    contact_kinds: str = "Catalog_ВидыКонтактнойИнформации"
    # 1C's enum values as the sync's two kinds, and back.
    kinds_read: dict[str, str] = field(default_factory=lambda: {"ЮридическоеЛицо": "legal", "ФизическоеЛицо": "person"})
    kinds_written: dict[str, str] = field(
        default_factory=lambda: {"legal": "ЮридическоеЛицо", "person": "ФизическоеЛицо"}
    )

    def properties(self) -> list[str]:
        """The mapped properties the catalogue must have (a field mapped to "" is not synced)."""
        names = (self.name, self.full_name, self.kind, self.inn, self.kpp, self.ogrn, self.contact_info, self.comment)
        return [n for n in names if n]


PRESETS: dict[str, FieldMap] = {
    "accounting_3": FieldMap(),
    # Trade Management 11 (unverified against a live base: $metadata is checked before each sync).
    "trade_11": FieldMap(
        kind="ЮрФизЛицо",
        ogrn="",
        kinds_read={
            "ЮрЛицо": "legal",
            "ЮрЛицоНеРезидент": "legal",
            "ИндивидуальныйПредприниматель": "person",
            "ФизЛицо": "person",
        },
        kinds_written={"legal": "ЮрЛицо", "person": "ФизЛицо"},
    ),
}
OVERRIDABLE = ("entity_set", "name", "full_name", "kind", "inn", "kpp", "ogrn", "contact_info", "comment")


def field_map(kind: str, overrides: dict[str, str]) -> FieldMap:
    """The preset for ``kind`` with these properties renamed (names checked by the config)."""
    return dataclasses.replace(PRESETS[kind], **cast(dict[str, Any], overrides))


def published_properties(edmx: str) -> dict[str, set[str]]:
    """Entity set name -> its type's property names (plain and navigation), from ``$metadata``."""
    root = ElementTree.fromstring(edmx)
    types: dict[str, set[str]] = {}
    sets: dict[str, str] = {}
    for element in root.iter():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "EntityType":
            types[element.get("Name", "")] = {
                child.get("Name", "")
                for child in element
                if child.tag.rsplit("}", 1)[-1] in ("Property", "NavigationProperty")
            }
        elif tag == "EntitySet":
            sets[element.get("Name", "")] = element.get("EntityType", "").rsplit(".", 1)[-1]
    return {name: types.get(type_name, set()) for name, type_name in sets.items()}
