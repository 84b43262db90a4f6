"""Relay Object Identification: ``node(id:)`` and ``nodes(ids:)`` fetch any object that
implements :class:`~api.graphql.types.node.Node` by its global id alone.

The global id names the type; the fetch is the very service call the type's own field
makes (``customer(id:)``, ``segment(id:)``, ``dsrRequest(id:)``) or, for the types
without one, the call that applies their list's checks to one item (an interaction under
its customer's timeline checks, an audit entry under the audit log's or the access
history's), so policy, consent, restriction and audit decide exactly as they do there:
the same data, the same errors, the same audit entries. A garbled or forged id is
``BAD_USER_INPUT`` before anything is read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Final

import strawberry

from api.graphql.context import Ctx, GraphQLContext
from api.graphql.requests import DsrRequest, dsr_request
from api.graphql.types.audit import AuditEntry
from api.graphql.types.common import open_global_id
from api.graphql.types.customers import Customer, Segment
from api.graphql.types.interactions import Interaction
from api.graphql.types.node import Node
from vault.errors import InvalidInput
from vault.pagination import MAX_PAGE

__all__ = ["NodeQuery", "fetch_node"]


def _customer(ctx: GraphQLContext, local: uuid.UUID) -> Node:
    return Customer(record=ctx.vault.customers.get(ctx.session, local))


def _interaction(ctx: GraphQLContext, local: uuid.UUID) -> Node:
    return Interaction(record=ctx.vault.interactions.get(ctx.session, local))


def _segment(ctx: GraphQLContext, local: uuid.UUID) -> Node:
    return Segment(record=ctx.vault.segments.get(ctx.session, local))


def _request(ctx: GraphQLContext, local: uuid.UUID) -> Node:
    return dsr_request(ctx.privacy.desk.get(ctx.session, local))


def _entry(ctx: GraphQLContext, local: uuid.UUID) -> Node:
    return AuditEntry(record=ctx.vault.trail.entry(ctx.session, local))


# Each Node type, by the name its global ids carry, and how one is fetched.
_FETCH: Final[dict[str, Callable[[GraphQLContext, uuid.UUID], Node]]] = {
    Customer.NODE_TYPE: _customer,
    Interaction.NODE_TYPE: _interaction,
    Segment.NODE_TYPE: _segment,
    DsrRequest.NODE_TYPE: _request,
    AuditEntry.NODE_TYPE: _entry,
}


def fetch_node(ctx: GraphQLContext, value: str, field: str = "id") -> Node:
    """The object a global id names, fetched under the caller's policy."""
    type_name, local = open_global_id(ctx, value, field)
    fetch = _FETCH.get(type_name)
    if fetch is None:  # pragma: no cover - only ids of Node types are ever sealed
        raise InvalidInput(field, "is not an id this API returned")
    return fetch(ctx, local)


@strawberry.type
class NodeQuery:
    @strawberry.field(description="Any object by its global id (Relay).")
    def node(
        self,
        info: Ctx,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id (Node.id).")],
    ) -> Node | None:
        return fetch_node(info.context, id)

    @strawberry.field(
        description=f"Objects by their global ids, at most {MAX_PAGE}, in the order given; "
        "one that cannot be fetched is null with its error."
    )
    def nodes(
        self,
        info: Ctx,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description="Global ids (Node.id).")
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_PAGE:
            raise InvalidInput("ids", f"at most {MAX_PAGE} per call")
        out: list[Node | None] = []
        for n, value in enumerate(ids):
            try:
                out.append(fetch_node(info.context, value, f"ids[{n}]"))
            except Exception as exc:  # noqa: BLE001 - graphql-core locates it at nodes.n
                out.append(exc)  # type: ignore[arg-type]
        return out
