"""Phone numbers as people type them land on one E.164 form; nothing typed is lost or fatal."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from crm_core.phones import normalise, suffix_of

PURE = settings(max_examples=200, deadline=None)

# A Russian national number: area or mobile code ([3489]xx) and seven subscriber digits.
russian_national = st.from_regex(r"\A[3489][0-9]{9}\Z")
separator = st.sampled_from(["", " ", "-", ".", " - "])
trunk = st.sampled_from(["+7", "8", "7", "+7 ", "8 ", "7 ", "8-", "+7-"])
padding = st.sampled_from(["", " ", "  ", "\t", " \n"])
extension_digits = st.from_regex(r"\A[0-9]{1,5}\Z")
# What libphonenumber accepts as an extension marker, Russian offices' "доб." included.
extension_marker = st.sampled_from(["доб. ", "доб.", "доб ", "Доб. ", "ext. ", "ext ", "x", "x ", "#"])


def _groups(national: str, grouping: str) -> list[str]:
    """The subscriber part split the ways people write it: 123-45-67, 123-4567, 1234567."""
    subscriber = national[3:]
    if grouping == "3-2-2":
        return [subscriber[:3], subscriber[3:5], subscriber[5:]]
    if grouping == "3-4":
        return [subscriber[:3], subscriber[3:]]
    return [subscriber]


@st.composite
def russian_number_as_typed(draw: st.DrawFn) -> tuple[str, str, str | None]:
    """(text, expected E.164, expected extension) for one number in one of many spellings."""
    national = draw(russian_national)
    sep = draw(separator)
    area = national[:3]
    area_text = draw(st.sampled_from([area, f"({area})", f" ({area}) "]))
    subscriber = sep.join(_groups(national, draw(st.sampled_from(["3-2-2", "3-4", "7"]))))
    text = draw(trunk) + area_text + draw(st.sampled_from([sep, " "])) + subscriber
    extension = None
    if draw(st.booleans()):
        extension = draw(extension_digits)
        text += draw(st.sampled_from([" ", ", "])) + draw(extension_marker) + extension
    return draw(padding) + text + draw(padding), f"+7{national}", extension


@PURE
@given(russian_number_as_typed())
@example(("8 (495) 123-45-67", "+74951234567", None))
@example(("  +7 495 123.45.67 доб. 12 ", "+74951234567", "12"))
@example(("74951234567 ext. 12", "+74951234567", "12"))
@example(("8-495-1234567 x12", "+74951234567", "12"))
def test_every_spelling_of_a_russian_number_lands_on_one_e164(case: tuple[str, str, str | None]) -> None:
    text, e164, extension = case
    number = normalise(text)
    assert number.e164 == e164
    assert number.extension == extension
    assert number.digits == e164[1:]


def test_russian_extension_written_dob_is_recognised_as_an_extension() -> None:
    number = normalise("+7 (495) 123-45-67 доб. 123")
    assert (number.e164, number.extension) == ("+74951234567", "123")


@pytest.mark.parametrize("text", ["+7 495 123-45-67 добавочный 12", "+7 495 123-45-67 вн. 12"])
def test_extension_written_in_full_russian_words_still_gives_the_number(text: str) -> None:
    number = normalise(text)
    assert (number.e164, number.extension) == ("+74951234567", "12")


FOREIGN = [
    ("+1", ["202", "555", "0143"], "+12025550143"),
    ("+44", ["20", "7946", "0958"], "+442079460958"),
    ("+49", ["30", "1234", "5678"], "+493012345678"),
    ("+375", ["17", "123", "45", "67"], "+375171234567"),
    ("+380", ["44", "123", "4567"], "+380441234567"),
    ("+33", ["1", "23", "45", "67", "89"], "+33123456789"),
    ("+998", ["71", "123", "45", "67"], "+998711234567"),
]


@PURE
@given(
    st.sampled_from(FOREIGN),
    st.sampled_from([" ", "-", ".", ""]),
    st.booleans(),
    padding,
)
def test_foreign_number_with_country_code_keeps_its_country_under_default_region_ru(
    country: tuple[str, list[str], str], sep: str, bracket_area: bool, pad: str
) -> None:
    code, groups, e164 = country
    first = f"({groups[0]})" if bracket_area else groups[0]
    text = pad + code + " " + sep.join([first, *groups[1:]]) + pad
    assert normalise(text, "RU").e164 == e164


@PURE
@given(st.text(max_size=120))
@example("")
@example("+")
@example("доб. 12")
@example("тел. 495-123-45-67 (не звонить)")
@example("1" * 300)
def test_any_text_is_kept_as_typed_and_never_raises(text: str) -> None:
    number = normalise(text)
    assert number.raw == text.strip()
    if number.e164 is not None:
        assert number.e164.startswith("+") and number.e164[1:].isdigit()
        assert number.digits == number.e164[1:]
    assert number.digits_reversed == number.digits[::-1]


@PURE
@given(st.text(alphabet=st.characters(categories=["Nd", "Zs", "Pd", "Ps", "Pe"]), max_size=40))
@example("тел. ４９５-１２３-４５-６７ (не звонить)")
def test_fallback_digits_of_an_unparseable_number_are_ascii(text: str) -> None:
    digits = normalise(text).digits
    assert all(ch in "0123456789" for ch in digits)


def test_number_without_a_reading_keeps_its_digits_for_suffix_matching() -> None:
    number = normalise("  тел. 495-123-45-67 (не звонить) ")
    assert number.raw == "тел. 495-123-45-67 (не звонить)"
    assert number.e164 is None and number.extension is None
    assert number.digits == "4951234567"


def test_short_internal_number_has_no_e164_and_keeps_its_digits() -> None:
    number = normalise("101")
    assert (number.e164, number.digits, number.digits_reversed) == (None, "101", "101")


def test_suffix_key_is_the_last_digits_reversed() -> None:
    assert suffix_of("74951234567", 10) == "7654321594"
    assert suffix_of("74951234567", 7) == "7654321"


@PURE
@given(russian_national, st.integers(min_value=1, max_value=11))
def test_a_number_always_starts_with_its_own_suffix_key(national: str, length: int) -> None:
    number = normalise("8" + national)
    assert number.digits_reversed.startswith(suffix_of(number.digits, length))


def test_local_number_without_area_code_gets_no_e164_but_keeps_its_digits() -> None:
    number = normalise("123-45-67")
    assert (number.e164, number.digits) == (None, "1234567")
