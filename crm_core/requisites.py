"""Russian company identifiers (INN, KPP, OGRN) and their check digits.

A wrong INN is the commonest typo in a counterparty card and the key 1C matches on,
so it is rejected at the door rather than discovered at the first sync.
"""

from __future__ import annotations

import re

_INN10_WEIGHTS = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_1 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12_WEIGHTS_2 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_KPP = re.compile(r"^\d{4}[\dA-Z]{2}\d{3}$", re.ASCII)


def _check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def inn_problem(inn: str) -> str | None:
    """None when ``inn`` is a valid 10- or 12-digit INN, else what is wrong with it."""
    if not (inn.isascii() and inn.isdigit()) or len(inn) not in (10, 12):
        return "INN must be 10 digits (organisation) or 12 digits (person)"
    if len(inn) == 10:
        ok = _check_digit(inn, _INN10_WEIGHTS) == int(inn[9])
    else:
        ok = _check_digit(inn, _INN12_WEIGHTS_1) == int(inn[10]) and _check_digit(inn, _INN12_WEIGHTS_2) == int(inn[11])
    return None if ok else "INN check digit does not match"


def kpp_problem(kpp: str) -> str | None:
    return None if _KPP.fullmatch(kpp) else "KPP must be 9 characters: 4 digits, 2 digits or letters, 3 digits"


def ogrn_problem(ogrn: str) -> str | None:
    """OGRN (13 digits, organisations) or OGRNIP (15 digits, sole traders)."""
    if not (ogrn.isascii() and ogrn.isdigit()) or len(ogrn) not in (13, 15):
        return "OGRN must be 13 digits (or OGRNIP 15 digits)"
    body, check = int(ogrn[:-1]), int(ogrn[-1])
    modulus = 11 if len(ogrn) == 13 else 13
    return None if body % modulus % 10 == check else "OGRN check digit does not match"
