"""The three-way merge of one counterparty: the hub's card, 1C's item, and what both last agreed on.

A field changed on one side since the last sync goes to the other side.  A field changed on
both sides to different values is a conflict: it is never settled silently, unless the
connection's rules say how (1C wins, the hub wins, or, for phones and e-mails, a union that
keeps additions and removals made on either side).  With no agreed value yet (a pair just
linked), a field set on one side only fills the other; set differently on both, it is a
conflict unless a rule decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from crm_core.onec.records import FIELDS, LIST_FIELDS, Counterparty

Rule = Literal["ask", "onec", "hub", "union"]
# What accounting owns (requisites) follows 1C; phones and e-mails are merged; the rest is asked.
DEFAULT_RULES: dict[str, Rule] = {"inn": "onec", "kpp": "onec", "ogrn": "onec", "phones": "union", "emails": "union"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class FieldConflict:
    field: str
    base: Any  # None when the pair had no agreed value yet
    hub: Any
    onec: Any


@dataclass(slots=True)
class Merge:
    to_hub: dict[str, Any] = field(default_factory=dict)  # field -> the value the hub's card must take
    to_onec: dict[str, Any] = field(default_factory=dict)  # field -> the value 1C's item must take
    conflicts: list[FieldConflict] = field(default_factory=list)
    base: dict[str, Any] = field(default_factory=dict)  # what both agree on after the writes

    @property
    def changes_anything(self) -> bool:
        return bool(self.to_hub or self.to_onec)


def merge(
    hub: Counterparty,
    onec: Counterparty,
    base: Mapping[str, Any] | None,
    rules: Mapping[str, Rule] | None = None,
    *,
    held: frozenset[str] = frozenset(),
    resolved: Mapping[str, Any] | None = None,
) -> Merge:
    """Decide every field.  ``held`` fields have an open conflict: neither side is touched and the
    agreed value stays; ``resolved`` maps fields to the value a user chose, which both sides take."""
    rules = {**DEFAULT_RULES, **(rules or {})}
    hub_values, onec_values = hub.values(), onec.values()
    result = Merge()
    for name in FIELDS:
        before = _MISSING if base is None else base.get(name, _MISSING)
        if name in held:
            if before is not _MISSING:
                result.base[name] = before
            continue
        h, o = hub_values[name], onec_values[name]
        if resolved is not None and name in resolved:
            agreed = _normal(name, resolved[name])
        else:
            decided = _decide(name, h, o, before, rules.get(name, "ask"))
            if decided is _MISSING:
                result.conflicts.append(FieldConflict(name, None if before is _MISSING else before, h, o))
                if before is not _MISSING:
                    result.base[name] = before
                continue
            agreed = decided
        if agreed != h:
            result.to_hub[name] = agreed
        if agreed != o:
            result.to_onec[name] = agreed
        result.base[name] = agreed
    return result


def _decide(name: str, h: Any, o: Any, before: Any, rule: Rule) -> Any:
    """The value both sides should hold, or _MISSING for a conflict."""
    if h == o:
        return h
    if before is not _MISSING:
        before = _normal(name, before)
        if h == before:
            return o
        if o == before:
            return h
    elif _empty(h) or _empty(o):
        return o if _empty(h) else h
    if rule == "hub":
        return h
    if rule == "onec":
        return o
    if rule == "union" and name in LIST_FIELDS:
        return _union(h, o, None if before is _MISSING else before)
    return _MISSING


def _union(h: list[Any], o: list[Any], before: list[Any] | None) -> list[Any]:
    """Additions from both sides; removals from either side when there is a common past."""
    if before is None:
        return sorted(set(h) | set(o))
    removed = (set(before) - set(h)) | (set(before) - set(o))
    return sorted((set(before) | set(h) | set(o)) - removed)


def _normal(name: str, value: Any) -> Any:
    return sorted(value) if name in LIST_FIELDS and value is not None else value


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []
