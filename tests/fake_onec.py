"""A fake 1C:Enterprise infobase publishing the standard OData interface over real HTTP.

1C cannot run here, so the hub's OData client and sync engine are tested against this server:
the real addressing (``/<publication>/odata/standard.odata/``, percent-encoded Cyrillic set
names, ``(guid'...')`` keys), HTTP Basic with UTF-8 credentials, the JSON shapes (``odata.metadata``,
``value``, ``odata.count`` as a string, ``odata.error`` with a Russian message), ``$metadata`` as
OData v3 EDMX in namespace ``StandardODATA``, the query options the hub uses, and the failures a
production base has (slow answers, 500 ``-1``, a proxy's 502/503/504 page, a cut connection
before or after the write was committed). What each behaviour mirrors, and how sure we are of
it, is in ``tests/FAKE_ONEC.md``.

Usage::

    fake = FakeOnec()
    url = await fake.start()                      # http://127.0.0.1:PORT/base/odata/standard.odata/
    ref = fake.add(COUNTERPARTIES, counterparty(Description="Ромашка ООО", ИНН="7707083893"))["Ref_Key"]
    fake.inject(Fault("drop_after_commit", method="PATCH"))
    ... run the hub's client against url with BasicAuth("Администратор", "секрет", encoding="utf-8") ...
    fake.writes()                                 # what reached the base
    await fake.stop()

Standalone, for benchmarks: ``python -m tests.fake_onec --port 8081 --counterparties 100000``
prints the URL on its first line; ``/_fake/seed``, ``/_fake/edit``, ``/_fake/stats``,
``/_fake/requests`` and ``/_fake/faults`` (no auth, outside the publication) steer it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import functools
import gc
import itertools
import json
import operator
import random
import re
import signal
import struct
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_plus

from aiohttp import web

EMPTY_REF = "00000000-0000-0000-0000-000000000000"
EMPTY_DATE = "0001-01-01T00:00:00"
COUNTERPARTIES = "Catalog_Контрагенты"
CONTACT_KINDS = "Catalog_ВидыКонтактнойИнформации"
INVOICES = "Document_СчетНаОплатуПокупателю"
SHIPMENTS = "Document_РеализацияТоваровУслуг"

INTERNAL_ERROR = "Произошла внутренняя ошибка OData сервиса. Обратитесь к администратору."
WRITE_METHODS = frozenset({"POST", "PATCH", "DELETE", "MERGE"})

_JSON = "application/json;charset=utf-8"
_NAMESPACE = "StandardODATA"


# -- the interface the hub's tests use ------------------------------------------------------


@dataclass
class Fault:
    """A failure to inject: the first ``skip`` matching requests pass, the next ``times`` fail."""

    kind: str  # "delay" | "status" | "drop" | "drop_after_commit"
    method: str | None = None
    path: str | None = None  # substring of the decoded path+query
    skip: int = 0
    times: int = 1
    seconds: float = 0.0
    status: int = 500
    code: str = "-1"
    message: str = INTERNAL_ERROR


@dataclass
class RecordedRequest:
    method: str
    entity_set: str | None
    key: str | None
    query: dict[str, str]
    status: int  # 0 when dropped
    kind: str = ""  # what the path addressed: "collection", "count", "entry", "action", "metadata", "service"


class ODataFault(Exception):
    """An ``odata.error`` answer: HTTP status, 1C's internal error code and its message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


# -- the published model (Enterprise Accounting 3.0 field names) ----------------------------

_GUID, _STR, _BOOL, _DATE, _NUM, _LINE = (
    "Edm.Guid",
    "Edm.String",
    "Edm.Boolean",
    "Edm.DateTime",
    "Edm.Double",
    "Edm.Int64",
)
_DEFAULTS: dict[str, Any] = {_GUID: EMPTY_REF, _STR: "", _BOOL: False, _DATE: EMPTY_DATE, _NUM: 0}
_GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(:\d{2})?(\.\d+)?$")


@dataclass(frozen=True)
class _Schema:
    """One entity set: scalar properties in 1C's order, tabular parts with their columns."""

    name: str
    props: dict[str, str]
    parts: dict[str, dict[str, str]] = field(default_factory=dict)
    code_format: str | None = None  # catalogs numbered "00-000001"
    number_format: str | None = None  # documents numbered "00БП-000001"

    def row_type(self, part: str) -> str:
        return f"{self.name}_{part}_RowType"


_CONTACT_ROW = {
    "LineNumber": _LINE,
    "Тип": _STR,
    "Вид_Key": _GUID,
    "Представление": _STR,
    "ЗначенияПолей": _STR,
    "Значение": _STR,
    "АдресЭП": _STR,
    "НомерТелефона": _STR,
    "НомерТелефонаБезКодов": _STR,
    "Страна": _STR,
    "Регион": _STR,
    "Город": _STR,
}
_EXTRA_ROW = {"LineNumber": _LINE, "Свойство_Key": _GUID, "Значение": _STR, "Значение_Type": _STR}
_DOCUMENT = {
    "Ref_Key": _GUID,
    "DataVersion": _STR,
    "DeletionMark": _BOOL,
    "Number": _STR,
    "Date": _DATE,
    "Posted": _BOOL,
    "Контрагент_Key": _GUID,
    "СуммаДокумента": _NUM,
    "Комментарий": _STR,
}

SCHEMAS: dict[str, _Schema] = {
    COUNTERPARTIES: _Schema(
        COUNTERPARTIES,
        {
            "Ref_Key": _GUID,
            "DataVersion": _STR,
            "DeletionMark": _BOOL,
            "Parent_Key": _GUID,
            "IsFolder": _BOOL,
            "Code": _STR,
            "Description": _STR,
            "НаименованиеПолное": _STR,
            "ОбособленноеПодразделение": _BOOL,
            "ЮридическоеФизическоеЛицо": _STR,
            "ГоловнойКонтрагент_Key": _GUID,
            "ИНН": _STR,
            "КПП": _STR,
            "РегистрационныйНомер": _STR,
            "Комментарий": _STR,
            "ДатаРегистрации": _DATE,
            "КонтактнаяИнформация": "",
            "ДополнительныеРеквизиты": "",
            "Predefined": _BOOL,
            "PredefinedDataName": _STR,
        },
        {"КонтактнаяИнформация": _CONTACT_ROW, "ДополнительныеРеквизиты": _EXTRA_ROW},
        code_format="00-{:06d}",
    ),
    CONTACT_KINDS: _Schema(
        CONTACT_KINDS,
        {
            "Ref_Key": _GUID,
            "DataVersion": _STR,
            "DeletionMark": _BOOL,
            "Parent_Key": _GUID,
            "IsFolder": _BOOL,
            "Description": _STR,
            "Тип": _STR,
            "Используется": _BOOL,
            "Predefined": _BOOL,
            "PredefinedDataName": _STR,
        },
    ),
    INVOICES: _Schema(INVOICES, dict(_DOCUMENT), number_format="00БП-{:06d}"),
    SHIPMENTS: _Schema(SHIPMENTS, dict(_DOCUMENT), number_format="00БП-{:06d}"),
}
for _schema in SCHEMAS.values():  # a tabular part is a property typed as a collection of its rows
    for _part in _schema.parts:
        _schema.props[_part] = f"Collection({_NAMESPACE}.{_schema.row_type(_part)})"

_KINDS = (  # PredefinedDataName, Description, Тип
    ("ТелефонКонтрагента", "Телефон", "Телефон"),
    ("EmailКонтрагента", "Адрес электронной почты", "АдресЭлектроннойПочты"),
    ("ЮрАдресКонтрагента", "Юридический адрес", "Адрес"),
    ("ФактАдресКонтрагента", "Фактический адрес", "Адрес"),
)


# -- values ---------------------------------------------------------------------------------


def _data_version(n: int) -> str:
    """1C's DataVersion is an opaque base64 string ("AAAAAQAAAAA="); a counter makes it change."""
    return base64.b64encode(struct.pack(">II", n, 0)).decode()


def _normalise_date(text: str) -> str | None:
    match = _DATE_RE.match(text)
    return f"{match.group(1)}{match.group(2) or ':00'}" if match else None


def _checked(edm: str, name: str, value: Any) -> Any:
    """The value as stored, or 400: a typo in a GUID or a date must fail loudly, as in 1C."""
    if edm == _GUID and isinstance(value, str) and _GUID_RE.match(value):
        return value.lower()
    if edm == _DATE and isinstance(value, str) and (normalised := _normalise_date(value)):
        return normalised
    if edm == _BOOL and isinstance(value, bool):
        return value
    if edm == _NUM and isinstance(value, int | float) and not isinstance(value, bool):
        return value
    if edm == _STR and isinstance(value, str):
        return value
    raise ODataFault(400, "4", f"Неверное значение свойства {name}: {json.dumps(value, ensure_ascii=False)}")


def _checked_rows(schema: _Schema, part: str, rows: Any, *, numbered_by_user: bool) -> list[dict[str, Any]]:
    """A whole tabular part. Over OData every row must carry LineNumber (1C answers 500 -1)."""
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ODataFault(400, "4", f"Неверное значение свойства {part}: ожидается массив строк")
    columns = schema.parts[part]
    out = []
    for index, row in enumerate(rows, start=1):
        if "LineNumber" not in row and not numbered_by_user:
            raise ODataFault(500, "-1", INTERNAL_ERROR)
        stored = {"LineNumber": str(row.get("LineNumber", index))}
        for column, edm in columns.items():
            if column != "LineNumber":
                stored[column] = _checked(edm, f"{part}.{column}", row[column]) if column in row else _DEFAULTS[edm]
        if unknown := sorted(set(row) - set(columns)):
            raise ODataFault(400, "10", f"Свойство '{unknown[0]}' не найдено в {schema.row_type(part)}")
        out.append(stored)
    return out


def _apply(schema: _Schema, entry: dict[str, Any], changes: Mapping[str, Any], *, by_user: bool) -> None:
    """Write ``changes`` into ``entry``; Ref_Key and DataVersion belong to the base, not the writer."""
    for name, value in changes.items():
        if name not in schema.props:
            raise ODataFault(400, "10", f"Свойство '{name}' не найдено у типа {_NAMESPACE}.{schema.name}")
        if name in ("Ref_Key", "DataVersion"):
            continue
        if name in schema.parts:
            entry[name] = _checked_rows(schema, name, value, numbered_by_user=by_user)
        else:
            entry[name] = _checked(schema.props[name], name, value)


def _blank(schema: _Schema) -> dict[str, Any]:
    return {name: [] if name in schema.parts else _DEFAULTS[edm] for name, edm in schema.props.items()}


def _copy(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {name: [dict(row) for row in value] if isinstance(value, list) else value for name, value in entry.items()}


# -- $filter: parsed once per request into a closure ----------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<guid>guid'(?P<g>[^']*)')|(?P<datetime>datetime'(?P<d>[^']*)')"
    r"|(?P<string>'(?P<s>(?:[^']|'')*)')"
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?(?!\w))"
    r"|(?P<punct>[(),])|(?P<word>[^\s(),']+))"
)
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FUNCTIONS = {"substringof": _BOOL, "startswith": _BOOL, "endswith": _BOOL, "cast": _GUID}


@dataclass(frozen=True)
class _Lit:
    value: Any
    edm: str | None  # None for null


@dataclass(frozen=True)
class _Prop:
    name: str
    edm: str


@dataclass(frozen=True)
class _Cmp:
    op: str
    left: _Node
    right: _Node


@dataclass(frozen=True)
class _Bool:
    op: str  # "and" | "or"
    items: tuple[_Node, ...]


@dataclass(frozen=True)
class _Not:
    item: _Node


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[_Node, ...]


_Node = _Lit | _Prop | _Cmp | _Bool | _Not | _Call
_Getter = Callable[[Mapping[str, Any]], Any]


def _filter_error(detail: str) -> ODataFault:
    return ODataFault(400, "14", f"Ошибка разбора опции запроса $filter: {detail}")


def _tokenize(text: str) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        if not match:
            raise _filter_error(f"неожиданный символ в позиции {position + 1}")
        if match.group("guid") is not None:
            tokens.append(("guid", match.group("g")))
        elif match.group("datetime") is not None:
            tokens.append(("datetime", match.group("d")))
        elif match.group("string") is not None:
            tokens.append(("string", match.group("s").replace("''", "'")))
        else:
            kind = next(k for k in ("number", "punct", "word") if match.group(k) is not None)
            tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _FilterParser:
    """Recursive descent over OData v3 $filter: or < and < not < comparison < operand."""

    def __init__(self, text: str, schema: _Schema) -> None:
        self._tokens = _tokenize(text)
        self._at = 0
        self._schema = schema

    def parse(self) -> _Node:
        node = self._or()
        if self._at != len(self._tokens):
            raise _filter_error(f"лишний фрагмент '{self._tokens[self._at][1]}'")
        return node

    def _peek(self) -> tuple[str, Any] | None:
        return self._tokens[self._at] if self._at < len(self._tokens) else None

    def _take(self) -> tuple[str, Any]:
        token = self._peek()
        if token is None:
            raise _filter_error("неожиданный конец выражения")
        self._at += 1
        return token

    def _accept(self, kind: str, value: str) -> bool:
        if self._peek() == (kind, value):
            self._at += 1
            return True
        return False

    def _expect(self, value: str) -> None:
        if not self._accept("punct", value):
            raise _filter_error(f"ожидается '{value}'")

    def _or(self) -> _Node:
        items = [self._and()]
        while self._accept("word", "or"):
            items.append(self._and())
        return items[0] if len(items) == 1 else _Bool("or", tuple(items))

    def _and(self) -> _Node:
        items = [self._not()]
        while self._accept("word", "and"):
            items.append(self._not())
        return items[0] if len(items) == 1 else _Bool("and", tuple(items))

    def _not(self) -> _Node:
        if self._accept("word", "not"):
            return _Not(self._not())
        left = self._operand()
        token = self._peek()
        if token and token[0] == "word" and token[1] in _COMPARISONS:
            self._at += 1
            return _Cmp(token[1], left, self._operand())
        return left

    def _operand(self) -> _Node:
        kind, value = self._take()
        if (kind, value) == ("punct", "("):
            node = self._or()
            self._expect(")")
            return node
        if kind == "guid":
            if not _GUID_RE.match(value):
                raise _filter_error(f"неверный литерал guid'{value}'")
            return _Lit(value.lower(), _GUID)
        if kind == "datetime":
            if (normalised := _normalise_date(value)) is None:
                raise _filter_error(f"неверный литерал datetime'{value}'")
            return _Lit(normalised, _DATE)
        if kind == "string":
            return _Lit(value, _STR)
        if kind == "number":
            digits = value.rstrip("mMdDfFlL")
            return _Lit(float(digits) if any(c in digits for c in ".eE") else int(digits), _NUM)
        if kind == "word":
            return self._word(value)
        raise _filter_error(f"неожиданный символ '{value}'")

    def _word(self, word: str) -> _Node:
        if word in ("true", "false"):
            return _Lit(word == "true", _BOOL)
        if word == "null":
            return _Lit(None, None)
        if self._accept("punct", "("):
            return self._call(word)
        if "/" in word:
            raise ODataFault(400, "0", f"Возможность не поддерживается: путь '{word}' в $filter")
        edm = self._schema.props.get(word)
        if edm is None:
            raise _filter_error(f"свойство '{word}' не найдено у типа {_NAMESPACE}.{self._schema.name}")
        if word in self._schema.parts:
            raise ODataFault(400, "0", f"Возможность не поддерживается: табличная часть '{word}' в $filter")
        return _Prop(word, edm)

    def _call(self, name: str) -> _Node:
        if name not in _FUNCTIONS:
            raise ODataFault(400, "21", f"Вызов нереализованной функции {name}")
        args = [self._or()]
        while self._accept("punct", ","):
            args.append(self._or())
        self._expect(")")
        if len(args) != 2:
            raise ODataFault(400, "21", f"Неверное количество аргументов функции {name}")
        return _Call(name, tuple(args))


def _edm_of(node: _Node) -> str | None:
    if isinstance(node, _Lit | _Prop):
        return node.edm
    if isinstance(node, _Call):
        return _FUNCTIONS[node.name]
    return _BOOL


def _fold(getter: _Getter) -> _Getter:
    """1C's query language compares strings without regard to case."""
    return lambda entry: (getter(entry) or "").casefold()


def _compile(node: _Node) -> _Getter:
    if isinstance(node, _Lit):
        value = node.value
        return lambda _entry: value
    if isinstance(node, _Prop):
        return operator.itemgetter(node.name)
    if isinstance(node, _Not):
        inner = _compile(node.item)
        return lambda entry: not inner(entry)
    if isinstance(node, _Bool):
        items = tuple(_compile(item) for item in node.items)
        if node.op == "or":
            return lambda entry: any(item(entry) for item in items)
        return lambda entry: all(item(entry) for item in items)
    if isinstance(node, _Call):
        return _compile_call(node)
    return _compile_comparison(node)


def _compile_call(node: _Call) -> _Getter:
    if node.name == "cast":
        return _compile(node.args[0])
    first, second = (_fold(_compile(arg)) for arg in node.args)
    if node.name == "substringof":
        return lambda entry: first(entry) in second(entry)
    if node.name == "startswith":
        return lambda entry: first(entry).startswith(second(entry))
    return lambda entry: first(entry).endswith(second(entry))


def _compile_comparison(node: _Cmp) -> _Getter:
    left_edm, right_edm = _edm_of(node.left), _edm_of(node.right)
    if left_edm and right_edm and left_edm != right_edm:
        raise _filter_error(f"несовместимые типы {left_edm} и {right_edm} в операции {node.op}")
    compare = _COMPARISONS[node.op]
    left, right = _compile(node.left), _compile(node.right)
    if _STR in (left_edm, right_edm):
        left, right = _fold(left), _fold(right)
    if isinstance(node.right, _Lit) and isinstance(node.left, _Prop):
        name, value = node.left.name, right({})
        if node.op in ("eq", "ne") and left_edm != _STR:
            return lambda entry: compare(entry[name], value)
    if node.op in ("eq", "ne"):
        return lambda entry: compare(left(entry), right(entry))

    def ordered(entry: Mapping[str, Any]) -> bool:
        a, b = left(entry), right(entry)
        return a is not None and b is not None and compare(a, b)

    return ordered


def _ref_keys(node: _Node) -> set[str] | None:
    """The Ref_Keys an or-chain of ``Ref_Key eq guid'...'`` names, so it is answered by lookups."""
    if isinstance(node, _Cmp) and node.op == "eq":
        sides = (node.left, node.right)
        props = [side for side in sides if isinstance(side, _Prop)]
        lits = [side for side in sides if isinstance(side, _Lit)]
        if props and lits and props[0].name == "Ref_Key" and lits[0].edm == _GUID:
            return {lits[0].value}
        return None
    if isinstance(node, _Bool):
        sets = [_ref_keys(item) for item in node.items]
        if node.op == "or":
            return None if any(s is None for s in sets) else set().union(*sets)  # type: ignore[arg-type]
        known = [s for s in sets if s is not None]
        return set.intersection(*known) if known else None
    return None


@dataclass(frozen=True)
class _Filter:
    text: str
    predicate: _Getter
    candidates: set[str] | None


def _parse_filter(text: str, schema: _Schema) -> _Filter:
    node = _FilterParser(text, schema).parse()
    if _edm_of(node) != _BOOL:
        raise _filter_error("выражение должно быть логическим")
    return _Filter(text, _compile(node), _ref_keys(node))


# -- $select, $orderby, $top, $skip ----------------------------------------------------------


def _option_error(option: str, detail: str) -> ODataFault:
    return ODataFault(400, "14", f"Ошибка разбора опции запроса {option}: {detail}")


def _parse_select(text: str, schema: _Schema) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A projection keeping only the selected properties (Ref_Key too only if selected)."""
    wanted: dict[str, set[str] | None] = {}
    for item in (part.strip() for part in text.split(",")):
        if item == "*":
            wanted.update(dict.fromkeys(schema.props))
            continue
        name, _, column = item.partition("/")
        if name not in schema.props or (column and column not in schema.parts.get(name, {})):
            raise _option_error("$select", f"свойство '{item}' не найдено у типа {_NAMESPACE}.{schema.name}")
        if not column:
            wanted[name] = None
        elif wanted.get(name, set()) is not None:
            wanted.setdefault(name, set()).add(column)  # type: ignore[union-attr]
    plan = [(name, wanted[name]) for name in schema.props if name in wanted]
    if all(columns is None for _, columns in plan):
        names = [name for name, _ in plan]
        return lambda entry: {name: entry[name] for name in names}

    def project(entry: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, columns in plan:
            value = entry[name]
            out[name] = value if columns is None else [{c: row[c] for c in row if c in columns} for row in value]
        return out

    return project


def _parse_orderby(text: str, schema: _Schema) -> tuple[tuple[str, bool], ...]:
    """(property, descending) pairs; strings sort without regard to case, as 1C's collation does."""
    order = []
    for item in (part.strip() for part in text.split(",")):
        name, _, direction = item.partition(" ")
        direction = direction.strip().lower() or "asc"
        if name not in schema.props or name in schema.parts or direction not in ("asc", "desc"):
            raise _option_error("$orderby", f"'{item}'")
        order.append((name, direction == "desc"))
    return tuple(order)


def _parse_count(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit():
        raise _option_error(option, f"ожидается неотрицательное целое, получено '{text}'")
    return int(text)


# -- storage --------------------------------------------------------------------------------


class _Table:
    """Entries of one set kept in Ref_Key order, with the last few query results cached.

    Paging re-runs the same $filter/$orderby with a growing $skip; the cache (dropped on any
    write) keeps each page O($top) instead of a scan of the whole catalogue.
    """

    _CACHE_SIZE = 8

    def __init__(self, schema: _Schema) -> None:
        self.schema = schema
        self.rows: dict[str, dict[str, Any]] = {}
        self.keys: list[str] = []
        self._cache: OrderedDict[tuple[str, tuple[tuple[str, bool], ...]], list[dict[str, Any]]] = OrderedDict()

    def put(self, entry: dict[str, Any]) -> None:
        key = entry["Ref_Key"]
        if key not in self.rows:
            bisect.insort(self.keys, key)
        self.rows[key] = entry
        self._cache.clear()

    def put_many(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            self.rows[entry["Ref_Key"]] = entry
        self.keys = sorted(self.rows)
        self._cache.clear()

    def remove(self, key: str) -> None:
        del self.rows[key]
        del self.keys[bisect.bisect_left(self.keys, key)]
        self._cache.clear()

    def select(self, flt: _Filter | None, order: tuple[tuple[str, bool], ...]) -> list[dict[str, Any]]:
        if flt is not None and flt.candidates is not None:
            found = [self.rows[k] for k in sorted(flt.candidates) if k in self.rows]
            return self._sorted([entry for entry in found if flt.predicate(entry)], order)
        cache_key = (flt.text if flt else "", order)
        if (cached := self._cache.get(cache_key)) is not None:
            self._cache.move_to_end(cache_key)
            return cached
        entries = [self.rows[key] for key in self.keys]
        if flt is not None:
            entries = [entry for entry in entries if flt.predicate(entry)]
        result = self._cache[cache_key] = self._sorted(entries, order)
        if len(self._cache) > self._CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def _sorted(self, entries: list[dict[str, Any]], order: tuple[tuple[str, bool], ...]) -> list[dict[str, Any]]:
        if order in ((), (("Ref_Key", False),)):
            return entries
        for name, descending in reversed(order):  # stable sorts, last key first
            entries = sorted(entries, key=_sort_key(name, self.schema.props[name] == _STR), reverse=descending)
        return entries


def _sort_key(name: str, fold: bool) -> Callable[[Mapping[str, Any]], Any]:
    if fold:
        return lambda entry: entry[name].casefold()
    return operator.itemgetter(name)


# -- generated counterparties ---------------------------------------------------------------

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_REGIONS = {
    "77": ("Москва г", "495"),
    "78": ("Санкт-Петербург г", "812"),
    "50": ("Московская обл", "498"),
    "66": ("Свердловская обл", "343"),
    "16": ("Татарстан Респ", "843"),
    "52": ("Нижегородская обл", "831"),
    "54": ("Новосибирская обл", "383"),
    "23": ("Краснодарский край", "861"),
    "63": ("Самарская обл", "846"),
    "74": ("Челябинская обл", "351"),
    "61": ("Ростовская обл", "863"),
    "24": ("Красноярский край", "391"),
}

_REGION_CODES = tuple(_REGIONS)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_STEMS = _words(
    "ТЕХНО СТРОЙ ТОРГ ЛОГИСТИК СНАБ ПРОМ АГРО МЕД ИНВЕСТ СЕРВИС АЛЬФА ВЕКТОР СИБИРЬ УРАЛ ВОЛГА "
    "СЕВЕР ГРАНИТ МЕРИДИАН СФЕРА ЛИДЕР КАПИТАЛ РЕСУРС ПРОФИ ЭНЕРГО ТРАНС МОНТАЖ КОМПЛЕКТ ГАРАНТ"
)
_FORMS = (("ООО", "Общество с ограниченной ответственностью"), ("АО", "Акционерное общество"))
_SURNAMES = _words("Иванов Смирнов Кузнецов Попов Васильев Петров Соколов Михайлов Новиков Федоров Морозов Волков")
_MALE = _words("Александр Сергей Дмитрий Андрей Алексей Максим Иван Михаил Николай Павел")
_FEMALE = _words("Анна Елена Ольга Наталья Татьяна Ирина Мария Светлана Юлия Екатерина")
_FATHERS = _words("Александров Сергеев Дмитриев Андреев Алексеев Иванов Михайлов Николаев Павлов Петров")
_LATIN = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        _words("a b v g d e e zh z i y k l m n o p r s t u f kh ts ch sh sch _ y _ e yu ya"),
        strict=True,
    )
)


def _check_digit(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10)


def _inn10(rng: random.Random, region: str) -> str:
    body = f"{region}{rng.randrange(1, 100):02d}{rng.randrange(100000):05d}"
    return body + _check_digit(body, _INN10_WEIGHTS)


def _inn12(rng: random.Random, region: str) -> str:
    body = f"{region}{rng.randrange(1, 100):02d}{rng.randrange(1000000):06d}"
    body += _check_digit(body, _INN12_WEIGHTS_1)
    return body + _check_digit(body, _INN12_WEIGHTS_2)


def _ogrn(rng: random.Random, region: str, *, sole_trader: bool) -> str:
    year = f"{rng.randrange(2, 24):02d}"
    body = f"3{year}{region}{rng.randrange(10**9):09d}" if sole_trader else f"1{year}{region}{rng.randrange(10**7):07d}"
    return body + str(int(body) % (13 if sole_trader else 11) % 10)


@functools.cache
def _latin(text: str) -> str:
    return "".join(_LATIN.get(c, c) for c in text.lower()).replace("_", "").replace(" ", "")


def _random_key(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _person(rng: random.Random) -> tuple[str, str, str]:
    surname, female = rng.choice(_SURNAMES), rng.random() < 0.4
    if female:
        return surname + "а", rng.choice(_FEMALE), rng.choice(_FATHERS) + "на"
    return surname, rng.choice(_MALE), rng.choice(_FATHERS) + "ич"


_EMPTY_CONTACT = {name: _DEFAULTS.get(edm, "") for name, edm in _CONTACT_ROW.items()}


def _contact(
    kind_type: str, kind: str, shown: str, value: Mapping[str, str] | None = None, **columns: str
) -> dict[str, Any]:
    """One КонтактнаяИнформация row; Значение is the JSON form newer БСП versions keep.

    The JSON is written by hand: generated values hold no quotes, and json.dumps per row
    doubled the time to seed 100,000 counterparties.
    """
    extra = "".join(f', "{name}": "{text}"' for name, text in (value or {}).items())
    row = dict(_EMPTY_CONTACT)
    row.update(columns)
    row.update(Тип=kind_type, Вид_Key=kind, Представление=shown)
    row["Значение"] = f'{{"value": "{shown}", "type": "{kind_type}"{extra}}}'
    return row


def _phone_row(kind: str, area: str, rng: random.Random) -> dict[str, Any]:
    number = f"{rng.randrange(1000000, 10000000)}"
    shown = f"+7 {area} {number[:3]}-{number[3:5]}-{number[5:]}"
    value = {"countryCode": "7", "areaCode": area, "number": number}
    return _contact("Телефон", kind, shown, value, НомерТелефона=f"+7{area}{number}", НомерТелефонаБезКодов=number)


def _email_row(kind: str, address: str) -> dict[str, Any]:
    return _contact("АдресЭлектроннойПочты", kind, address, АдресЭП=address)


def _address_row(kind: str, region: str, rng: random.Random) -> dict[str, Any]:
    region_name = _REGIONS[region][0]
    shown = f"{rng.randrange(100000, 700000)}, {region_name}, Ленина ул, дом № {rng.randrange(1, 120)}"
    return _contact("Адрес", kind, shown, {"country": "РОССИЯ"}, Страна="РОССИЯ", Регион=region_name)


def _contacts(rng: random.Random, kinds: Mapping[str, str], region: str, mail: str) -> list[dict[str, Any]]:
    area = _REGIONS[region][1]
    rows = [_phone_row(kinds["ТелефонКонтрагента"], area, rng) for _ in range(rng.choice((1, 1, 2)))]
    if rng.random() < 0.7:
        rows.append(_email_row(kinds["EmailКонтрагента"], mail))
    if rng.random() < 0.5:
        rows.append(_address_row(kinds["ЮрАдресКонтрагента"], region, rng))
    for line, row in enumerate(rows, start=1):
        row["LineNumber"] = str(line)
    return rows


def _default_kinds() -> dict[str, str]:
    return {name: str(uuid.uuid5(uuid.NAMESPACE_OID, f"1c-contact-kind:{name}")) for name, _, _ in _KINDS}


def counterparty(**fields: Any) -> dict[str, Any]:
    """A Catalog_Контрагенты entry with every standard field of Enterprise Accounting 3.0 present.

    Empty Ref_Key, Code and DataVersion are filled by the fake when the entry is added.
    """
    entry = _blank(SCHEMAS[COUNTERPARTIES])
    entry["ЮридическоеФизическоеЛицо"] = "ЮридическоеЛицо"
    entry.update(fields)
    return entry


def _legal(rng: random.Random, region: str, kinds: Mapping[str, str]) -> dict[str, Any]:
    name = rng.choice(_STEMS) + rng.choice(("", "-", "")) + rng.choice(_STEMS)
    short, full = rng.choice(_FORMS)
    inn = _inn10(rng, region)
    registered = date(2002, 7, 1) + timedelta(days=rng.randrange(8000))
    return counterparty(
        Description=f"{name} {short}",
        НаименованиеПолное=f'{full} "{name}"',
        ИНН=inn,
        КПП=f"{inn[:4]}01001",
        РегистрационныйНомер=_ogrn(rng, region, sole_trader=False),
        ДатаРегистрации=f"{registered.isoformat()}T00:00:00" if rng.random() < 0.5 else EMPTY_DATE,
        КонтактнаяИнформация=_contacts(rng, kinds, region, f"info@{_latin(name)}.ru"),
    )


def _branch(rng: random.Random, head: Mapping[str, Any], kinds: Mapping[str, str]) -> dict[str, Any]:
    region = rng.choice(list(_REGIONS))
    city = _REGIONS[region][0]
    return counterparty(
        Description=f"{head['Description']} (филиал, {city})",
        НаименованиеПолное=f"{head['НаименованиеПолное']}, филиал ({city})",
        ОбособленноеПодразделение=True,
        ГоловнойКонтрагент_Key=head["Ref_Key"],
        ИНН=head["ИНН"],
        КПП=f"{region}{rng.randrange(1, 100):02d}43001",
        РегистрационныйНомер=head["РегистрационныйНомер"],
        КонтактнаяИнформация=_contacts(rng, kinds, region, f"filial{rng.randrange(100)}@{_latin(city)}.ru"),
    )


def _natural_person(rng: random.Random, region: str, kinds: Mapping[str, str], *, trader: bool) -> dict[str, Any]:
    surname, first, father = _person(rng)
    full_name = f"{surname} {first} {father}"
    mail = f"{_latin(surname)}.{_latin(first)[0]}{rng.randrange(100)}@mail.ru"
    return counterparty(
        Description=f"{full_name} ИП" if trader else full_name,
        НаименованиеПолное=f"Индивидуальный предприниматель {full_name}" if trader else full_name,
        ЮридическоеФизическоеЛицо="ФизическоеЛицо",
        ИНН=_inn12(rng, region),
        РегистрационныйНомер=_ogrn(rng, region, sole_trader=True) if trader else "",
        КонтактнаяИнформация=_contacts(rng, kinds, region, mail),
    )


def generate_counterparties(
    count: int,
    seed: int,
    kinds: Mapping[str, str] | None = None,
    taken: set[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """``count`` realistic counterparties, the same for the same seed, with unique (INN, KPP).

    About 80% legal entities (a few of them branches sharing the head's INN), 15% sole traders
    and 5% private persons. ``kinds`` maps PredefinedDataName to the base's contact-kind keys;
    ``taken`` holds (INN, KPP) pairs already in the base, and is extended.
    """
    with _gc_paused():
        return _generate(random.Random(seed), count, kinds or _default_kinds(), taken if taken is not None else set())


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Bulk creation allocates millions of small objects; the cyclic GC rescanning them all
    would take a third of the time to seed 100,000 counterparties, and none of them is a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _generate(
    rng: random.Random, count: int, kinds: Mapping[str, str], taken: set[tuple[str, str]]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    heads: list[dict[str, Any]] = []
    while len(out) < count:
        draw, region = rng.random(), rng.choice(_REGION_CODES)
        if draw < 0.03 and heads:
            entry = _branch(rng, rng.choice(heads), kinds)
        elif draw < 0.80:
            entry = _legal(rng, region, kinds)
        else:
            entry = _natural_person(rng, region, kinds, trader=draw < 0.95)
        if (entry["ИНН"], entry["КПП"]) in taken:
            continue
        taken.add((entry["ИНН"], entry["КПП"]))
        entry["Ref_Key"] = _random_key(rng)
        if not entry["ОбособленноеПодразделение"] and entry["ЮридическоеФизическоеЛицо"] == "ЮридическоеЛицо":
            heads.append(entry)
        out.append(entry)
    return out


# -- $metadata ------------------------------------------------------------------------------


def _xml_props(props: Mapping[str, str], keys: Iterable[str] = ()) -> str:
    keyset = set(keys)
    return "".join(
        f'<Property Name="{name}" Type="{edm}" Nullable="{"false" if name in keyset else "true"}"/>'
        for name, edm in props.items()
    )


def _edmx(published: Iterable[str]) -> str:
    """OData v3 EDMX as 1C publishes it: entity types, row complex types, container EnterpriseV8."""
    schemas = [SCHEMAS[name] for name in published]
    types = [
        f'<EntityType Name="{s.name}" OpenType="true"><Key><PropertyRef Name="Ref_Key"/></Key>'
        f"{_xml_props(s.props, ['Ref_Key'])}</EntityType>"
        for s in schemas
    ]
    rows = [
        f'<ComplexType Name="{s.row_type(part)}">{_xml_props(columns, ["LineNumber"])}</ComplexType>'
        for s in schemas
        for part, columns in s.parts.items()
    ]
    sets = "".join(f'<EntitySet Name="{s.name}" EntityType="{_NAMESPACE}.{s.name}"/>' for s in schemas)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<edmx:Edmx xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" Version="1.0">'
        '<edmx:DataServices xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata"'
        ' m:DataServiceVersion="3.0" m:MaxDataServiceVersion="3.0">'
        f'<Schema xmlns="http://schemas.microsoft.com/ado/2009/11/edm" Namespace="{_NAMESPACE}">'
        + "".join(types)
        + "".join(rows)
        + f'<EntityContainer Name="EnterpriseV8" m:IsDefaultEntityContainer="true">{sets}</EntityContainer>'
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )


# -- HTTP plumbing --------------------------------------------------------------------------

_PROXY_PAGES = {
    502: "Proxy Error",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_SEGMENT = re.compile(r"^(?P<name>[^()]+)(?:\((?P<key>.*)\))?$")
_KEY = re.compile(r"^(?:Ref_Key=)?guid'(?P<guid>[^']*)'$")


def _json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(status=status, body=data, headers={"Content-Type": _JSON, **(headers or {})})


def _error_response(status: int, code: str, message: str) -> web.Response:
    return _json_response({"odata.error": {"code": code, "message": {"lang": "ru", "value": message}}}, status)


def _proxy_page(status: int) -> web.Response:
    """What Apache in front of 1C answers when the base does not: HTML, not odata.error."""
    title = _PROXY_PAGES.get(status, "Error")
    html = (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        f"<title>{status} {title}</title>\n</head><body>\n<h1>{title}</h1>\n"
        "<p>The proxy server could not handle the request.</p>\n</body></html>\n"
    )
    return web.Response(status=status, text=html, content_type="text/html", charset="iso-8859-1")


@dataclass(frozen=True)
class _Route:
    """What a publication path addresses."""

    kind: str  # "service" | "metadata" | "collection" | "count" | "entry" | "action"
    entity_set: str | None = None
    key: str | None = None
    action: str | None = None


def _route(rest: str) -> _Route:
    """Parse the path after ``standard.odata/``; segments are percent-decoded one by one."""
    segments = [unquote(segment) for segment in rest.split("/")] if rest else []
    if not segments:
        return _Route("service")
    if segments == ["$metadata"]:
        return _Route("metadata")
    match = _SEGMENT.match(segments[0])
    if not match or len(segments) > 2:
        raise ODataFault(404, "6", f"Неверный URL: {'/'.join(segments)}")
    name, raw_key = match.group("name"), match.group("key")
    key = None
    if raw_key is not None:
        key_match = _KEY.match(raw_key)
        if not key_match or not _GUID_RE.match(key_match.group("guid")):
            raise ODataFault(400, "7", f"Неверный ключ сущности: ({raw_key})")
        key = key_match.group("guid").lower()
    if len(segments) == 1:
        return _Route("entry" if key else "collection", name, key)
    if segments[1] == "$count" and key is None:
        return _Route("count", name)
    if segments[1] in ("Post", "Unpost") and key is not None:
        return _Route("action", name, key, segments[1])
    raise ODataFault(404, "6", f"Неверный URL: {'/'.join(segments)}")


@dataclass
class _ArmedFault:
    fault: Fault
    seen: int = 0
    used: int = 0

    def matches(self, method: str, target: str) -> bool:
        if self.used >= self.fault.times:
            return False
        if self.fault.method and self.fault.method.upper() != method:
            return False
        return not self.fault.path or self.fault.path in target


class _Dropped(Exception):
    """The connection is to be cut without an answer."""


# -- the fake -------------------------------------------------------------------------------


class FakeOnec:
    """One infobase with the standard OData interface published at ``/<publication>/odata/``."""

    def __init__(
        self,
        *,
        user: str = "Администратор",
        password: str = "секрет",
        publication: str = "base",
        published: Iterable[str] | None = None,
    ) -> None:
        self.user = user
        self.password = password
        self.publication = publication
        self.published: tuple[str, ...] = tuple(published if published is not None else SCHEMAS)
        if unknown := [name for name in self.published if name not in SCHEMAS]:
            raise ValueError(f"the fake models no entity set {unknown}")
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._tables = {name: _Table(schema) for name, schema in SCHEMAS.items()}
        self._faults: list[_ArmedFault] = []
        self._committed: set[int] = set()  # ids of write records dropped after their commit
        self._versions = itertools.count(1)
        self._numbers: dict[str, itertools.count[int]] = {name: itertools.count(1) for name in SCHEMAS}
        self._runner: web.AppRunner | None = None
        self._prefix = f"/{publication}/odata/standard.odata"
        self._kinds = {name: self.add(CONTACT_KINDS, self._kind(name))["Ref_Key"] for name, _, _ in _KINDS}

    @staticmethod
    def _kind(predefined: str) -> dict[str, Any]:
        _, description, kind_type = next(k for k in _KINDS if k[0] == predefined)
        return {
            "Description": description,
            "Тип": kind_type,
            "Используется": True,
            "Predefined": True,
            "PredefinedDataName": predefined,
        }

    # -- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}{self._prefix}/"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the base as a 1C user sees it

    def add(self, entity_set: str, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Create as a 1C user would: new Ref_Key unless given, DataVersion, Code, defaults."""
        stored = self._create(entity_set, entry, by_user=True, keep_key=True)
        return _copy(stored)

    def edit(self, entity_set: str, ref_key: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change as a 1C user would: tabular parts renumbered, DataVersion moves on."""
        table = self._tables[entity_set]
        entry = table.rows.get(ref_key.lower())
        if entry is None:
            raise KeyError(f"{entity_set}({ref_key}) does not exist")
        return _copy(self._update(table, entry, changes, by_user=True))

    def get(self, entity_set: str, ref_key: str) -> dict[str, Any] | None:
        entry = self._tables[entity_set].rows.get(ref_key.lower())
        return _copy(entry) if entry is not None else None

    def entries(self, entity_set: str) -> list[dict[str, Any]]:
        table = self._tables[entity_set]
        return [_copy(table.rows[key]) for key in table.keys]

    def kind_key(self, predefined_name: str) -> str:
        return self._kinds[predefined_name]

    def seed_counterparties(self, count: int, seed: int) -> int:
        """Add ``count`` generated counterparties in one go (sorting once, not per entry)."""
        table = self._tables[COUNTERPARTIES]
        taken = {(e["ИНН"], e["КПП"]) for e in table.rows.values()}
        generated = generate_counterparties(count, seed, self._kinds, taken)
        with _gc_paused():
            table.put_many(self._stamped(table.schema, entry) for entry in generated)  # generated entries are valid
        return len(table.rows)

    def edit_random_counterparties(self, count: int, seed: int) -> list[str]:
        """Edit ``count`` random counterparties as a user would: a new name or a new phone."""
        rng = random.Random(seed)
        table = self._tables[COUNTERPARTIES]
        chosen = rng.sample(table.keys, min(count, len(table.keys)))
        for key in chosen:
            entry = table.rows[key]
            if rng.random() < 0.5:
                self._update(table, entry, {"Description": f"{entry['Description']} *"}, by_user=True)
                continue
            phone = _phone_row(self._kinds["ТелефонКонтрагента"], "495", rng)
            others = [row for row in entry["КонтактнаяИнформация"] if row["Тип"] != "Телефон"]
            self._update(table, entry, {"КонтактнаяИнформация": [phone, *others]}, by_user=True)
        return chosen

    # -- faults and records

    def inject(self, fault: Fault) -> None:
        if fault.kind not in ("delay", "status", "drop", "drop_after_commit"):
            raise ValueError(f"unknown fault kind {fault.kind!r}")
        self._faults.append(_ArmedFault(fault))

    def clear_faults(self) -> None:
        self._faults.clear()

    def writes(self) -> list[RecordedRequest]:
        """Writes that reached the base: answered, or committed and then cut off."""
        return [
            record
            for record in self.requests
            if record.method in WRITE_METHODS and (record.status != 0 or id(record) in self._committed)
        ]

    def stats(self) -> dict[str, Any]:
        return {
            "requests": {
                "total": len(self.requests),
                "by_method": dict(Counter(r.method for r in self.requests)),
                "by_entity_set": dict(Counter(r.entity_set or "" for r in self.requests)),
            },
            "entries": {name: len(table.rows) for name, table in self._tables.items()},
        }

    # -- writes shared by the Python API and HTTP

    def _prepared(self, schema: _Schema, entry: Mapping[str, Any], *, by_user: bool, keep_key: bool) -> dict[str, Any]:
        stored = _blank(schema)
        _apply(schema, stored, entry, by_user=by_user)
        given = entry.get("Ref_Key") if keep_key else None
        stored["Ref_Key"] = _checked(_GUID, "Ref_Key", given) if given and given != EMPTY_REF else str(uuid.uuid4())
        return self._stamped(schema, stored)

    def _stamped(self, schema: _Schema, stored: dict[str, Any]) -> dict[str, Any]:
        """What the base adds on the first write: DataVersion, Code or Number, Date, head."""
        stored["DataVersion"] = _data_version(next(self._versions))
        number = self._numbers[schema.name]
        if schema.code_format and not stored.get("Code"):
            stored["Code"] = schema.code_format.format(next(number))
        if schema.number_format and not stored.get("Number"):
            stored["Number"] = schema.number_format.format(next(number))
        if schema.number_format and stored["Date"] == EMPTY_DATE:
            stored["Date"] = datetime.now().replace(microsecond=0).isoformat()
        if "ГоловнойКонтрагент_Key" in stored and not stored["ОбособленноеПодразделение"]:
            stored["ГоловнойКонтрагент_Key"] = stored["Ref_Key"]  # Accounting 3.0 fills it on write
        return stored

    def _create(self, entity_set: str, entry: Mapping[str, Any], *, by_user: bool, keep_key: bool) -> dict[str, Any]:
        table = self._tables[entity_set]
        stored = self._prepared(table.schema, entry, by_user=by_user, keep_key=keep_key)
        if stored["Ref_Key"] in table.rows:
            raise ODataFault(400, "15", "Сущность с таким ключом уже существует")
        table.put(stored)
        return stored

    def _update(
        self, table: _Table, entry: dict[str, Any], changes: Mapping[str, Any], *, by_user: bool
    ) -> dict[str, Any]:
        updated = _copy(entry)
        _apply(table.schema, updated, changes, by_user=by_user)
        updated["DataVersion"] = _data_version(next(self._versions))
        table.put(updated)
        return updated

    # -- HTTP

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if path.startswith("/_fake/"):
            return await self._control(request, path[len("/_fake/") :])
        if path != self._prefix and not path.startswith(self._prefix + "/"):
            return web.Response(status=404, text="Not Found")
        raw_query = request.rel_url.raw_query_string
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        record = RecordedRequest(request.method, None, None, query, 0)
        self.requests.append(record)
        route: _Route | ODataFault
        try:
            route = _route(path[len(self._prefix) + 1 :])
            record.entity_set, record.key, record.kind = route.entity_set, route.key, route.kind
        except ODataFault as error:
            route = error
        target = unquote(path) + ("?" + unquote_plus(raw_query) if raw_query else "")
        try:
            response = await self._answer(request, route, target, record)
        except _Dropped:
            request.transport.abort()  # type: ignore[union-attr]
            return web.Response()
        record.status = response.status
        return response

    def _take_fault(self, method: str, target: str) -> Fault | None:
        """The fault this request meets: the first match, once its ``skip`` passes are used up."""
        armed = next((f for f in self._faults if f.matches(method, target)), None)
        if armed is None:
            return None
        if armed.seen < armed.fault.skip:
            armed.seen += 1
            return None
        armed.used += 1
        return armed.fault

    async def _answer(
        self, request: web.Request, route: _Route | ODataFault, target: str, record: RecordedRequest
    ) -> web.Response:
        """Faults first (they stand for the web server and the network), then auth, then 1C."""
        fault = self._take_fault(request.method, target)
        if fault and fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        elif fault and fault.kind == "drop":
            raise _Dropped
        elif fault and fault.kind == "status":
            return _proxy_page(fault.status) if fault.status in _PROXY_PAGES else _error_response(*_fault_error(fault))
        if not self._authorized(request.headers.get("Authorization")):
            return web.Response(status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Basic realm="1C"'})
        try:
            if isinstance(route, ODataFault):
                raise route
            response = await self._handle(request, route)
        except ODataFault as error:
            response = _error_response(error.status, error.code, error.message)
        if fault and fault.kind == "drop_after_commit":
            if request.method in WRITE_METHODS and response.status < 400:
                self._committed.add(id(record))
            raise _Dropped
        return response

    def _authorized(self, header: str | None) -> bool:
        """HTTP Basic, decoded as UTF-8: a latin-1 encoded Cyrillic login is simply wrong."""
        if not header or not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, sep, password = decoded.partition(":")
        return bool(sep) and user == self.user and password == self.password

    async def _handle(self, request: web.Request, route: _Route) -> web.Response:
        base = f"{request.scheme}://{request.host}{self._prefix}/"
        if route.kind == "metadata":
            return web.Response(text=_edmx(self.published), content_type="application/xml", charset="utf-8")
        if route.kind not in ("count", "action"):  # both answer without a JSON body
            _require_json(request)
        if route.kind == "service":
            sets = [{"name": name, "url": name} for name in self.published]
            return _json_response({"odata.metadata": f"{base}$metadata", "value": sets})
        assert route.entity_set is not None
        if route.entity_set not in self.published:
            raise ODataFault(404, "6", f"Сегмент пути {route.entity_set} не найден!")
        table = self._tables[route.entity_set]
        handler = _HANDLERS.get((route.kind, request.method))
        if handler is None:
            raise ODataFault(405, "19", "Использованный HTTP-метод запрещен в данном контексте")
        return await handler(self, request, route, table, base)

    async def _list(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        query = request.query
        flt = _parse_filter(query["$filter"], table.schema) if query.get("$filter") else None
        order = _parse_orderby(query["$orderby"], table.schema) if query.get("$orderby") else ()
        project = _parse_select(query["$select"], table.schema) if query.get("$select") else None
        skip = _parse_count("$skip", query.get("$skip")) or 0
        top = _parse_count("$top", query.get("$top"))
        found = table.select(flt, order)
        page = found[skip : None if top is None else skip + top]
        body: dict[str, Any] = {"odata.metadata": f"{base}$metadata#{route.entity_set}"}
        if query.get("$inlinecount") == "allpages":
            body["odata.count"] = str(len(found))
        body["value"] = [project(entry) for entry in page] if project else page
        return _json_response(body)

    async def _count(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        flt = _parse_filter(request.query["$filter"], table.schema) if request.query.get("$filter") else None
        return web.Response(text=str(len(table.select(flt, ()))), content_type="text/plain", charset="utf-8")

    async def _read(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        entry = _existing(table, route)
        project = _parse_select(request.query["$select"], table.schema) if request.query.get("$select") else None
        return _json_response(_element(base, route.entity_set, project(entry) if project else entry))

    async def _create_http(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        stored = self._create(table.schema.name, await _body(request), by_user=False, keep_key=False)
        location = f"{base}{quote(table.schema.name)}(guid'{stored['Ref_Key']}')"
        return _json_response(_element(base, route.entity_set, stored), 201, {"Location": location})

    async def _patch(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        updated = self._update(table, _existing(table, route), await _body(request), by_user=False)
        return _json_response(_element(base, route.entity_set, updated))

    async def _delete(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        _existing(table, route)
        table.remove(route.key)  # type: ignore[arg-type]
        return web.Response(status=204)

    async def _post_action(self, request: web.Request, route: _Route, table: _Table, base: str) -> web.Response:
        if table.schema.number_format is None:
            raise ODataFault(404, "11", f"Метод {route.action} не найден")
        self._update(table, _existing(table, route), {"Posted": route.action == "Post"}, by_user=False)
        return web.Response(status=200)

    # -- control endpoints for benchmarks (no auth, outside the publication)

    async def _control(self, request: web.Request, action: str) -> web.Response:
        body = await request.json() if request.method == "POST" else {}
        if (action, request.method) == ("seed", "POST"):
            total = self.seed_counterparties(int(body.get("count", 0)), int(body.get("seed", 0)))
            return _json_response({"total": total})
        if (action, request.method) == ("edit", "POST"):
            edited = self.edit_random_counterparties(int(body.get("count", 0)), int(body.get("seed", 0)))
            return _json_response({"edited": edited})
        if (action, request.method) == ("stats", "GET"):
            return _json_response(self.stats())
        if (action, request.method) == ("requests", "GET"):
            since = max(0, int(request.query.get("since", "0")))
            recorded = [asdict(r) for r in self.requests[since:]]
            return _json_response({"total": len(self.requests), "requests": recorded})
        if action == "faults" and request.method == "POST":
            try:
                self.inject(Fault(**body))
            except (TypeError, ValueError) as error:
                return web.Response(status=400, text=str(error))
            return _json_response({"faults": [asdict(f.fault) for f in self._faults]})
        if action == "faults" and request.method == "DELETE":
            self.clear_faults()
            return _json_response({"faults": []})
        return web.Response(status=404, text="Not Found")


_Handler = Callable[[FakeOnec, web.Request, _Route, _Table, str], Any]
_HANDLERS: dict[tuple[str, str], _Handler] = {
    ("collection", "GET"): FakeOnec._list,
    ("collection", "POST"): FakeOnec._create_http,
    ("count", "GET"): FakeOnec._count,
    ("entry", "GET"): FakeOnec._read,
    ("entry", "PATCH"): FakeOnec._patch,
    ("entry", "MERGE"): FakeOnec._patch,
    ("entry", "DELETE"): FakeOnec._delete,
    ("action", "POST"): FakeOnec._post_action,
}


def _fault_error(fault: Fault) -> tuple[int, str, str]:
    return fault.status, fault.code, fault.message


def _require_json(request: web.Request) -> None:
    """Real 1C answers Atom XML without $format=json; the fake speaks JSON only and says so."""
    wanted = request.query.get("$format")
    if wanted == "json" or (wanted is None and "application/json" in request.headers.get("Accept", "")):
        return
    raise ODataFault(406, "3", "Запрошенный тип представления не поддерживается (фейк отвечает только JSON)")


def _existing(table: _Table, route: _Route) -> dict[str, Any]:
    entry = table.rows.get(route.key or "")
    if entry is None:
        raise ODataFault(404, "9", "Экземпляр сущности не найден")
    return entry


def _element(base: str, entity_set: str | None, entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"odata.metadata": f"{base}$metadata#{entity_set}/@Element", **entry}


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except ValueError:
        raise ODataFault(400, "2", "Неверный формат запроса: тело не является JSON") from None
    if not isinstance(body, dict):
        raise ODataFault(400, "2", "Неверный формат запроса: ожидается объект JSON")
    return body


# -- standalone -----------------------------------------------------------------------------


async def _serve(host: str, port: int, count: int, seed: int) -> None:
    fake = FakeOnec()
    if count:
        fake.seed_counterparties(count, seed)
        gc.freeze()  # the seeded base lives as long as the process: keep it out of every GC pass
    print(await fake.start(host, port), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopped.set)
    try:
        await stopped.wait()
    finally:
        await fake.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a fake 1C standard OData interface.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--counterparties", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.host, args.port, args.counterparties, args.seed))


if __name__ == "__main__":
    main()
