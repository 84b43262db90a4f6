"""Validation and normalisation of PII values for blind indexes and comparison.

Errors name the field and the rule, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import TypeVar

import phonenumbers

from vault.errors import InvalidInput

__all__ = [
    "check_word",
    "normalise_email",
    "normalise_phone",
    "normalise_text",
    "parse_birth_date",
]

_W = TypeVar("_W", bound=StrEnum)

_EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_TEXT = 1000


def normalise_text(value: str) -> str:
    """NFKC with surrounding white space removed; what blind indexes and comparisons see."""
    return unicodedata.normalize("NFKC", value).strip()


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


def check_text(value: str, *, field: str, max_length: int = MAX_TEXT) -> str:
    """Keep the value exactly as given (names round-trip); refuse empty or oversized text."""
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def parse_birth_date(value: str | date, *, field: str = "birth_date") -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(field, "must be an ISO date (YYYY-MM-DD)") from None


def check_word(kind: type[_W], value: str, *, field: str) -> _W:
    """A member of a string enum (a channel, a state, a request type); the error names
    the field and the allowed words, never the value given."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidInput(field, f"must be one of: {allowed}") from None
