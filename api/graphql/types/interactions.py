"""Interactions: the output type and its connection, and the input to record them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, path_of
from api.graphql.types.common import PageInfo
from vault.interactions import Interaction as InteractionRecord
from vault.pagination import Page, encode_cursor
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


@strawberry.type
class Interaction:
    record: strawberry.Private[InteractionRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
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


def interaction_connection(page: Page[InteractionRecord]) -> InteractionConnection:
    return InteractionConnection(
        edges=[
            InteractionEdge(node=Interaction(record=i), cursor=encode_cursor(i.occurred_at, i.id))
            for i in page.items
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
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
