"""What every type and resolver shares: page info, the id argument and its parsing, and
enums of the domain's vocabulary described value by value."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, TypeVar

import strawberry

from vault.errors import InvalidInput

__all__ = ["After", "First", "IdArg", "PageInfo", "described_enum", "parse_id"]

_E = TypeVar("_E", bound=type[Enum])


@strawberry.type(description="Where a page of a list ends, and whether more follows.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="Whether another page follows this one.")
    end_cursor: str | None = strawberry.field(
        description="The cursor of the last item: pass it as `after` for the next page."
    )


def described_enum(enum: _E, name: str, description: str, values: Mapping[str, str]) -> _E:
    """A domain enum as a GraphQL enum with a description on the enum and on each value
    (``values`` by member name; a member left out, or one that does not exist, raises,
    so the descriptions stay complete as the vocabulary grows)."""
    # A type annotated with the enum before this ran gave it a definition already (named
    # after the class): that one is completed in place, so the schema sees one enum.
    earlier = getattr(enum, "__strawberry_definition__", None)
    wrapped = strawberry.enum(enum, name=name, description=description)
    definition = wrapped.__strawberry_definition__  # type: ignore[attr-defined]
    if earlier is not None:
        earlier.name, earlier.description = name, description
        earlier.values = definition.values
        wrapped.__strawberry_definition__ = definition = earlier  # type: ignore[attr-defined]
    names = {value.name for value in definition.values}
    if names != set(values):
        raise ValueError(f"{name}: describe exactly {sorted(names)}")
    for value in definition.values:
        value.description = values[value.name]
    return wrapped


IdArg = Annotated[strawberry.ID, strawberry.argument(description="An id (UUID).")]
First = Annotated[int, strawberry.argument(description="How many items to return.")]
After = Annotated[
    str | None,
    strawberry.argument(description="Start after this cursor (a page's endCursor)."),
]


def parse_id(value: str, field: str = "id", kind: str = "customer") -> uuid.UUID:
    """The UUID in an id argument; a malformed one is refused naming the argument and the
    kind of id it takes (``id: is not a segment id (a UUID)``). Ids are UUIDs of every
    kind, so an id of another kind parses, and is then not found: the NOT_FOUND message
    names the kind looked for (``segment ... not found``)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(field, f"is not a {kind} id (a UUID)") from None
