"""Normal forms of contact data: what the blind indexes of email and phone are computed over.

Email: NFKC, trimmed, case-folded, one ``@`` and a dotted domain. Phone: E.164. Errors name
the field and the rule, never the value.
"""

from __future__ import annotations

import re
from datetime import date

import phonenumbers

from vault.errors import InvalidInput
from vault.text import normalise_text, parse_date

__all__ = ["normalise_email", "normalise_full_name", "normalise_phone", "parse_birth_date"]

_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_email(value: str, *, field: str = "email") -> str:
    """NFKC, trimmed and case-folded; must have one ``@`` and a dotted domain."""
    folded = normalise_text(value).casefold()
    if len(folded) > 320 or not _EMAIL_SHAPE.match(folded):
        raise InvalidInput(field, "is not a valid email address")
    return folded


def normalise_phone(value: str, *, region: str | None = None, field: str = "phone") -> str:
    """E.164 (``+4915112345678``); without ``+`` a default region must be configured."""
    text = normalise_text(value)
    if not text or len(text) > 64:
        raise InvalidInput(field, "is not a valid phone number")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise InvalidInput(
            field,
            "is not a valid phone number (use international format, e.g. +44...)",
        ) from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidInput(field, "is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_full_name(first_name: str, last_name: str) -> str:
    """First and last name as one comparable form: NFKC, case-folded, runs of white
    space made one space. Only for matching; the names are stored exactly as given."""
    joined = f"{normalise_text(first_name)} {normalise_text(last_name)}"
    return " ".join(joined.casefold().split())


def parse_birth_date(value: str | date, *, field: str = "birth_date") -> date:
    """A ``YYYY-MM-DD`` date: a malformed one and one the calendar lacks (``2023-02-30``)
    are refused with different rules."""
    if isinstance(value, date):
        return value
    return parse_date(value, field=field)
