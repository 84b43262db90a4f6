"""Checks shared by every feature for the free text and words it accepts.

``check_text`` keeps a value exactly as given (names in any script round-trip) and refuses
blank, oversized or control-character text; ``check_word`` parses a string enum member;
``normalise_text`` is what blind indexes and comparisons see; ``parse_date`` and
``date_problem`` tell a malformed date from one the calendar lacks (``2023-02-30``).
Errors name the field and the rule, never the value.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from enum import StrEnum
from typing import TypeVar

from vault.errors import InvalidInput

__all__ = [
    "ISO_DATE_RULE",
    "MAX_TEXT",
    "check_text",
    "check_word",
    "date_problem",
    "normalise_text",
    "parse_date",
]

_W = TypeVar("_W", bound=StrEnum)
MAX_TEXT = 1000
ISO_DATE_RULE = "must be an ISO date (YYYY-MM-DD)"
_DATE_SHAPE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?=$|[T ])")


def date_problem(text: str, shape_rule: str) -> str:
    """Why a date (or a date and time) was refused: ``is not a calendar date`` when it has
    the ISO shape but names a day the calendar lacks (``2023-02-30``, ``2023-13-01``),
    else ``shape_rule`` (what the shape must be)."""
    found = _DATE_SHAPE.match(text.strip())
    if found is None:
        return shape_rule
    try:
        date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        return "is not a calendar date"
    return shape_rule


def parse_date(text: str, *, field: str) -> date:
    """A ``YYYY-MM-DD`` date; refused as malformed, or as not a calendar date."""
    stripped = text.strip()
    found = _DATE_SHAPE.match(stripped)
    if found is None or found.end() != len(stripped):
        raise InvalidInput(field, ISO_DATE_RULE)
    try:
        return date(int(found[1]), int(found[2]), int(found[3]))
    except ValueError:
        raise InvalidInput(field, "is not a calendar date") from None


def normalise_text(value: str) -> str:
    """NFKC with surrounding white space removed; what blind indexes and comparisons see."""
    return unicodedata.normalize("NFKC", value).strip()


def check_text(value: str, *, field: str, max_length: int = MAX_TEXT) -> str:
    """Keep the value exactly as given (names round-trip); refuse empty or oversized text."""
    if not value.strip():
        raise InvalidInput(field, "must not be blank")
    if len(value) > max_length:
        raise InvalidInput(field, f"must be at most {max_length} characters")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise InvalidInput(field, "must not contain control characters")
    return value


def check_word(kind: type[_W], value: str, *, field: str) -> _W:
    """A member of a string enum (a channel, a state, a request type); the error names
    the field and the allowed words, never the value given."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(v.value for v in kind)
        raise InvalidInput(field, f"must be one of: {allowed}") from None
