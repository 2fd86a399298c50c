"""One data record to a ``ClientIn`` card, or the problems found, each naming its column as written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from crm_core.client_csv.cells import cell, choice, contact, items, labelled, requisite
from crm_core.client_csv.columns import ADDRESS_KIND, Column, requisite_title
from crm_core.client_data import ClientIn, person_name
from crm_core.models import ClientKind

_MAX_DB_INT = 2**31 - 1  # owner_id's column limit: a bigger id stays text and is reported as no such user


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


def requisites_text(requisites: tuple[str, str | None]) -> str:
    """How a problem quotes an (INN, KPP) pair."""
    inn, kpp = requisites
    return f"{inn} / KPP {kpp}" if kpp else inn


def read_row(line: int, cells: list[str], columns: list[Column], titles: dict[str, str]) -> ParsedRow:
    """The record at ``line``; ``titles`` maps each card field to the column title that feeds it."""
    problems: list[str] = []
    card: dict[str, Any] = {
        "addresses": [],
        "phones": [],
        "emails": [],
        "tags": [],
        "contacts": [],
        "custom_fields": {},
    }
    sources: dict[str, list[str]] = {"addresses": [], "phones": [], "emails": [], "contacts": []}
    owner: str | None = None
    extra = [c for c in cells[len(columns) :] if c.strip()]
    if extra:  # the values are shifted; what they would say about the columns is noise
        problem = (
            f"the line has {len(columns) + len(extra)} cells but the header has {len(columns)}: "
            "a value probably contains an unquoted delimiter"
        )
        return ParsedRow(line, None, [problem])
    for column in columns:
        value = cell(cells[column.index]) if column.index < len(cells) else ""
        target, title = column.target, column.title
        if target is None:
            if value:
                card["custom_fields"][title] = value
        elif not value:
            continue
        elif target in ("name", "full_name", "website"):
            card[target] = value
        elif target in ("kind", "status"):
            try:
                card[target] = choice(target, value)
            except ValueError as exc:
                problems.append(f"{title}: {exc}")
        elif target in ("inn", "kpp", "ogrn"):
            card[target] = requisite(value)
        elif target == "inn_kpp":  # "7707083893/773601001"
            inn, _, kpp = value.replace("\\", "/").partition("/")
            card["inn"], card["kpp"] = requisite(inn), requisite(kpp) or None
        elif target in ADDRESS_KIND:
            for text in value.splitlines():
                if text.strip():
                    card["addresses"].append({"kind": ADDRESS_KIND[target], "text": text.strip()})
                    sources["addresses"].append(title)
        elif target in ("phones", "emails"):
            for item in items(value):
                label, text = labelled(item)
                key = "number" if target == "phones" else "address"
                card[target].append({key: text, "label": label})
                sources[target].append(title)
        elif target == "tags":
            card["tags"].extend(items(value))
        elif target == "contacts":
            for text in re.split(r"[;\r\n]+", value):
                if text.strip():
                    card["contacts"].append(contact(text))
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
            problems.append(
                f"{requisite_title(titles, target)}: only Latin letters and digits 0-9 are allowed, got {value!r}"
            )
            card.pop(target)
    return problems


def _validate(
    card: dict[str, Any], titles: dict[str, str], sources: dict[str, list[str]], problems: list[str]
) -> ClientIn | None:
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
                problems.append(f"{requisite_title(titles, target)}: {rest}")
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
    return (
        item.get("address")
        or item.get("number")
        or item.get("text")
        or person_name(item.get("last_name"), item.get("first_name"), item.get("middle_name"))
    )
