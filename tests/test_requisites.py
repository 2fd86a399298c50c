"""INN, KPP and OGRN: real identifiers pass, typos are named, nothing typed makes the check crash."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crm_core.requisites import inn_problem, kpp_problem, ogrn_problem

PURE = settings(max_examples=200, deadline=None)

INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check(digits: str, weights: tuple[int, ...]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits[: len(weights)], weights, strict=True)) % 11 % 10)


def _valid_inn10(body: str) -> str:
    return body + _check(body, INN10_WEIGHTS)


def _valid_inn12(body: str) -> str:
    eleven = body + _check(body, INN12_WEIGHTS_1)
    return eleven + _check(eleven, INN12_WEIGHTS_2)


@pytest.mark.parametrize(
    "inn",
    [
        "7707083893",  # ПАО Сбербанк
        "7736050003",  # ПАО Газпром
        "500100732259",  # the classic valid 12-digit example
    ],
)
def test_real_inns_are_accepted(inn: str) -> None:
    assert inn_problem(inn) is None


@pytest.mark.parametrize("inn", ["7707083894", "7707083890", "500100732258", "500100732269", "500100732250"])
def test_inn_with_a_wrong_check_digit_is_named_as_such(inn: str) -> None:
    assert inn_problem(inn) == "INN check digit does not match"


@pytest.mark.parametrize("inn", ["", "770708389", "77070838931", "7707083893123", "77070838ab", "7707 08389"])
def test_inn_of_the_wrong_length_or_with_letters_is_rejected_for_its_shape(inn: str) -> None:
    assert inn_problem(inn) == "INN must be 10 digits (organisation) or 12 digits (person)"


@PURE
@given(st.from_regex(r"\A[0-9]{9}\Z"), st.integers(min_value=1, max_value=9))
def test_ten_digit_inn_is_valid_with_its_check_digit_and_invalid_with_any_other(body: str, shift: int) -> None:
    inn = _valid_inn10(body)
    assert inn_problem(inn) is None
    wrong = inn[:9] + str((int(inn[9]) + shift) % 10)
    assert inn_problem(wrong) == "INN check digit does not match"


@PURE
@given(st.from_regex(r"\A[0-9]{10}\Z"), st.integers(min_value=1, max_value=9), st.sampled_from([10, 11]))
def test_twelve_digit_inn_needs_both_check_digits(body: str, shift: int, position: int) -> None:
    inn = _valid_inn12(body)
    assert inn_problem(inn) is None
    wrong = inn[:position] + str((int(inn[position]) + shift) % 10) + inn[position + 1 :]
    assert inn_problem(wrong) == "INN check digit does not match"


def test_ogrn_of_sberbank_is_accepted() -> None:
    # 102770013219 mod 11 = 5 -> check digit 5.
    assert ogrn_problem("1027700132195") is None


def test_ogrnip_with_a_matching_check_digit_is_accepted() -> None:
    # 30450011600015 mod 13 = 7 -> check digit 7 (computed, not looked up).
    assert 30450011600015 % 13 % 10 == 7
    assert ogrn_problem("304500116000157") is None


@pytest.mark.parametrize("ogrn", ["1027700132196", "1027700132190", "304500116000158", "304500116000150"])
def test_ogrn_with_a_wrong_check_digit_is_named_as_such(ogrn: str) -> None:
    assert ogrn_problem(ogrn) == "OGRN check digit does not match"


@pytest.mark.parametrize("ogrn", ["", "102770013219", "10277001321950", "3045001160001570", "10277OO132195"])
def test_ogrn_of_the_wrong_length_is_rejected_for_its_shape(ogrn: str) -> None:
    assert ogrn_problem(ogrn) == "OGRN must be 13 digits (or OGRNIP 15 digits)"


@PURE
@given(st.from_regex(r"\A[1-9][0-9]{11}\Z"), st.from_regex(r"\A[1-9][0-9]{13}\Z"))
def test_ogrn_and_ogrnip_are_valid_exactly_with_their_computed_check_digit(body13: str, body15: str) -> None:
    ogrn = body13 + str(int(body13) % 11 % 10)
    ogrnip = body15 + str(int(body15) % 13 % 10)
    assert ogrn_problem(ogrn) is None
    assert ogrn_problem(ogrnip) is None
    assert ogrn_problem(ogrn[:-1] + str((int(ogrn[-1]) + 1) % 10)) == "OGRN check digit does not match"
    assert ogrn_problem(ogrnip[:-1] + str((int(ogrnip[-1]) + 1) % 10)) == "OGRN check digit does not match"


@pytest.mark.parametrize("kpp", ["773601001", "770701001", "7736AB001", "77360Z001"])
def test_kpp_of_four_digits_two_digits_or_capitals_and_three_digits_is_accepted(kpp: str) -> None:
    assert kpp_problem(kpp) is None


@pytest.mark.parametrize(
    "kpp", ["", "77360100", "7736010011", "7736ab001", "77A601001", "7736010A1", "7736 0100", "7736АБ001"]
)
def test_kpp_of_any_other_shape_is_rejected(kpp: str) -> None:
    # "7736АБ001" has Cyrillic capitals, which look Latin but are not allowed.
    assert kpp_problem(kpp) == "KPP must be 9 characters: 4 digits, 2 digits or letters, 3 digits"


@PURE
@given(st.text(max_size=16))
@example("²" * 10)
@example("²" * 13)
def test_checking_any_text_names_a_problem_or_none_and_never_raises(text: str) -> None:
    for check in (inn_problem, kpp_problem, ogrn_problem):
        assert check(text) is None or isinstance(check(text), str)


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (inn_problem, "７７０７０８３８９３"),
        (kpp_problem, "７７３６０１００１"),
        (ogrn_problem, "１０２７７００１３２１９５"),
    ],
)
def test_requisites_written_in_fullwidth_digits_are_rejected(check: Callable[[str], str | None], value: str) -> None:
    assert check(value) is not None


def test_kpp_with_a_trailing_newline_is_rejected() -> None:
    assert kpp_problem("773601001\n") is not None
