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


IdArg = Annotated[strawberry.ID, strawberry.argument(description="A customer id (UUID).")]


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(field, "is not a customer id") from None
