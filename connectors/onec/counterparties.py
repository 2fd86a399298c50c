"""The counterparty catalogue of one 1C infobase, as the sync engine's ``CounterpartyPort``.

Turns 1C items into ``Counterparty`` records and record fields back into OData properties:
references to folders become paths ("Покупатели / Москва"), the contact-information tabular
part becomes phones, e-mails and addresses.  A PATCH of that tabular part replaces it whole,
so a write keeps every row it does not change (other kinds, Skype, comments) as it was.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import phonenumbers

from connectors.onec.client import OdataClient, any_of, string
from connectors.onec.errors import OnecNotPublished, OnecSchemaMismatch
from connectors.onec.field_maps import FieldMap, published_properties
from crm_core.onec.port import PeerError, Progress, RemoteVersion, VersionMoved
from crm_core.onec.records import Counterparty, Remote, email_key, phone_key, text

EMPTY_REF = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
VERSIONS_PAGE = 5000  # the cheap list is three short columns: big pages, few requests
FETCH_CHUNK = 25  # keys per or-chain: keeps the URL well under web servers' limits
PHONE, EMAIL, ADDRESS = "Телефон", "АдресЭлектроннойПочты", "Адрес"
# The predefined contact-information kinds of a counterparty (Catalog_ВидыКонтактнойИнформации).
KIND_NAMES = {
    "phone": "ТелефонКонтрагента",
    "email": "EmailКонтрагента",
    "legal": "ЮрАдресКонтрагента",
    "actual": "ФактАдресКонтрагента",
}
FOLDER_SEPARATOR = " / "


class OnecCounterparties:
    def __init__(self, client: OdataClient, fields: FieldMap, *, region: str = "RU", folder: str | None = None) -> None:
        self.client = client
        self.fields = fields
        self.region = region
        self.folder = folder  # where new items go, as a path; None: the top level
        self._kinds: dict[str, str] = {}  # "phone"/"email"/"legal"/"actual" -> Вид_Key
        self._folder_paths: dict[str, str] = {}
        self._folder_keys: dict[str, str] = {}

    @property
    def entity_set(self) -> str:
        return self.fields.entity_set

    async def prepare(self) -> None:
        """Check that the catalogue is published with the mapped properties; read kinds and folders."""
        published = published_properties(await self.client.metadata())
        if self.entity_set not in published:
            raise OnecNotPublished(self.entity_set)
        missing = [name for name in self.fields.properties() if name not in published[self.entity_set]]
        if missing:
            raise OnecSchemaMismatch(
                f"1C's {self.entity_set} has no propert{'y' if len(missing) == 1 else 'ies'} {', '.join(missing)}: "
                "check the connection's kind and field_map against the configuration"
            )
        if self.fields.contact_info and self.fields.contact_kinds in published:
            rows = await self.client.entries(self.fields.contact_kinds, select=["Ref_Key", "PredefinedDataName"])
            by_name = {row.get("PredefinedDataName"): row["Ref_Key"] for row in rows}
            self._kinds = {kind: by_name[name] for kind, name in KIND_NAMES.items() if name in by_name}
        await self._read_folders()

    async def _read_folders(self) -> None:
        rows = await self.client.entries(
            self.entity_set, select=["Ref_Key", "Parent_Key", self.fields.name], filter="IsFolder eq true"
        )
        parents = {row["Ref_Key"]: (row.get("Parent_Key") or EMPTY_REF, text(row.get(self.fields.name)) or "")
                   for row in rows}  # fmt: skip

        def path(key: str, depth: int = 0) -> str:
            parent, name = parents[key]
            if parent in parents and depth < 32:
                return path(parent, depth + 1) + FOLDER_SEPARATOR + name
            return name

        self._folder_paths = {key: path(key) for key in parents}
        self._folder_keys = {p: key for key, p in sorted(self._folder_paths.items())}

    # -- reading -------------------------------------------------------------------------

    async def versions(self, progress: Progress | None = None) -> dict[str, RemoteVersion]:
        select = ["Ref_Key", "DataVersion", "DeletionMark"]
        result: dict[str, RemoteVersion] = {}
        async for page in self._paged(select, VERSIONS_PAGE):
            for row in page:
                result[row["Ref_Key"]] = RemoteVersion(row["DataVersion"], bool(row.get("DeletionMark")))
            if progress is not None:
                progress(len(page))
        return result

    async def pages(self, progress: Progress | None = None) -> AsyncIterator[list[Remote]]:
        async for page in self._paged(self._full_select(), self.client.connection.page_size):
            if progress is not None:
                progress(len(page))
            yield [self.remote(row) for row in page]

    async def _paged(self, select: list[str], size: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of elements by Ref_Key (1C sends no next link), a few requested at once."""
        total = await self.client.count(self.entity_set, "IsFolder eq false")
        window = max(1, self.client.connection.concurrency)
        for first in range(0, total + size, size * window):
            skips = [s for s in range(first, first + size * window, size) if s < total + size]
            pages = await asyncio.gather(
                *(
                    self.client.entries(self.entity_set, select=select, filter="IsFolder eq false", orderby="Ref_Key",
                                     top=size, skip=skip)
                    for skip in skips
                )
            )  # fmt: skip
            for page in pages:
                if page:
                    yield page
            if any(len(page) < size for page in pages):
                return

    async def fetch(self, refs: Sequence[str]) -> list[Remote]:
        chunks = [list(refs[i : i + FETCH_CHUNK]) for i in range(0, len(refs), FETCH_CHUNK)]
        select = self._full_select()
        pages = await asyncio.gather(
            *(self.client.entries(self.entity_set, select=select, filter=any_of("Ref_Key", chunk)) for chunk in chunks)
        )
        return [self.remote(row) for page in pages for row in page]

    async def find(self, record: Counterparty, marker: str) -> list[Remote]:
        if record.inn:
            wanted = f"{self.fields.inn} eq {string(record.inn)}"
            if self.fields.kpp:
                wanted += f" and {self.fields.kpp} eq {string(record.kpp or '')}"
        else:
            wanted = f"{self.fields.name} eq {string(record.name)}"
        wanted = f"IsFolder eq false and {wanted}"
        rows = await self.client.entries(self.entity_set, select=self._full_select(), filter=wanted)
        return [self.remote(row) for row in rows if marker in str(row.get(self.fields.comment, ""))]

    def _full_select(self) -> list[str]:
        return ["Ref_Key", "DataVersion", "DeletionMark", "Parent_Key", "Code", *self.fields.properties()]

    def remote(self, row: dict[str, Any]) -> Remote:
        f = self.fields
        phones: set[str] = set()
        emails: set[str] = set()
        addresses: dict[str, str] = {}
        for line in row.get(f.contact_info) or [] if f.contact_info else []:
            kind, value = self._contact(line)
            if kind == "phone":
                phones.add(phone_key(value, self.region))
            elif kind == "email":
                emails.add(email_key(value))
            elif kind in ("legal", "actual"):
                addresses.setdefault(kind, value)
        kpp = text(row.get(f.kpp)) if f.kpp else None
        kind_value = str(row.get(f.kind) or "")
        record = Counterparty(
            name=text(row.get(f.name)) or "",
            full_name=(text(row.get(f.full_name)) or "") if f.full_name else "",
            kind=f.kinds_read.get(kind_value) or ("legal" if kpp else "person"),
            inn=text(row.get(f.inn)) if f.inn else None,
            kpp=kpp,
            ogrn=text(row.get(f.ogrn)) if f.ogrn else None,
            phones=tuple(sorted(phones)),
            emails=tuple(sorted(emails)),
            legal_address=text(addresses.get("legal")),
            actual_address=text(addresses.get("actual")),
            group=self._folder_paths.get(row.get("Parent_Key") or EMPTY_REF),
            deleted=bool(row.get("DeletionMark")),
        )
        return Remote(
            ref_key=row["Ref_Key"],
            data_version=str(row.get("DataVersion", "")),
            record=record,
            code=str(row.get("Code", "")),
            comment=str(row.get(f.comment, "")) if f.comment else "",
        )

    def _contact(self, line: dict[str, Any]) -> tuple[str | None, str]:
        """("phone" | "email" | "legal" | "actual" | None, the value) of a contact-information row."""
        kind_key = line.get("Вид_Key")
        presentation = str(line.get("Представление") or "").strip()
        match line.get("Тип"):
            case "Телефон":
                return "phone", str(line.get("НомерТелефона") or presentation)
            case "АдресЭлектроннойПочты":
                return "email", str(line.get("АдресЭП") or presentation)
            case "Адрес":
                if not self._kinds:
                    return "legal", presentation
                for kind in ("legal", "actual"):
                    if kind_key == self._kinds.get(kind):
                        return kind, presentation
        return None, presentation

    # -- writing -------------------------------------------------------------------------

    async def create(self, record: Counterparty, marker: str) -> Remote:
        values = self._properties(record.values(), [], creating=True)
        values["IsFolder"] = False
        if self.fields.comment:
            values[self.fields.comment] = f"Создан в hub {marker}"
        if "Parent_Key" not in values and self.folder:
            values["Parent_Key"] = self._folder_key(self.folder)
        return self.remote(await self.client.post(self.entity_set, values))

    async def update(self, ref_key: str, expected_version: str, changes: Mapping[str, Any]) -> Remote:
        current = await self.client.get(self.entity_set, ref_key, select=self._full_select())
        if current is None:
            raise PeerError(f"the item {ref_key} no longer exists in 1C")
        if str(current.get("DataVersion")) != expected_version:
            raise VersionMoved(f"the item {ref_key} changed in 1C meanwhile")
        rows = list(current.get(self.fields.contact_info) or []) if self.fields.contact_info else []
        values = self._properties(changes, rows, creating=False)
        return self.remote(await self.client.patch(self.entity_set, ref_key, values))

    def _properties(self, changes: Mapping[str, Any], rows: list[dict[str, Any]], *, creating: bool) -> dict[str, Any]:
        """OData properties for these record fields; contact rows rebuilt from ``rows`` when touched."""
        f = self.fields
        values: dict[str, Any] = {}
        plain = {"name": f.name, "full_name": f.full_name, "inn": f.inn, "kpp": f.kpp, "ogrn": f.ogrn}
        for name, prop in plain.items():
            if name in changes and prop:
                values[prop] = changes[name] or ""
        if "kind" in changes:
            values[f.kind] = f.kinds_written[changes["kind"]]
        if "deleted" in changes:
            values["DeletionMark"] = bool(changes["deleted"])
        if changes.get("group") or ("group" in changes and not creating):
            values["Parent_Key"] = self._folder_key(changes["group"]) if changes["group"] else EMPTY_REF
        contact = ("phones", "emails", "legal_address", "actual_address")
        if f.contact_info and any(name in changes for name in contact):
            values[f.contact_info] = self._rows(rows, changes)
        return values

    def _folder_key(self, path: str) -> str:
        try:
            return self._folder_keys[path]
        except KeyError:
            raise PeerError(f"1C has no counterparty folder {path!r}") from None

    def _rows(self, rows: list[dict[str, Any]], changes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The contact tabular part with these changes: unchanged rows kept, rows renumbered."""
        kept: list[dict[str, Any]] = []
        have: dict[str, set[str]] = {"phone": set(), "email": set()}
        for line in rows:
            kind, value = self._contact(line)
            if kind == "phone" and "phones" in changes:
                key = phone_key(value, self.region)
                if key not in changes["phones"] or key in have["phone"]:
                    continue
                have["phone"].add(key)
            elif kind == "email" and "emails" in changes:
                key = email_key(value)
                if key not in changes["emails"] or key in have["email"]:
                    continue
                have["email"].add(key)
            elif kind in ("legal", "actual") and f"{kind}_address" in changes:
                continue
            kept.append({k: v for k, v in line.items() if k != "LineNumber"})
        for number in changes.get("phones", ()):
            if number not in have["phone"]:
                kept.append(self._phone_row(number))
        for address in changes.get("emails", ()):
            if address not in have["email"]:
                kept.append(self._row("email", EMAIL, address, АдресЭП=address))
        for kind in ("legal", "actual"):
            address = changes.get(f"{kind}_address")
            if address:
                kept.append(self._row(kind, ADDRESS, address))
        return [{"LineNumber": str(n), **line} for n, line in enumerate(kept, 1)]

    def _phone_row(self, number: str) -> dict[str, Any]:
        shown, national = number, number.lstrip("+")
        try:
            parsed = phonenumbers.parse(number, self.region)
            shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            national = str(parsed.national_number)
        except phonenumbers.NumberParseException:
            pass
        return self._row("phone", PHONE, shown, НомерТелефона=number, НомерТелефонаБезКодов=national)

    def _row(self, kind: str, type_name: str, shown: str, **extra: str) -> dict[str, Any]:
        line: dict[str, Any] = {
            "Тип": type_name,
            "Вид_Key": self._kinds.get(kind, EMPTY_REF),
            "Представление": shown,
            "Значение": json.dumps({"value": shown, "type": type_name}, ensure_ascii=False),
        }
        line.update(extra)
        return line
