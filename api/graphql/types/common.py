"""What every type and resolver shares: page info, Relay's page arguments, global ids,
the parsing of id arguments, and enums of the domain's vocabulary described value by
value.

A global id is the handle (:mod:`vault.crypto.handles`, use ``node``) of
``<GraphQL type>:<UUID>``: opaque and tamper-evident, so a garbled or forged one is
``BAD_USER_INPUT``. An id argument (``customer(id:)``, ``legalHolds(customerId:)``,
...) takes either the object's global id or its UUID (the ``customerId``,
``segmentId``, ... fields and everything outside GraphQL: tokens, webhooks, the CLI).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Annotated, Any, Final, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField

from api.graphql.context import Ctx, GraphQLContext, selects
from vault.crypto.handles import HandleInvalid
from vault.errors import InvalidInput
from vault.pagination import Page, Window

__all__ = [
    "NODE_TYPES",
    "NO_PAGE",
    "AfterArg",
    "BeforeArg",
    "FirstArg",
    "IdArg",
    "LastArg",
    "PageInfo",
    "count_only",
    "described_enum",
    "global_id",
    "open_global_id",
    "page_info",
    "page_sizes",
    "parse_id",
    "taken",
]

# The kinds of id an argument names, and the GraphQL type whose global id is one.
NODE_TYPES: Final = {
    "customer": "Customer",
    "interaction": "Interaction",
    "segment": "Segment",
    "data subject request": "DsrRequest",
    "audit entry": "AuditEntry",
}
_USE: Final = "node"


@strawberry.type(description="Where a page sits in its list (Relay's PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="More items follow the page (with before: they follow it)."
    )
    has_previous_page: bool = strawberry.field(
        description="More items precede the page (with after: they precede it)."
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor.")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor.")


def page_info(page: Page[Any]) -> PageInfo:
    return PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.start_cursor,
        end_cursor=page.end_cursor,
    )


_E = TypeVar("_E", bound=type[Enum])


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


IdArg = Annotated[
    strawberry.ID, strawberry.argument(description="An id: the global id, or the UUID.")
]
FirstArg = Annotated[
    int,
    strawberry.argument(
        description="The first items (1-100) of the list the cursors bound; the default "
        "applies unless last is given."
    ),
]
AfterArg = Annotated[str | None, strawberry.argument(description="Only items after this cursor.")]
LastArg = Annotated[
    int | None,
    strawberry.argument(
        description="The last items (1-100) of the list the cursors bound; not with first."
    ),
]
BeforeArg = Annotated[str | None, strawberry.argument(description="Only items before this cursor.")]


def page_sizes(info: Ctx, first: int, last: int | None) -> tuple[int | None, int | None]:
    """``first`` and ``last`` as the list takes them: ``first`` has a default in the
    schema, which does not apply when ``last`` is given; both given is refused."""
    if last is None:
        return first, None
    here = info.selected_fields[0]
    if isinstance(here, SelectedField) and here.arguments.get("first") is not None:
        raise InvalidInput("last", "give first or last, not both")
    return None, last


# The page of a connection asked for its totalCount alone: nothing was read.
NO_PAGE: Final[Page[Any]] = Page([], [], has_next_page=False, has_previous_page=False)


def count_only(info: Ctx, first: int | None, last: int | None) -> bool:
    """Whether the connection being resolved is asked for its totalCount and neither its
    edges nor its pageInfo: then it reads no page (no record is read, or audited as
    read), only the count; its page sizes are still checked."""
    if not selects(info, "totalCount") or selects(info, "edges", "pageInfo"):
        return False
    Window.of(first=first, last=last)
    return True


def taken(count: int) -> Callable[[], int]:
    """A connection's counter for a count already taken."""
    return lambda: count


def global_id(ctx: GraphQLContext, type_name: str, local: uuid.UUID) -> strawberry.ID:
    """The global id of the object of type ``type_name`` whose UUID is ``local``."""
    return strawberry.ID(ctx.vault.handles.seal(_USE, f"{type_name}:{local}"))


def open_global_id(ctx: GraphQLContext, value: str, field: str = "id") -> tuple[str, uuid.UUID]:
    """The type name and UUID of a global id; ``InvalidInput(field)`` for anything the
    API did not give out."""
    try:
        type_name, _, local = ctx.vault.handles.open(_USE, str(value)).partition(":")
        return type_name, uuid.UUID(local)
    except (HandleInvalid, ValueError):
        raise InvalidInput(field, "is not an id this API returned") from None


def parse_id(
    ctx: GraphQLContext, value: str, field: str = "id", kind: str = "customer"
) -> uuid.UUID:
    """The UUID an id argument names: given as the UUID itself, or as the global id of
    an object of the kind asked for. Anything else is refused naming the argument and
    the kind (``id: is not a segment id (a UUID or a Segment's global id)``). A UUID of
    another kind parses, and is then not found: the NOT_FOUND message names the kind
    looked for (``segment ... not found``)."""
    text = str(value)
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    wanted = NODE_TYPES.get(kind)
    rule = f"is not a {kind} id (a UUID" + (f" or a {wanted}'s global id)" if wanted else ")")
    if wanted is None:
        raise InvalidInput(field, rule)
    try:
        type_name, local = open_global_id(ctx, text, field)
    except InvalidInput:
        raise InvalidInput(field, rule) from None
    if type_name != wanted:
        raise InvalidInput(field, rule)
    return local
