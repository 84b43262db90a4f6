"""Relay's Node interface: every object a client can fetch again by its global id alone
(``node(id:)``, ``nodes(ids:)``). An implementing type names itself (``NODE_TYPE``, its
GraphQL name) and its UUID (:meth:`Node.node_uuid`); ``id`` is then the global id of
:func:`api.graphql.types.common.global_id`, beside the type's own UUID field."""

from __future__ import annotations

import uuid
from typing import ClassVar

import strawberry

from api.graphql.context import Ctx
from api.graphql.types.common import global_id

__all__ = ["Node"]


@strawberry.interface(
    description="An object with a global id (Relay Object Identification): node(id:) "
    "fetches it again, under the same policy, consent and audit as its own field."
)
class Node:
    NODE_TYPE: ClassVar[str]

    @strawberry.field(
        description="The global id: opaque and tamper-evident; pass it back as it is."
    )
    def id(self, info: Ctx) -> strawberry.ID:
        return global_id(info.context, self.NODE_TYPE, self.node_uuid())

    def node_uuid(self) -> uuid.UUID:
        """The object's UUID (its ``customerId``, ``segmentId``, ...)."""
        raise NotImplementedError
