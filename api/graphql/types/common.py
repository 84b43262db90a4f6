"""What every type and resolver shares: page info, the id argument and its parsing."""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from vault.errors import InvalidInput

__all__ = ["IdArg", "PageInfo", "parse_id"]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


IdArg = Annotated[strawberry.ID, strawberry.argument(description="An id (UUID).")]


def parse_id(value: str, field: str = "id", kind: str = "customer") -> uuid.UUID:
    """The UUID in an id argument; a malformed one is refused naming the argument and the
    kind of id it takes (``id: is not a segment id (a UUID)``). Ids are UUIDs of every
    kind, so an id of another kind parses, and is then not found: the NOT_FOUND message
    names the kind looked for (``segment ... not found``)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(field, f"is not a {kind} id (a UUID)") from None
