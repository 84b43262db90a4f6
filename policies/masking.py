"""Masks for fields that resolve to ``masked``: pure functions over characters.

Masks count user-perceived characters, not bytes and not code points: a base
character keeps its combining marks (Thai vowel and tone marks, Arabic
harakat, a decomposed accent), and an emoji keeps its modifiers and
zero-width-joined parts. So a Persian, Thai or Chinese value is masked the
same way as a Latin one, and a mask never ends in half a letter.

The rules (issue 3):

- email: first character of the local part, ``***``, ``@``, first character
  of the first domain label, ``***``, ``.`` and the top-level domain:
  ``jane.doe@example.com`` -> ``j***@e***.com``.
- phone: ``***`` and the last four digits, but at least six digits stay
  hidden, so a short number shows fewer: ``+98 912 345 6789`` -> ``***6789``.
- names: first character and ``***``: ``زهرا`` -> ``ز***``.
- birth date: month and day only, in ISO 8601's year-less form ``--MM-DD``.
- PII custom attributes (policies/attributes.py): a date as a birth date (``--MM-DD``),
  any other value completely, ``***``: a loyalty number or a household size has no part
  that is safe to show.
- address: city and country only, ``Chiang Mai, TH``, for an address stored in
  parts (vault/customers/addresses.py). A free-text address is masked completely as
  ``***``: it comes in any script and order (Persian and Chinese addresses start
  with the city, English ones with the house number), so no rule can tell which
  of its words are the city.

No mask ever shows a whole value (or a whole part of an e-mail address): a
value as short as the part a mask would keep is masked completely, as ``***``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from datetime import date
from typing import Final

from policies.purposes import Resolution, Resource

__all__ = [
    "MASK",
    "apply",
    "characters",
    "mask",
    "mask_address",
    "mask_attribute",
    "mask_birth_date",
    "mask_email",
    "mask_name",
    "mask_phone",
    "mask_postal_address",
]

MASK: Final = "***"
_ZWJ: Final = "\u200d"
_PHONE_DIGITS: Final = 4
_PHONE_HIDDEN_DIGITS: Final = 6


def _extends(char: str) -> bool:
    """True for a character that belongs to the one before it."""
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return True
    return char == _ZWJ or "\U0001f3fb" <= char <= "\U0001f3ff"  # emoji skin-tone modifiers


def characters(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (an approximation of grapheme clusters).

    A combining mark, a zero-width joiner, the character after a joiner and an
    emoji modifier stay with the character before them.
    """
    clusters: list[str] = []
    for char in text:
        if clusters and (_extends(char) or clusters[-1].endswith(_ZWJ)):
            clusters[-1] += char
        else:
            clusters.append(char)
    return clusters


def _keep_start(text: str, count: int) -> str:
    """The first ``count`` characters and ``***``; only ``***`` if that would show it all."""
    chars = characters(text)
    if len(chars) <= count:
        return MASK
    return "".join(chars[:count]) + MASK


def mask_name(value: str) -> str:
    """``Jane`` -> ``J***``; a one-character name becomes ``***``."""
    return _keep_start(value.strip(), 1)


def mask_email(value: str) -> str:
    """``jane.doe@example.com`` -> ``j***@e***.com``; anything unlike an address -> ``***``."""
    local, at, domain = value.strip().rpartition("@")
    labels = domain.split(".")
    if not at or not local or len(labels) < 2 or not all(labels):
        return MASK
    return f"{_keep_start(local, 1)}@{_keep_start(labels[0], 1)}.{labels[-1]}"


def mask_phone(value: str) -> str:
    """``+98 912 345 6789`` -> ``***6789``: the last four digits; at least six stay hidden."""
    digits = [char for char in value if char.isdecimal()]
    keep = min(_PHONE_DIGITS, max(0, len(digits) - _PHONE_HIDDEN_DIGITS))
    return MASK + "".join(digits[len(digits) - keep :]) if keep else MASK


def mask_birth_date(value: date | str) -> str:
    """``1990-04-17`` -> ``--04-17``; a value that is not an ISO date -> ``***``."""
    if not isinstance(value, date):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            return MASK
    return f"--{value.month:02d}-{value.day:02d}"


def mask_address(_value: str) -> str:
    """A free-text address -> ``***``: nothing in it can be told to be the city."""
    return MASK


def mask_postal_address(city: str | None, country: str | None) -> str:
    """An address in parts -> its city and country, ``تهران, IR``; ``***`` when it has neither."""
    shown = [part for part in (city, country) if part]
    return ", ".join(shown) if shown else MASK


def mask_attribute(kind: str, value: object) -> str:
    """A PII custom attribute of this type (``string``, ``date``, ...): ``--MM-DD`` for a
    date, ``***`` for anything else."""
    if kind == "date" and isinstance(value, str | date):
        return mask_birth_date(value)
    return MASK


_MASKS: Final[Mapping[str, Callable[[str], str]]] = {
    Resource.EMAIL: mask_email,
    Resource.PHONE: mask_phone,
    Resource.FIRST_NAME: mask_name,
    Resource.LAST_NAME: mask_name,
    Resource.BIRTH_DATE: mask_birth_date,
    Resource.ADDRESS: mask_address,
}


def mask(resource: str, value: str | date) -> str:
    """Mask ``value`` by the rule of its resource (a customer field)."""
    if isinstance(value, date):
        if resource != Resource.BIRTH_DATE:
            raise ValueError(f"a date value cannot be masked as {resource!s}")
        return mask_birth_date(value)
    rule = _MASKS.get(str(resource))
    if rule is None:
        raise ValueError(f"no mask is defined for resource {str(resource)[:64]!r}")
    return rule(value)


def apply(resolution: Resolution, resource: str, value: str | date | None) -> str | date | None:
    """What the caller sees: the value, its mask, or ``None`` for hidden (and for no value)."""
    if value is None or resolution == Resolution.HIDDEN:
        return None
    if resolution == Resolution.CLEAR:
        return value
    return mask(resource, value)
