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
from api.graphql.types.common import PageInfo, described_enum, page_info
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

Channel = described_enum(
    ChannelEnum,
    "Channel",
    "Where an interaction happened.",
    {
        "WEB": "The website.",
        "EMAIL": "E-mail.",
        "SMS": "Text messages.",
        "PUSH": "Push notifications.",
        "SOCIAL": "Social networks.",
        "CHAT": "Chat (support or sales).",
        "PHONE": "Phone calls.",
        "STORE": "A physical store.",
        "APP": "The mobile app.",
    },
)
InteractionType = described_enum(
    InteractionTypeEnum,
    "InteractionType",
    "What happened in an interaction.",
    {
        "PAGE_VIEW": "A page was viewed.",
        "EMAIL_OPEN": "An e-mail was opened.",
        "EMAIL_CLICK": "A link in an e-mail was followed.",
        "EMAIL_BOUNCE": "An e-mail could not be delivered.",
        "SMS_CLICK": "A link in a text message was followed.",
        "PUSH_OPEN": "A push notification was opened.",
        "CART_ADD": "An item was put in the cart.",
        "CART_ABANDON": "A cart was left without a purchase.",
        "PURCHASE": "A purchase (with an amount and currency).",
        "REFUND": "A refund (with an amount and currency).",
        "CHAT_MESSAGE": "A chat message.",
        "SOCIAL_LIKE": "A like on a social network.",
        "SOCIAL_SHARE": "A share on a social network.",
        "CALL": "A phone call.",
        "STORE_VISIT": "A visit to a store.",
        "APP_OPEN": "The app was opened.",
        "SURVEY_RESPONSE": "A survey was answered.",
    },
)


@strawberry.type(description="Something a customer did, on one channel, at one time.")
class Interaction(Node):
    record: strawberry.Private[InteractionRecord]
    NODE_TYPE: ClassVar[str] = "Interaction"

    def node_uuid(self) -> uuid.UUID:
        return self.record.id

    @strawberry.field(description="The interaction's id (a UUID).")
    def interaction_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field(description="Where it happened.")
    def channel(self) -> ChannelEnum:
        return self.record.channel

    @strawberry.field(description="What happened.")
    def type(self) -> InteractionTypeEnum:
        return self.record.type

    @strawberry.field(description="When it happened.")
    def occurred_at(self) -> datetime:
        return self.record.occurred_at

    @strawberry.field(description="A purchase's or refund's amount, in major units.")
    def amount(self) -> Decimal | None:
        return self.record.amount

    @strawberry.field(description="The amount's ISO 4217 currency.")
    def currency(self) -> str | None:
        return self.record.currency

    @strawberry.field(description="The source system's id of it (idempotent ingest).")
    def external_id(self) -> str | None:
        return self.record.external_id

    @strawberry.field(
        description="Free-form details, stored encrypted; null when the policy hides it."
    )
    def payload(self, info: Ctx) -> JSON | None:
        if self.record.payload_hidden:
            info.context.redacted.append(path_of(info))
            return None
        if self.record.payload is None:
            return None
        return cast(JSON, self.record.payload)


@strawberry.type(description="An interaction in a page, with its cursor.")
class InteractionEdge:
    node: Interaction = strawberry.field(description="The interaction.")
    cursor: str = strawberry.field(description="Pass it as `after` to read on from here.")


@strawberry.type(description="A page of interactions, newest first.")
class InteractionConnection:
    edges: list[InteractionEdge] = strawberry.field(description="The interactions.")
    page_info: PageInfo = strawberry.field(description="Whether more follow.")
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


@strawberry.input(
    description="One interaction to record, for a customer named by id or by "
    "source + customerExternalId."
)
class InteractionInput:
    channel: ChannelEnum = strawberry.field(description="Where it happened.")
    type: InteractionTypeEnum = strawberry.field(description="What happened.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer's id."
    )
    source: str | None = strawberry.field(
        default=None, description="The source system of customerExternalId."
    )
    customer_external_id: str | None = strawberry.field(
        default=None, description="The customer's id in that source system."
    )
    amount: Decimal | None = strawberry.field(
        default=None, description="A purchase's or refund's amount, in major units."
    )
    currency: str | None = strawberry.field(
        default=None, description="The amount's ISO 4217 currency."
    )
    external_id: str | None = strawberry.field(
        default=None, description="The source's id of the interaction: sent twice, kept once."
    )
    payload: JSON | None = strawberry.field(
        default=None, description="Free-form details (stored encrypted)."
    )


@strawberry.type(description="What recording a batch of interactions did.")
class RecordResult:
    inserted: int = strawberry.field(description="Interactions stored.")
    duplicates: int = strawberry.field(
        description="Interactions skipped: their external id was already stored."
    )
