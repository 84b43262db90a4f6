"""Interactions: the output type and its connection, and the input to record them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import ClassVar, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, path_of
from api.graphql.types.common import PageInfo, page_info
from api.graphql.types.node import Node
from vault.interactions import Interaction as InteractionRecord
from vault.pagination import Page
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = [
    "Channel",
    "Interaction",
    "InteractionConnection",
    "InteractionEdge",
    "InteractionInput",
    "InteractionType",
    "RecordResult",
    "interaction_connection",
]

Channel = strawberry.enum(ChannelEnum, name="Channel")
InteractionType = strawberry.enum(InteractionTypeEnum, name="InteractionType")


@strawberry.type(description="Something a customer did, on one channel, at one time.")
class Interaction(Node):
    record: strawberry.Private[InteractionRecord]
    NODE_TYPE: ClassVar[str] = "Interaction"

    def node_uuid(self) -> uuid.UUID:
        return self.record.id

    @strawberry.field(description="The interaction's id (a UUID).")
    def interaction_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field
    def channel(self) -> ChannelEnum:
        return self.record.channel

    @strawberry.field
    def type(self) -> InteractionTypeEnum:
        return self.record.type

    @strawberry.field
    def occurred_at(self) -> datetime:
        return self.record.occurred_at

    @strawberry.field
    def amount(self) -> Decimal | None:
        return self.record.amount

    @strawberry.field
    def currency(self) -> str | None:
        return self.record.currency

    @strawberry.field
    def external_id(self) -> str | None:
        return self.record.external_id

    @strawberry.field
    def payload(self, info: Ctx) -> JSON | None:
        if self.record.payload_hidden:
            info.context.redacted.append(path_of(info))
            return None
        if self.record.payload is None:
            return None
        return cast(JSON, self.record.payload)


@strawberry.type
class InteractionEdge:
    node: Interaction
    cursor: str


@strawberry.type
class InteractionConnection:
    edges: list[InteractionEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], int]]

    @strawberry.field(
        description="How many interactions the customer's timeline holds under the same "
        "filters, counted without reading any; audited as interactions.count."
    )
    def total_count(self) -> int:
        return self.counter()


def interaction_connection(
    page: Page[InteractionRecord], counter: Callable[[], int]
) -> InteractionConnection:
    return InteractionConnection(
        edges=[
            InteractionEdge(node=Interaction(record=i), cursor=page.cursor(n))
            for n, i in enumerate(page.items)
        ],
        page_info=page_info(page),
        counter=counter,
    )


@strawberry.input
class InteractionInput:
    channel: ChannelEnum
    type: InteractionTypeEnum
    occurred_at: datetime
    customer_id: strawberry.ID | None = None
    source: str | None = None
    customer_external_id: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    external_id: str | None = None
    payload: JSON | None = None


@strawberry.type
class RecordResult:
    inserted: int
    duplicates: int
