"""Checks shared by every feature for the free text and words it accepts.

``check_text`` keeps a value exactly as given (names in any script round-trip) and refuses
blank, oversized or control-character text; ``check_word`` parses a string enum member;
``normalise_text`` is what blind indexes and comparisons see. Errors name the field and
the rule, never the value.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import TypeVar

from vault.errors import InvalidInput

__all__ = ["MAX_TEXT", "check_text", "check_word", "normalise_text"]

_W = TypeVar("_W", bound=StrEnum)
MAX_TEXT = 1000


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
