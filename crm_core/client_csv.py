"""Counterparties in and out of CSV: what an accountant exports from 1C or Excel, and back.

Reading is pure: bytes -> encoding, delimiter, header mapping, then for every data row
either a validated ``ClientIn`` or the problems found, each naming the column as written
in the file, at the physical line where the record starts.  ``import_clients`` adds what
only the database knows (clients that already have the INN+KPP, owners given by name)
and creates the cards through ``ClientBook`` inside a SAVEPOINT of the caller's session.
``export_clients_csv`` writes the same columns, so an export reads back as the same cards.

Cell conventions, shared by import and export:
- phones, e-mails, tags: several per cell, separated by ``,`` or ``;``; a phone or
  e-mail may carry a label as ``label: value``;
- addresses: one column per kind, one address per line of the cell;
- contacts: one per line (or ``;``), parts separated by ``,``:
  ``Surname Name Patronymic, position, phones..., e-mails..., note``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from charset_normalizer import from_bytes
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from crm_core import audit
from crm_core.audit import Actor
from crm_core.client_data import ClientIn, client_to_dict, person_name
from crm_core.clients import ClientBook
from crm_core.errors import DomainError
from crm_core.models import Client, ClientKind, ClientStatus, User

__all__ = [
    "CsvError",
    "ImportReport",
    "ParsedCsv",
    "ParsedRow",
    "RowError",
    "decode_csv",
    "export_clients_csv",
    "import_clients",
    "read_clients_csv",
]

DELIMITERS = ";,\t|"
CYRILLIC_ENCODINGS = ("cp1251", "koi8_r", "cp866", "iso8859_5")
HEADER_SEARCH_RECORDS = 10  # a title or blank lines may precede the header
_QUERY_CHUNK = 500
_MAX_DB_INT = 2**31 - 1
# Column limits the database enforces but ClientIn does not check.


class CsvError(DomainError):
    """The file as a whole cannot be read: empty, not text, no name column, broken quoting."""


class _NoHeader(CsvError):
    """No name column in this reading of the file; another encoding may still find one."""


@dataclass(frozen=True, slots=True)
class RowError:
    """One bad record: the physical line where it starts (header is line 1) and why."""

    line: int
    reason: str


@dataclass(slots=True)
class ParsedRow:
    """One data record: a card when ``problems`` is empty, else ``client`` is None."""

    line: int
    client: ClientIn | None
    problems: list[str] = field(default_factory=list)
    requisites: tuple[str, str | None] | None = None  # (INN, KPP) as read, for duplicate checks
    owner: str | None = None  # the owner as written, resolved against the users table

    def reject(self, problem: str) -> None:
        self.problems.append(problem)
        self.client = None

    @property
    def error(self) -> RowError | None:
        return RowError(self.line, "; ".join(self.problems)) if self.problems else None


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    encoding: str
    delimiter: str
    header_line: int
    columns: dict[str, str]  # card field -> the (first) column title that feeds it
    unknown_columns: list[str]  # titles stored in custom_fields
    rows: list[ParsedRow]


@dataclass(slots=True)
class ImportReport:
    encoding: str
    delimiter: str
    rows_total: int
    rows_ok: int
    errors: list[RowError]
    imported: int
    created_ids: list[int]
    dry_run: bool
    applied: bool  # False for a dry run and for an all-or-nothing run refused because of errors
    unknown_columns: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "rows_total": self.rows_total,
            "rows_ok": self.rows_ok,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
            "imported": self.imported,
            "created_ids": list(self.created_ids),
            "dry_run": self.dry_run,
            "applied": self.applied,
            "unknown_columns": list(self.unknown_columns),
        }


# -- decoding ------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WORKBOOKS = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
)
_SAVE_AS = "save it from Excel as 'CSV (разделители - точка с запятой)' or 'CSV UTF-8'"
_NOT_TEXT = f"the file is not text (binary data, or UTF-16 without a byte-order mark): {_SAVE_AS}"


def decode_csv(data: bytes) -> tuple[str, str]:
    """The text and the name of its encoding (the likeliest reading); ``CsvError`` for non-text."""
    return _readings(data)[0]


def _readings(data: bytes) -> list[tuple[str, str]]:
    """Every plausible (text, encoding), likeliest first; ``CsvError`` when there is none.

    Single-byte Cyrillic encodings all decode almost any bytes, so the parser takes the
    first reading whose header has a name column.
    """
    if not data:
        raise CsvError("the file is empty")
    for magic, what in _WORKBOOKS:
        if data.startswith(magic):
            raise CsvError(f"this is {what}, not CSV: {_SAVE_AS}")
    wide = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE))
    if b"\x00" in data and not wide:
        raise CsvError(_NOT_TEXT)
    readings = [(text.lstrip("\ufeff").rstrip("\x1a"), encoding) for text, encoding in _decodings(data)]
    if not readings[0][0].strip():
        raise CsvError("the file is empty")
    readings = [(text, encoding) for text, encoding in readings if not _looks_binary(text)]
    if not readings:
        raise CsvError(_NOT_TEXT)
    return readings


def _decodings(data: bytes) -> list[tuple[str, str]]:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return [(data.decode(encoding), codecs.lookup(encoding).name)]
            except UnicodeDecodeError as exc:
                raise CsvError(
                    f"the file starts with a {encoding} byte-order mark but is not {encoding}: {exc.reason}"
                ) from None
    try:
        return [(data.decode("utf-8"), "utf-8")]
    except UnicodeDecodeError:
        pass
    found: dict[str, str] = {}  # codec name -> text, in order of preference
    for match in from_bytes(data, cp_isolation=list(CYRILLIC_ENCODINGS)):
        try:
            found.setdefault(codecs.lookup(match.encoding).name, data.decode(match.encoding))
        except (UnicodeDecodeError, LookupError):
            continue
    # charset-normalizer gives up on short or repetitive text: letter frequencies decide the rest.
    others = []
    for encoding in CYRILLIC_ENCODINGS:
        name = codecs.lookup(encoding).name
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        score = _russian_score(text[:65_536])
        if name not in found and (found or score >= 0.5):
            others.append((score, name, text))
    for _, name, text in sorted(others, key=lambda o: -o[0]):
        found[name] = text
    if not found:
        raise CsvError(
            "cannot tell the file's encoding: it is not UTF-8 and does not read as Russian text in "
            f"Windows-1251, KOI8-R, CP866 or ISO 8859-5; {_SAVE_AS}"
        )
    return [(text, name) for name, text in found.items()]


_CYRILLIC = re.compile("[\u0400-\u04ff]")
_FREQUENT_RUSSIAN = re.compile("[оеаинтсрвлкмдпуяыьгзбч]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _russian_score(text: str) -> float:
    """Share of Cyrillic letters that are common lower-case Russian ones (about 0.9 in real text)."""
    cyrillic = len(_CYRILLIC.findall(text))
    return len(_FREQUENT_RUSSIAN.findall(text)) / cyrillic if cyrillic else 0.0


def _looks_binary(text: str) -> bool:
    return "\x00" in text or len(_CONTROL.findall(text)) > max(2, len(text) // 100)


# -- records and delimiter -----------------------------------------------------------

_SEP_LINE = re.compile(r'^"?sep=(.)"?[ \t]*(\r\n|\r|\n|$)')


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(physical line where the record starts, cells); quoted line breaks are counted."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise CsvError(f"line {start}: cannot read the record ({exc}); is a quote left open?") from None
        yield start, cells


def _sniff(text: str) -> str | None:
    try:
        found = csv.Sniffer().sniff(text[:16_384], delimiters=DELIMITERS).delimiter
    except csv.Error:
        return None
    return found if found in DELIMITERS else None


def _delimiter_candidates(text: str) -> list[str]:
    """The Sniffer's guess if the header has it, then the header's commonest, then the rest.

    A one-column file (no delimiter in the header) gets the delimiter that occurs least,
    so that a name with a comma is not split.
    """
    counts = _count_in_first_line(text)
    sniffed = _sniff(text)
    if not any(counts.values()):
        return sorted(DELIMITERS, key=text.count)
    ordered = [sniffed] if sniffed and counts[sniffed] else []
    ordered += sorted(DELIMITERS, key=lambda d: -counts[d])
    return list(dict.fromkeys(ordered))


def _count_in_first_line(text: str) -> dict[str, int]:
    """How often each delimiter occurs outside quotes in the first non-blank line."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = seen_text = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "\r\n":
            if seen_text:
                break
        elif not quoted and ch in counts:
            counts[ch] += 1
        seen_text = seen_text or not ch.isspace()
    return counts


# -- header ---------------------------------------------------------------------------

_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("name", "short name", "company", "organization", "organisation", "client", "наименование",
             "краткое наименование", "наименование краткое", "название", "организация", "компания",
             "контрагент", "клиент"),
    "full_name": ("full name", "fullname", "legal name", "полное наименование", "наименование полное",
                  "полное название", "официальное наименование"),
    "kind": ("kind", "type", "client type", "вид", "тип", "вид контрагента", "тип контрагента",
             "юр физ лицо", "юридическое физическое лицо", "юр лицо физ лицо"),
    "inn": ("inn", "инн", "tax id"),
    "kpp": ("kpp", "кпп"),
    "inn_kpp": ("inn kpp", "инн кпп"),
    "ogrn": ("ogrn", "ogrnip", "огрн", "огрнип", "огрн огрнип"),
    "address_legal": ("address", "legal address", "адрес", "юридический адрес", "адрес юридический",
                      "юр адрес", "юр адрес организации"),
    "address_actual": ("actual address", "фактический адрес", "адрес фактический", "факт адрес"),
    "address_postal": ("postal address", "почтовый адрес", "адрес почтовый", "адрес для корреспонденции"),
    "address_other": ("other address", "другой адрес", "прочий адрес"),
    "website": ("website", "web site", "site", "url", "web", "www", "сайт", "веб сайт"),
    "status": ("status", "статус"),
    "tags": ("tags", "tag", "labels", "теги", "тег", "метки", "метка"),
    "phones": ("phone", "phones", "tel", "telephone", "телефон", "телефоны", "тел", "номер телефона"),
    "emails": ("email", "emails", "e mail", "e mails", "mail", "электронная почта", "эл почта",
               "адрес электронной почты", "почта"),
    "contacts": ("contact", "contacts", "contact person", "контактное лицо", "контактные лица", "контакт",
                 "контакты"),
    "owner": ("owner", "owner id", "manager", "responsible", "ответственный", "менеджер",
              "ответственный менеджер"),
}
_FIELD_OF = {alias: target for target, aliases in _ALIASES.items() for alias in aliases}
_REPEATABLE = {"address_legal", "address_actual", "address_postal", "address_other", "tags", "phones",
               "emails", "contacts"}
_EXPORT_TITLES = {
    "name": "Наименование", "full_name": "Полное наименование", "kind": "Вид", "inn": "ИНН", "kpp": "КПП",
    "ogrn": "ОГРН", "address_legal": "Юридический адрес", "address_actual": "Фактический адрес",
    "address_postal": "Почтовый адрес", "address_other": "Другой адрес", "phones": "Телефон",
    "emails": "Email", "website": "Сайт", "status": "Статус", "tags": "Теги",
    "contacts": "Контактное лицо", "owner": "Ответственный",
}
_ADDRESS_KIND = {"address_legal": "legal", "address_actual": "actual", "address_postal": "postal",
                 "address_other": "other"}


def _key(title: str) -> str:
    """Case-insensitive, trimmed, punctuation-blind: "Юр. адрес" and "юр адрес" are one key."""
    text = title.casefold().replace("ё", "е").replace("_", " ")
    return " ".join(re.findall(r"\w+", text))


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    title: str
    target: str | None  # None: stored in custom_fields under ``title``
    blank: bool = False  # no title in the file; reported as unknown only if it holds values


def _map_header(cells: list[str]) -> list[_Column] | None:
    """The columns, or None when no column is a name column (so this is not the header)."""
    columns = []
    custom_titles: set[str] = set()
    for index, raw in enumerate(cells):
        title = raw.strip().lstrip("\ufeff").strip()
        target = _FIELD_OF.get(_key(title))
        if target is None:
            title = title or f"column {index + 1}"
            if title in custom_titles:  # two "Примечание" columns must not overwrite each other
                title = f"{title} ({index + 1})"
            custom_titles.add(title)
        columns.append(_Column(index, title, target, blank=not raw.strip()))
    if not any(c.target == "name" for c in columns):
        return None
    return columns


def _find_header(text: str, delimiter: str) -> tuple[int, list[_Column]] | None:
    seen = 0
    for line, cells in _records(text, delimiter):
        if not any(c.strip() for c in cells):
            continue
        columns = _map_header(cells)
        if columns is not None:
            return line, columns
        seen += 1
        if seen >= HEADER_SEARCH_RECORDS:
            return None
    return None


def _check_header(columns: list[_Column], line: int) -> None:
    first: dict[str, _Column] = {}
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


# -- cells ----------------------------------------------------------------------------

_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.S)
_FORMULA_START = tuple("=+-@")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]+(?:\s*(?:доб|ext|x|#)\.?\s*\d+)?$", re.I)
_KINDS = {
    ClientKind.legal_entity: ("legalentity", "legal", "company", "organization", "organisation", "юрлицо",
                              "юридическоелицо", "юр", "организация", "юл"),
    ClientKind.sole_trader: ("soletrader", "ip", "ип", "индивидуальныйпредприниматель", "предприниматель"),
    ClientKind.individual: ("individual", "person", "физлицо", "физическоелицо", "частноелицо", "физ", "фл"),
}
_KIND_OF = {alias: kind for kind, aliases in _KINDS.items() for alias in aliases}
_STATUSES = {
    ClientStatus.lead: ("lead", "лид", "потенциальный", "потенциальныйклиент", "новый"),
    ClientStatus.active: ("active", "активный", "активен", "действующий", "действует"),
    ClientStatus.inactive: ("inactive", "неактивный", "неактивен", "архив", "архивный", "недействующий"),
}
_STATUS_OF = {alias: status for status, aliases in _STATUSES.items() for alias in aliases}
_KIND_TITLES = {
    ClientKind.legal_entity: "Юр. лицо", ClientKind.sole_trader: "ИП", ClientKind.individual: "Физ. лицо"
}
_STATUS_TITLES = {
    ClientStatus.lead: "Лид", ClientStatus.active: "Активный", ClientStatus.inactive: "Неактивный"
}


def _cell(raw: str) -> str:
    """Undo Excel's text trick (``="0123"``) and the export's formula guard (``'=...``)."""
    value = raw.strip()
    excel = _EXCEL_TEXT.match(value)
    if excel:
        value = excel.group(1).strip()
    if value.startswith("'") and value[1:2] and value[1] in "=+-@":
        value = value[1:]
    return value


def _letters(value: str) -> str:
    return "".join(ch for ch in value.casefold().replace("ё", "е") if ch.isalnum())


def _items(cell: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,;\r\n]+", cell) if item.strip()]


def _labelled(item: str) -> tuple[str, str]:
    """``"mobile: +7 916..."`` -> ("mobile", "+7 916..."); a bare value has an empty label."""
    label, sep, value = item.partition(": ")
    if sep and label.strip() and value.strip() and len(label) <= 50 and not re.search(r"[\d@]", label):
        return label.strip(), value.strip()
    return "", item.strip()


def _is_phone(value: str) -> bool:
    return bool(_PHONE_LIKE.match(value)) and sum(ch.isdigit() for ch in value) >= 5


def _requisite(value: str) -> str:
    return re.sub(r"\s+", "", value)


def _contact(text: str) -> dict[str, Any]:
    parts = [p.strip() for p in text.split(",")]
    words = parts[0].split()
    if len(words) == 1:
        names = {"first_name": words[0]}
    else:
        names = {"last_name": words[0] if words else "", "first_name": " ".join(words[1:2]),
                 "middle_name": " ".join(words[2:])}
    contact: dict[str, Any] = {**names, "phones": [], "emails": []}
    notes: list[str] = []
    for position, part in enumerate(parts[1:], start=1):
        label, value = _labelled(part)
        if "@" in value:
            contact["emails"].append({"address": value, "label": label})
        elif _is_phone(value):
            contact["phones"].append({"number": value, "label": label})
        elif position == 1:
            contact["position"] = part
        elif part:
            notes.append(part)
    if notes:
        contact["note"] = ", ".join(notes)
    return contact


# -- rows -----------------------------------------------------------------------------


def read_clients_csv(data: bytes) -> ParsedCsv:
    """Decode, find the delimiter and the header, and turn every record into a card or problems."""
    no_header: _NoHeader | None = None
    for text, encoding in _readings(data):
        try:
            return _read_text(text, encoding)
        except _NoHeader as exc:
            no_header = no_header or exc
    assert no_header is not None
    raise no_header


def _read_text(text: str, encoding: str) -> ParsedCsv:
    sep = _SEP_LINE.match(text)
    if sep and sep.group(1) in DELIMITERS:
        text = sep.group(2) + text[sep.end():]  # keep the line, so numbering stays physical
        candidates = [sep.group(1)]
    else:
        candidates = _delimiter_candidates(text)
    for delimiter in candidates:
        found = _find_header(text, delimiter)
        if found is not None:
            break
    else:
        names = ", ".join(repr(a) for a in ("Наименование", "Название", "Контрагент", "name"))
        raise _NoHeader(f"no name column: the header must have a column such as {names}")
    header_line, columns = found
    _check_header(columns, header_line)
    titles: dict[str, str] = {}
    for column in columns:
        if column.target:
            titles.setdefault(column.target, column.title)
    rows: list[ParsedRow] = []
    unknown: dict[str, None] = {c.title: None for c in columns if c.target is None and not c.blank}
    for line, cells in _records(text, delimiter):
        if line <= header_line or not any(c.strip() for c in cells):
            continue
        row = _read_row(line, cells, columns, titles)
        rows.append(row)
        for column in columns[: len(cells)]:
            if column.blank and cells[column.index].strip():
                unknown.setdefault(column.title, None)
    _mark_duplicates(rows, titles)
    return ParsedCsv(encoding, delimiter, header_line, titles, list(unknown), rows)


def _read_row(line: int, cells: list[str], columns: list[_Column], titles: dict[str, str]) -> ParsedRow:
    problems: list[str] = []
    card: dict[str, Any] = {"addresses": [], "phones": [], "emails": [], "tags": [], "contacts": [],
                            "custom_fields": {}}
    sources: dict[str, list[str]] = {"addresses": [], "phones": [], "emails": [], "contacts": []}
    owner: str | None = None
    extra = [c for c in cells[len(columns):] if c.strip()]
    if extra:  # the values are shifted; what they would say about the columns is noise
        problem = (f"the line has {len(columns) + len(extra)} cells but the header has {len(columns)}: "
                   "a value probably contains an unquoted delimiter")
        return ParsedRow(line, None, [problem])
    for column in columns:
        value = _cell(cells[column.index]) if column.index < len(cells) else ""
        target, title = column.target, column.title
        if target is None:
            if value:
                card["custom_fields"][title] = value
        elif not value:
            continue
        elif target in ("name", "full_name", "website"):
            card[target] = value
        elif target == "kind":
            kind = _KIND_OF.get(_letters(value))
            if kind is None:
                problems.append(f"{title}: unknown kind {value!r} (use Юр. лицо, ИП or Физ. лицо)")
            else:
                card["kind"] = kind
        elif target == "status":
            status = _STATUS_OF.get(_letters(value))
            if status is None:
                problems.append(f"{title}: unknown status {value!r} (use Лид, Активный or Неактивный)")
            else:
                card["status"] = status
        elif target in ("inn", "kpp", "ogrn"):
            card[target] = _requisite(value)
        elif target == "inn_kpp":  # "7707083893/773601001"
            inn, _, kpp = value.replace("\\", "/").partition("/")
            card["inn"], card["kpp"] = _requisite(inn), _requisite(kpp) or None
        elif target in _ADDRESS_KIND:
            for text in value.splitlines():
                if text.strip():
                    card["addresses"].append({"kind": _ADDRESS_KIND[target], "text": text.strip()})
                    sources["addresses"].append(title)
        elif target in ("phones", "emails"):
            for item in _items(value):
                label, text = _labelled(item)
                key = "number" if target == "phones" else "address"
                card[target].append({key: text, "label": label})
                sources[target].append(title)
        elif target == "tags":
            card["tags"].extend(_items(value))
        elif target == "contacts":
            for text in re.split(r"[;\r\n]+", value):
                if text.strip():
                    card["contacts"].append(_contact(text))
                    sources["contacts"].append(title)
        elif target == "owner":
            if re.fullmatch(r"[0-9]+", value) and int(value) <= _MAX_DB_INT:
                card["owner_id"] = int(value)
            owner = value
    if not card.get("name"):
        problems.append(f"{titles['name']}: empty; every client needs a name")
    _infer_kind(card)
    problems.extend(_requisite_shape(card, titles))
    client = _validate(card, titles, sources, problems)
    requisites = (card["inn"], card.get("kpp") or None) if card.get("inn") else None
    return ParsedRow(line, None if problems else client, problems, requisites, owner)


def _infer_kind(card: dict[str, Any]) -> None:
    """No kind column (or a blank cell): a 12-digit INN or an "ИП ..." name says who it is."""
    if "kind" in card:
        return
    name = card.get("name", "")
    inn = card.get("inn") or ""
    if re.match(r"(?i)^(ип|индивидуальный предприниматель)\s", name) or len(card.get("ogrn") or "") == 15:
        card["kind"] = ClientKind.sole_trader
    elif len(inn) == 12:
        card["kind"] = ClientKind.individual


def _requisite_shape(card: dict[str, Any], titles: dict[str, str]) -> list[str]:
    """Non-ASCII digits ("²", "١") slip past ``str.isdigit``; say so before the check digits do."""
    problems = []
    for target in ("inn", "kpp", "ogrn"):
        value = card.get(target)
        if value and not value.isascii():
            title = titles.get(target) or titles.get("inn_kpp", target)
            problems.append(f"{title}: only Latin letters and digits 0-9 are allowed, got {value!r}")
            card.pop(target)
    return problems


def _validate(card: dict[str, Any], titles: dict[str, str], sources: dict[str, list[str]],
              problems: list[str]) -> ClientIn | None:
    """The card, or None with every problem added.

    Pydantic skips the card-level checks (INN, KPP, OGRN) when a field fails, so a row
    with a bad e-mail is validated once more without the failing fields: the accountant
    then sees the bad INN in the same report, not after fixing the e-mail.
    """
    attempt = {**card, "name": card.get("name") or "-"}
    for _ in range(2):
        try:
            client = ClientIn.model_validate(attempt)
        except ValidationError as exc:
            for problem in _explain(exc, card, titles, sources):
                if problem not in problems:
                    problems.append(problem)
            failed = {error["loc"][0] for error in exc.errors() if error["loc"]}
            if not failed:
                return None
            attempt = {k: v for k, v in attempt.items() if k not in failed}
            attempt["name"] = attempt.get("name") or "-"
        else:
            return None if problems else client
    return None


def _explain(
    exc: ValidationError, card: dict[str, Any], titles: dict[str, str], sources: dict[str, list[str]]
) -> list[str]:
    """Pydantic's errors as "<column as written>: <what is wrong>"."""
    problems = []
    for error in exc.errors():
        loc, message = error["loc"], error["msg"].removeprefix("Value error, ")
        if not loc:  # the card's own validator: "inn: ...", "kpp: ...", "ogrn: ..."
            target, sep, rest = message.partition(": ")
            if sep and target in ("inn", "kpp", "ogrn"):
                problems.append(f"{titles.get(target) or titles.get('inn_kpp', target)}: {rest}")
            else:
                problems.append(message)
            continue
        head = str(loc[0])
        if head == "name" and not card.get("name"):
            continue  # already said: empty
        if head in sources and len(loc) > 1 and isinstance(loc[1], int) and loc[1] < len(sources[head]):
            problems.append(f"{sources[head][loc[1]]}: {message}: {_shown(card, loc)}")
        else:
            problems.append(f"{titles.get(head, head)}: {message}")
    return problems


def _shown(card: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """The offending value: the innermost phone, address or contact that ``loc`` points into."""
    node: Any = card
    item: dict[str, Any] = {}
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict):
            item = node
    if isinstance(node, str):
        return node
    return item.get("address") or item.get("number") or item.get("text") or person_name(
        item.get("last_name"), item.get("first_name"), item.get("middle_name"))


def _requisites_text(inn: str, kpp: str | None) -> str:
    return f"{inn} / KPP {kpp}" if kpp else inn


def _mark_duplicates(rows: list[ParsedRow], titles: dict[str, str]) -> None:
    first: dict[tuple[str, str | None], int] = {}
    for row in rows:
        if row.requisites is None:
            continue
        if row.requisites in first:
            inn, kpp = row.requisites
            title = titles.get("inn") or titles.get("inn_kpp", "inn")
            row.reject(f"{title}: INN {_requisites_text(inn, kpp)} is already on line {first[row.requisites]}")
        else:
            first[row.requisites] = row.line


# -- importing ------------------------------------------------------------------------


async def import_clients(
    book: ClientBook,
    data: bytes,
    actor: Actor,
    *,
    dry_run: bool,
    all_or_nothing: bool = True,
) -> ImportReport:
    """Validate a CSV file against the rules and the database, then (unless ``dry_run``) create.

    Runs in the caller's session and leaves committing to the caller.  With
    ``all_or_nothing`` one bad row means nothing is created; otherwise the good rows are
    created and the bad ones reported.  Creation happens under SAVEPOINTs, so a failure
    mid-way never leaves part of the file behind.
    """
    parsed = read_clients_csv(data)
    await _check_against_database(book, parsed)
    rows = parsed.rows
    created: list[int] = []
    refused = dry_run or (all_or_nothing and any(r.problems for r in rows))
    if not refused:
        good = [r for r in rows if r.client is not None]
        if all_or_nothing:
            created = await _create_all(book, good, actor)
            refused = len(created) != len(good)
        else:
            created = await _create_each(book, good, actor)
    errors = [r.error for r in rows if r.error is not None]
    report = ImportReport(
        encoding=parsed.encoding,
        delimiter=parsed.delimiter,
        rows_total=len(rows),
        rows_ok=len(rows) - len(errors),
        errors=errors,
        imported=len(created),
        created_ids=created,
        dry_run=dry_run,
        applied=not refused,
        unknown_columns=parsed.unknown_columns,
    )
    if not dry_run:
        audit.record(
            book.session, actor, "import", "client", None, source="csv", rows_total=report.rows_total,
            rows_ok=report.rows_ok, errors=len(errors), imported=report.imported, applied=report.applied,
            all_or_nothing=all_or_nothing, encoding=report.encoding,
        )
    return report


async def _create_all(book: ClientBook, rows: list[ParsedRow], actor: Actor) -> list[int]:
    """Every row or none: one SAVEPOINT; the first failure undoes the rows before it."""
    created: list[int] = []
    current: ParsedRow | None = None
    try:
        async with book.session.begin_nested():
            for current in rows:
                assert current.client is not None
                created.append((await book.create(current.client, actor, source="csv")).id)
    except (DomainError, DBAPIError) as exc:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise
        if current is not None:
            current.reject(_failure(exc))
        return []
    return created


async def _create_each(book: ClientBook, rows: list[ParsedRow], actor: Actor) -> list[int]:
    """Good rows only: a SAVEPOINT per row, so one failure loses that row alone."""
    created: list[int] = []
    for row in rows:
        assert row.client is not None
        try:
            async with book.session.begin_nested():
                created.append((await book.create(row.client, actor, source="csv")).id)
        except (DomainError, DBAPIError) as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            row.reject(_failure(exc))
    return created


def _failure(exc: Exception) -> str:
    if isinstance(exc, DBAPIError):
        return f"the database refused the card: {str(exc.orig).splitlines()[0] if exc.orig else exc}"
    return str(exc)


async def _check_against_database(book: ClientBook, parsed: ParsedCsv) -> None:
    """Clients that already have the INN+KPP, and owners that are not users."""
    session = book.session
    inns = sorted({r.requisites[0] for r in parsed.rows if r.requisites})
    existing: dict[tuple[str, str | None], tuple[int, str]] = {}
    for start in range(0, len(inns), _QUERY_CHUNK):
        result = await session.execute(
            select(Client.id, Client.name, Client.inn, Client.kpp)
            .where(Client.inn.in_(inns[start:start + _QUERY_CHUNK]), Client.deleted_at.is_(None))
            .order_by(Client.id)
        )
        for client_id, name, inn, kpp in result:
            existing.setdefault((inn, kpp), (client_id, name))
    title = parsed.columns.get("inn") or parsed.columns.get("inn_kpp", "inn")
    for row in parsed.rows:
        if row.requisites in existing:
            client_id, name = existing[row.requisites]
            inn, kpp = row.requisites
            row.reject(f"{title}: client {client_id} ({name}) already has INN {_requisites_text(inn, kpp)}")
    owners = [r for r in parsed.rows if r.owner]
    if not owners:
        return
    users = (await session.execute(select(User.id, User.username, User.full_name))).all()
    by_id = {u.id for u in users}
    by_login = {u.username.casefold(): u.id for u in users}
    by_name: dict[str, list[int]] = {}
    for u in users:
        if u.full_name:
            by_name.setdefault(" ".join(u.full_name.casefold().split()), []).append(u.id)
    owner_title = parsed.columns["owner"]
    for row in owners:
        assert row.owner is not None
        wanted = row.owner.strip()
        if re.fullmatch(r"[0-9]+", wanted):
            user_id = int(wanted) if int(wanted) in by_id else None
        else:
            named = by_name.get(" ".join(wanted.casefold().split()), [])
            user_id = by_login.get(wanted.casefold()) or (named[0] if len(named) == 1 else None)
            if user_id is None and len(named) > 1:
                row.reject(f"{owner_title}: several users are called {wanted!r}; give the user name")
                continue
        if user_id is None:
            row.reject(f"{owner_title}: no user {wanted!r}")
        elif row.client is not None:
            row.client = row.client.model_copy(update={"owner_id": user_id})


# -- exporting ------------------------------------------------------------------------

_SAFE_NUMBERISH = re.compile(r"^[\d\s()+\-.,;/]*$")


def export_clients_csv(clients: Iterable[Client]) -> bytes:
    """UTF-8 with BOM, ``;``-separated: what Russian Excel opens directly and ``import_clients`` reads."""
    cards = [client_to_dict(c) for c in clients]
    standard = list(_EXPORT_TITLES)
    custom: dict[str, str] = {}  # custom field key -> column title
    for card in cards:
        for name in card["custom_fields"]:
            if name not in custom:  # a key that reads as a card column would come back as that column
                clash = _key(name) in _FIELD_OF or not name.strip() or name != name.strip()
                custom[name] = f"{name.strip()} (доп.)" if clash else name
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", quotechar='"', lineterminator="\r\n")
    writer.writerow([_EXPORT_TITLES[t] for t in standard] + list(custom.values()))
    for card in cards:
        row = [_export_cell(card, target) for target in standard]
        row += [_custom_value(card["custom_fields"].get(name)) for name in custom]
        writer.writerow([_guard_formula(v) for v in row])
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")


def _export_cell(card: dict[str, Any], target: str) -> str:
    if target == "kind":
        return _KIND_TITLES[ClientKind(card["kind"])]
    if target == "status":
        return _STATUS_TITLES[ClientStatus(card["status"])]
    if target in _ADDRESS_KIND:
        return "\n".join(a["text"] for a in card["addresses"] if a.get("kind") == _ADDRESS_KIND[target])
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
    if value.startswith(_FORMULA_START) and not (value[0] in "+-" and _SAFE_NUMBERISH.match(value)):
        return "'" + value
    return value
