"""Mask formats: which mask a ``masked`` field shows, named per role, field and purpose.

A policy names a format with a ``p3`` line (``p3, support_agent, phone, support, last4``);
a field no line names shows its ``default`` mask, today's (:mod:`policies.masking`). The
vocabulary is fixed, and each format is valid only for some fields: a phone format on an
e-mail address is refused when the policy loads, never when a value is read.

| format | fields | ``masked`` shows |
| --- | --- | --- |
| ``default`` | every field | today's mask (:mod:`policies.masking`) |
| ``redacted`` | every field | ``***`` |
| ``last4`` | phone | ``***6789``: the last four digits (fewer than 8 digits: ``***``) |
| ``country_code`` | phone | ``+98 ***``: the country calling code of an E.164 number |
| ``first_letter`` | email | ``j***@example.com``: the local part's first letter, the domain |
| ``local_hidden`` | email | ``***@example.com``: the domain only, after ``***@`` |
| ``domain_only`` | email | ``example.com`` |
| ``initials`` | first_name, last_name | ``M. A.``: each word's first letter |
| ``year_only`` | birth_date | ``1990`` |
| ``country_only`` | address | ``TH``: an address in parts, its country (free text: ``***``) |

Format functions are pure (no key, no clock, no database) and count user-perceived
characters like every mask, so a Persian, Thai or Chinese name keeps its first letter
whole. No format shows a whole value: a value no longer than the part it would keep is
masked completely, as ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from enum import StrEnum
from typing import Final

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from policies.masking import MASK, characters, mask, mask_postal_address
from policies.purposes import Resource

__all__ = [
    "FORMATS",
    "MaskFormat",
    "format_country_code",
    "format_domain_only",
    "format_first_letter",
    "format_initials",
    "format_last4",
    "format_local_hidden",
    "format_year_only",
    "mask_as",
    "mask_postal_address_as",
]


class MaskFormat(StrEnum):
    """The fixed vocabulary of mask formats a policy may name."""

    DEFAULT = "default"
    REDACTED = "redacted"
    LAST4 = "last4"
    COUNTRY_CODE = "country_code"
    FIRST_LETTER = "first_letter"
    LOCAL_HIDDEN = "local_hidden"
    DOMAIN_ONLY = "domain_only"
    INITIALS = "initials"
    YEAR_ONLY = "year_only"
    COUNTRY_ONLY = "country_only"


_EVERY: Final = (MaskFormat.DEFAULT, MaskFormat.REDACTED)
# Which formats each field takes, in the order error messages list them.
FORMATS: Final[Mapping[str, tuple[MaskFormat, ...]]] = {
    Resource.EMAIL.value: (
        *_EVERY,
        MaskFormat.FIRST_LETTER,
        MaskFormat.LOCAL_HIDDEN,
        MaskFormat.DOMAIN_ONLY,
    ),
    Resource.PHONE.value: (*_EVERY, MaskFormat.LAST4, MaskFormat.COUNTRY_CODE),
    Resource.FIRST_NAME.value: (*_EVERY, MaskFormat.INITIALS),
    Resource.LAST_NAME.value: (*_EVERY, MaskFormat.INITIALS),
    Resource.BIRTH_DATE.value: (*_EVERY, MaskFormat.YEAR_ONLY),
    Resource.ADDRESS.value: (*_EVERY, MaskFormat.COUNTRY_ONLY),
}

_E164: Final = re.compile(r"\+[1-9][0-9]{6,14}")
_LAST: Final = 4
_LAST_HIDDEN: Final = 4  # digits that stay hidden whatever the format


def format_last4(value: str) -> str:
    """``+98 912 345 6789`` -> ``***6789``: the last four digits, whatever the length, as
    long as four others stay hidden (a number of fewer than eight digits -> ``***``)."""
    digits = [char for char in value if char.isdecimal()]
    if len(digits) < _LAST + _LAST_HIDDEN:
        return MASK
    return MASK + "".join(digits[-_LAST:])


def format_country_code(value: str) -> str:
    """An E.164 number (as the vault stores phones) -> ``+98 ***``; anything else -> ``***``.

    Calling codes are prefix-free, so the first of the number's 1-3 leading digits that
    is a known code is its code (phonenumbers' table; no parsing needed)."""
    text = value.strip()
    if _E164.fullmatch(text) is None:
        return MASK
    for length in (1, 2, 3):
        code = int(text[1 : 1 + length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return f"+{code} {MASK}"
    return MASK


def _email_parts(value: str) -> tuple[str, str] | None:
    local, at, domain = value.strip().rpartition("@")
    labels = domain.split(".")
    if not at or not local or len(labels) < 2 or not all(labels):
        return None
    return local, domain


def format_first_letter(value: str) -> str:
    """``jane.doe@example.com`` -> ``j***@example.com``; a one-letter local part -> ``***@``."""
    parts = _email_parts(value)
    if parts is None:
        return MASK
    local, domain = parts
    chars = characters(local)
    shown = chars[0] + MASK if len(chars) > 1 else MASK
    return f"{shown}@{domain}"


def format_local_hidden(value: str) -> str:
    """``jane.doe@example.com`` -> ``***@example.com``."""
    parts = _email_parts(value)
    return MASK if parts is None else f"{MASK}@{parts[1]}"


def format_domain_only(value: str) -> str:
    """``jane.doe@example.com`` -> ``example.com``."""
    parts = _email_parts(value)
    return MASK if parts is None else parts[1]


def format_initials(value: str) -> str:
    """``Mary Ann`` -> ``M. A.``, ``زهرا`` -> ``ز.``, ``王小明`` -> ``王.``; a name of one
    character (``王``) -> ``***``: its initial is all of it."""
    words = value.split()
    if not words or (len(words) == 1 and len(characters(words[0])) < 2):
        return MASK
    return " ".join(characters(word)[0] + "." for word in words)


def format_year_only(value: date | str) -> str:
    """``1990-04-17`` -> ``1990``; a value that is not an ISO date -> ``***``."""
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            return MASK
    return f"{value.year:04d}"


def _redacted(_value: str) -> str:
    return MASK


_TEXT: Final[Mapping[str, Callable[[str], str]]] = {
    MaskFormat.REDACTED: _redacted,
    MaskFormat.LAST4: format_last4,
    MaskFormat.COUNTRY_CODE: format_country_code,
    MaskFormat.FIRST_LETTER: format_first_letter,
    MaskFormat.LOCAL_HIDDEN: format_local_hidden,
    MaskFormat.DOMAIN_ONLY: format_domain_only,
    MaskFormat.INITIALS: format_initials,
    MaskFormat.YEAR_ONLY: format_year_only,
    MaskFormat.COUNTRY_ONLY: _redacted,  # free text: no part is known to be the country
}


def mask_as(resource: str, value: str | date, fmt: str = MaskFormat.DEFAULT) -> str:
    """Mask ``value`` of ``resource`` (a customer field) in format ``fmt``.

    Raises ``ValueError`` for a format the field does not take: a loaded policy never
    names one (it is refused at load), so this is a programming error.
    """
    allowed = FORMATS.get(str(resource), ())
    if fmt not in allowed:
        raise ValueError(f"mask format {str(fmt)[:32]!r} is not defined for {str(resource)[:64]!r}")
    if fmt == MaskFormat.DEFAULT:
        return mask(resource, value)
    if fmt == MaskFormat.YEAR_ONLY:
        return format_year_only(value)
    if isinstance(value, date):
        return MASK  # redacted: the only other format a date takes
    return _TEXT[fmt](value)  # StrEnum members hash as their text


def mask_postal_address_as(city: str | None, country: str | None, fmt: str) -> str:
    """An address in parts, masked in format ``fmt``: ``default`` city and country,
    ``country_only`` the country, ``redacted`` ``***``."""
    if fmt == MaskFormat.COUNTRY_ONLY:
        return country or MASK
    if fmt == MaskFormat.REDACTED:
        return MASK
    return mask_postal_address(city, country)
