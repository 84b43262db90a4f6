"""Relay-style keyset pagination shared by the services: opaque cursors over (time, id)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from vault.errors import InvalidInput

__all__ = ["MAX_PAGE", "Page", "decode_cursor", "encode_cursor", "every_item"]

MAX_PAGE = 100
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    end_cursor: str | None
    has_next_page: bool


def encode_cursor(occurred_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{occurred_at.isoformat()}|{row_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        stamp, row_id = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split("|")
        when = datetime.fromisoformat(stamp)
        parsed = uuid.UUID(row_id)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput("after", "is not a cursor this API returned") from None
    if when.tzinfo is None:
        raise InvalidInput("after", "is not a cursor this API returned")
    return when, parsed


def every_item(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paginated listing: ``fetch(after)`` gives one page at a time."""
    after: str | None = None
    while True:
        page = fetch(after)
        yield from page.items
        if not page.has_next_page:
            return
        after = page.end_cursor
