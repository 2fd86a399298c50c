"""The three-way merge of one counterparty: the hub's card, 1C's item and what both last agreed on."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.onec.merge import Merge, Rule, merge
from crm_core.onec.records import FIELDS, LIST_FIELDS, Counterparty

BASE = Counterparty(
    name="Ромашка",
    full_name="ООО «Ромашка»",
    inn="7707083893",
    kpp="770701001",
    phones=("+74951234567",),
    emails=("info@romashka.ru",),
    legal_address="Москва, Тверская, 1",
)
ASK_ALL: dict[str, Rule] = {"inn": "ask", "kpp": "ask", "ogrn": "ask", "phones": "ask", "emails": "ask"}


def _with(record: Counterparty, **changes: Any) -> Counterparty:
    return Counterparty.from_values({**record.values(), **changes})


def _applied(record: Counterparty, changes: dict[str, Any]) -> Counterparty:
    return Counterparty.from_values({**record.values(), **changes})


# -- one side, both sides --------------------------------------------------------------------------


def test_a_field_changed_on_one_side_goes_to_the_other() -> None:
    result = merge(_with(BASE, name="Ромашка-Плюс"), _with(BASE, legal_address="Москва, Арбат, 2"), BASE.values())

    assert result.to_onec == {"name": "Ромашка-Плюс"}
    assert result.to_hub == {"legal_address": "Москва, Арбат, 2"}
    assert result.conflicts == []
    assert result.base == {**BASE.values(), "name": "Ромашка-Плюс", "legal_address": "Москва, Арбат, 2"}


def test_nothing_changed_writes_nothing() -> None:
    result = merge(BASE, BASE, BASE.values())

    assert not result.changes_anything and result.conflicts == []
    assert result.base == BASE.values()


def test_a_field_changed_differently_on_both_sides_is_a_conflict_and_neither_side_is_written() -> None:
    hub, onec = _with(BASE, name="Ромашка (hub)", kind="person"), _with(BASE, name="Ромашка (1С)")
    result = merge(hub, onec, BASE.values())

    [conflict] = result.conflicts
    assert (conflict.field, conflict.base, conflict.hub, conflict.onec) == ("name", "Ромашка", "Ромашка (hub)",
                                                                            "Ромашка (1С)")  # fmt: skip
    assert "name" not in result.to_hub and "name" not in result.to_onec
    assert result.to_onec == {"kind": "person"}  # the other fields still go through
    assert result.base["name"] == "Ромашка"  # the agreed value stays until someone decides


def test_a_field_changed_to_the_same_value_on_both_sides_is_no_conflict() -> None:
    same = _with(BASE, name="Ромашка АО", phones=["+74957654321"])
    result = merge(same, same, BASE.values())

    assert result.conflicts == [] and not result.changes_anything
    assert result.base["name"] == "Ромашка АО" and result.base["phones"] == ["+74957654321"]


# -- rules ---------------------------------------------------------------------------------------


def test_rules_let_1c_or_the_hub_win_a_field_changed_on_both_sides() -> None:
    hub = _with(BASE, name="Ромашка (hub)", full_name="ООО «Ромашка» (hub)")
    onec = _with(BASE, name="Ромашка (1С)", full_name="ООО «Ромашка» (1С)")
    result = merge(hub, onec, BASE.values(), {"name": "onec", "full_name": "hub"})

    assert result.conflicts == []
    assert result.to_hub == {"name": "Ромашка (1С)"}
    assert result.to_onec == {"full_name": "ООО «Ромашка» (hub)"}


def test_by_default_1c_owns_the_requisites() -> None:
    result = merge(_with(BASE, kpp="770702001"), _with(BASE, kpp="770703001"), BASE.values())

    assert result.conflicts == [] and result.to_hub == {"kpp": "770703001"} and result.to_onec == {}


def test_a_rule_does_not_override_a_change_made_on_one_side_only() -> None:
    result = merge(_with(BASE, inn="7736207543"), BASE, BASE.values(), {"inn": "onec"})

    assert result.to_onec == {"inn": "7736207543"} and result.to_hub == {}


def test_union_keeps_additions_from_both_sides_and_removals_from_either() -> None:
    base = _with(BASE, phones=["+74950000001", "+74950000002", "+74950000003"], emails=["a@x.ru", "b@x.ru"])
    # The hub removed ...01 and added ...04; 1C removed ...03 and added ...05.
    hub = _with(base, phones=["+74950000002", "+74950000003", "+74950000004"], emails=["a@x.ru", "c@x.ru"])
    onec = _with(base, phones=["+74950000001", "+74950000002", "+74950000005"], emails=["b@x.ru", "d@x.ru"])
    result = merge(hub, onec, base.values())

    phones = ["+74950000002", "+74950000004", "+74950000005"]
    emails = ["c@x.ru", "d@x.ru"]
    assert result.conflicts == []
    assert result.to_hub == {"phones": phones, "emails": emails}
    assert result.to_onec == {"phones": phones, "emails": emails}
    assert result.base["phones"] == phones and result.base["emails"] == emails


def test_union_without_a_common_past_keeps_everything_from_both_sides() -> None:
    hub = _with(BASE, phones=["+74950000001", "+74950000002"])
    onec = _with(BASE, phones=["+74950000002", "+74950000003"])
    result = merge(hub, onec, None)

    assert result.to_hub == {"phones": ["+74950000001", "+74950000002", "+74950000003"]}
    assert result.to_onec == {"phones": ["+74950000001", "+74950000002", "+74950000003"]}


def test_lists_changed_on_both_sides_are_a_conflict_when_the_rule_says_ask() -> None:
    hub = _with(BASE, phones=["+74950000001"])
    onec = _with(BASE, phones=["+74950000002"])
    result = merge(hub, onec, BASE.values(), ASK_ALL)

    assert [c.field for c in result.conflicts] == ["phones"] and not result.changes_anything


# -- open and decided conflicts ------------------------------------------------------------------


def test_a_held_field_is_left_alone_on_both_sides() -> None:
    hub = _with(BASE, name="Ромашка (hub)")  # changed in the hub only: would normally go to 1C
    onec = _with(BASE, full_name="ООО «Ромашка» (1С)")
    result = merge(hub, onec, BASE.values(), held=frozenset({"name"}))

    assert result.to_onec == {} and result.to_hub == {"full_name": "ООО «Ромашка» (1С)"}
    assert result.conflicts == []
    assert result.base["name"] == "Ромашка"


def test_a_held_field_without_an_agreed_value_stays_out_of_the_base() -> None:
    result = merge(_with(BASE, name="А"), _with(BASE, name="Б"), None, held=frozenset({"name"}))

    assert "name" not in result.base and result.conflicts == []
    assert "name" not in result.to_hub and "name" not in result.to_onec


def test_a_resolved_value_goes_to_both_sides() -> None:
    hub, onec = _with(BASE, name="Ромашка (hub)"), _with(BASE, name="Ромашка (1С)")
    result = merge(hub, onec, BASE.values(), resolved={"name": "Ромашка", "phones": ["+74950000009", "+74950000001"]})

    assert result.conflicts == []
    assert result.to_hub == {"name": "Ромашка", "phones": ["+74950000001", "+74950000009"]}
    assert result.to_onec == {"name": "Ромашка", "phones": ["+74950000001", "+74950000009"]}
    assert result.base["name"] == "Ромашка"


def test_a_resolved_value_one_side_already_holds_is_written_to_the_other_only() -> None:
    hub, onec = _with(BASE, name="Ромашка (hub)"), _with(BASE, name="Ромашка (1С)")
    result = merge(hub, onec, BASE.values(), resolved={"name": "Ромашка (1С)"})

    assert result.to_hub == {"name": "Ромашка (1С)"} and result.to_onec == {}


# -- a pair just linked: no agreed values yet ----------------------------------------------------------


def test_without_a_base_a_value_present_on_one_side_fills_the_other() -> None:
    hub = Counterparty(name="Ромашка", inn="7707083893", phones=("+74951234567",))
    onec = Counterparty(name="Ромашка", inn="7707083893", kpp="770701001", legal_address="Москва", emails=("a@x.ru",))
    result = merge(hub, onec, None)

    assert result.conflicts == []
    assert result.to_hub == {"kpp": "770701001", "legal_address": "Москва", "emails": ["a@x.ru"]}
    assert result.to_onec == {"phones": ["+74951234567"]}


def test_without_a_base_different_values_on_both_sides_are_a_conflict() -> None:
    hub = Counterparty(name="Ромашка", full_name="ООО Ромашка")
    onec = Counterparty(name="Ромашка", full_name="Общество «Ромашка»")
    result = merge(hub, onec, None)

    [conflict] = result.conflicts
    assert (conflict.field, conflict.base) == ("full_name", None)
    assert not result.changes_anything and "full_name" not in result.base


# -- properties ----------------------------------------------------------------------------------------

_TEXT = st.sampled_from(["", "Ромашка", "Лютик", "Ромашка АО"])
_OPTIONAL = st.one_of(st.none(), st.sampled_from(["7707083893", "7736207543", "Москва"]))
_PHONES = st.frozensets(st.sampled_from(["+74950000001", "+74950000002", "+74950000003"])).map(sorted)
_EMAILS = st.frozensets(st.sampled_from(["a@x.ru", "b@x.ru"])).map(sorted)
_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "name": _TEXT,
    "full_name": _TEXT,
    "kind": st.sampled_from(["legal", "person"]),
    "inn": _OPTIONAL,
    "kpp": _OPTIONAL,
    "ogrn": _OPTIONAL,
    "phones": _PHONES,
    "emails": _EMAILS,
    "legal_address": _OPTIONAL,
    "actual_address": _OPTIONAL,
    "group": st.one_of(st.none(), st.just("Покупатели")),
    "deleted": st.booleans(),
}
_RECORDS = st.fixed_dictionaries(_VALUES).map(Counterparty.from_values)
# A base may lack fields (agreed on before they were synced) or be missing altogether.
_BASES = st.one_of(st.none(), st.fixed_dictionaries({}, optional=_VALUES))
_RULES = st.fixed_dictionaries(
    {},
    optional={
        name: st.sampled_from(["ask", "onec", "hub", "union"] if name in LIST_FIELDS else ["ask", "onec", "hub"])
        for name in FIELDS
    },
)
_HELD = st.frozensets(st.sampled_from(FIELDS), max_size=3)


def _after(hub: Counterparty, onec: Counterparty, result: Merge) -> tuple[Counterparty, Counterparty]:
    return _applied(hub, result.to_hub), _applied(onec, result.to_onec)


@given(_RECORDS, _RECORDS, _BASES, _RULES, _HELD)
def test_a_merge_once_written_is_a_fixpoint(
    hub: Counterparty, onec: Counterparty, base: dict[str, Any] | None, rules: dict[str, Rule], held: frozenset[str]
) -> None:
    first = merge(hub, onec, base, rules, held=held)
    hub2, onec2 = _after(hub, onec, first)
    again = merge(hub2, onec2, first.base, rules, held=held)

    assert again.to_hub == {} and again.to_onec == {}, "merging the merged values wrote again"
    assert [c.field for c in again.conflicts] == [c.field for c in first.conflicts]
    decided = set(FIELDS) - held - {c.field for c in first.conflicts}
    for name in decided:  # both sides hold what the base says they agreed on
        assert hub2.values()[name] == onec2.values()[name] == first.base[name], name


@settings(max_examples=50)
@given(_RECORDS, _RECORDS, _BASES, _RULES, _HELD)
def test_a_conflicted_or_held_field_is_written_to_neither_side(
    hub: Counterparty, onec: Counterparty, base: dict[str, Any] | None, rules: dict[str, Rule], held: frozenset[str]
) -> None:
    result = merge(hub, onec, base, rules, held=held)

    untouched = held | {c.field for c in result.conflicts}
    assert not untouched & (result.to_hub.keys() | result.to_onec.keys())
    assert not held & {c.field for c in result.conflicts}
    for name in untouched:
        assert result.base.get(name, "absent") == (base or {}).get(name, "absent"), name


_SWAP: dict[str, Rule] = {"onec": "hub", "hub": "onec", "ask": "ask", "union": "union"}


@settings(max_examples=50)
@given(_RECORDS, _RECORDS, _BASES, _RULES)
def test_the_merge_treats_both_sides_alike(
    hub: Counterparty, onec: Counterparty, base: dict[str, Any] | None, rules: dict[str, Rule]
) -> None:
    explicit: dict[str, Rule] = {**{name: "ask" for name in FIELDS}, **rules}
    forward = merge(hub, onec, base, explicit)
    mirrored = merge(onec, hub, base, {name: _SWAP[rule] for name, rule in explicit.items()})

    assert forward.to_hub == mirrored.to_onec and forward.to_onec == mirrored.to_hub
    assert forward.base == mirrored.base
    assert [(c.field, c.hub, c.onec) for c in forward.conflicts] == [
        (c.field, c.onec, c.hub) for c in mirrored.conflicts
    ]
