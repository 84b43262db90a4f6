"""Strawberry types. They wrap domain results and never expose ORM rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import GraphQLContext, Info, path_of
from policies import AccessDenied
from vault.audit_trail.queries import AuditRecord as AuditRecordType
from vault.customers import Customer as CustomerRecord
from vault.errors import ProcessingRefused
from vault.interactions.service import Interaction as InteractionRecord
from vault.types import Channel as ChannelEnum
from vault.types import CustomerStatus as StatusEnum
from vault.types import InteractionType as InteractionTypeEnum

# A field the caller may not see for this customer resolves to null and is listed in
# extensions.redacted: a policy refusal, or consent, restriction or an objection.
REFUSED = (AccessDenied, ProcessingRefused)

if TYPE_CHECKING:
    from api.graphql.privacy import Consent, ConsentEvent
    from api.graphql.segments import CustomerMetrics, Segment

Channel = strawberry.enum(ChannelEnum, name="Channel")
InteractionType = strawberry.enum(InteractionTypeEnum, name="InteractionType")
CustomerStatus = strawberry.enum(StatusEnum, name="CustomerStatus")

Ctx = Info[GraphQLContext, Any]


def _pii(record: CustomerRecord, field: str, info: Ctx) -> str | None:
    """A PII field as the policy resolved it; a hidden one is null and listed as redacted."""
    if record.resolutions.get(field) == "hidden":
        info.context.redacted.append(path_of(info))
        return None
    value: str | None = getattr(record, field)
    return value


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


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


def interaction_connection(
    items: list[InteractionRecord], end_cursor: str | None, has_next: bool
) -> InteractionConnection:
    from vault.pagination import encode_cursor  # noqa: PLC0415

    return InteractionConnection(
        edges=[
            InteractionEdge(node=Interaction(record=i), cursor=encode_cursor(i.occurred_at, i.id))
            for i in items
        ],
        page_info=PageInfo(has_next_page=has_next, end_cursor=end_cursor),
    )


@strawberry.type(description="An address in parts; masked, only city and country are given.")
class PostalAddress:
    street: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2.")


@strawberry.type
class Customer:
    record: strawberry.Private[CustomerRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field
    def email(self, info: Ctx) -> str | None:
        return _pii(self.record, "email", info)

    @strawberry.field
    def phone(self, info: Ctx) -> str | None:
        return _pii(self.record, "phone", info)

    @strawberry.field
    def first_name(self, info: Ctx) -> str | None:
        return _pii(self.record, "first_name", info)

    @strawberry.field
    def last_name(self, info: Ctx) -> str | None:
        return _pii(self.record, "last_name", info)

    @strawberry.field(description="ISO date, or --MM-DD when masked.")
    def birth_date(self, info: Ctx) -> str | None:
        return _pii(self.record, "birth_date", info)

    @strawberry.field(description="One line in clear; city and country when masked.")
    def address(self, info: Ctx) -> str | None:
        return _pii(self.record, "address", info)

    @strawberry.field(description="The address in parts, when it was given in parts.")
    def postal_address(self, info: Ctx) -> PostalAddress | None:
        if self.record.resolutions.get("address") == "hidden":
            info.context.redacted.append(path_of(info))
            return None
        parts = self.record.postal_address
        if parts is None:
            return None
        return PostalAddress(
            street=parts.street, city=parts.city, region=parts.region,
            postal_code=parts.postal_code, country=parts.country,
        )  # fmt: skip

    @strawberry.field
    def locale(self) -> str | None:
        return self.record.locale

    @strawberry.field
    def tier(self) -> str | None:
        return self.record.tier

    @strawberry.field
    def tags(self) -> list[str]:
        return self.record.tags

    @strawberry.field
    def attributes(self) -> JSON:
        return cast(JSON, self.record.attributes)

    @strawberry.field
    def status(self) -> StatusEnum:
        return self.record.status

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(description="Where each consent-based purpose stands for this customer.")
    def consents(
        self, info: Ctx
    ) -> list[Annotated[Consent, strawberry.lazy("api.graphql.privacy")]] | None:
        from api.graphql.privacy import consent_entries  # noqa: PLC0415

        ctx = info.context
        try:
            return consent_entries(ctx.privacy.ledger.status(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="Every consent change of this customer, oldest first.")
    def consent_history(
        self, info: Ctx
    ) -> list[Annotated[ConsentEvent, strawberry.lazy("api.graphql.privacy")]] | None:
        from api.graphql.privacy import consent_history_entries  # noqa: PLC0415

        ctx = info.context
        try:
            return consent_history_entries(ctx.privacy.ledger.history(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="The segments this customer is in now.")
    def segments(
        self, info: Ctx
    ) -> list[Annotated[Segment, strawberry.lazy("api.graphql.segments")]] | None:
        from api.graphql.segments import customer_segments  # noqa: PLC0415

        ctx = info.context
        try:
            return customer_segments(ctx.vault.segments.segments_of(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="RFM, lifetime value and engagement, as last computed.")
    def metrics(
        self, info: Ctx
    ) -> Annotated[CustomerMetrics, strawberry.lazy("api.graphql.segments")] | None:
        from api.graphql.segments import customer_metrics  # noqa: PLC0415

        ctx = info.context
        try:
            found = ctx.vault.segments.metrics(ctx.session, self.record.id)
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
        return None if found is None else customer_metrics(found)

    @strawberry.field(description="Who accessed this customer's data, when and why (Art. 15).")
    def access_history(
        self, info: Ctx, first: int = 20, after: str | None = None
    ) -> AuditEntryConnection | None:
        ctx = info.context
        try:
            page = ctx.vault.trail.access_history(
                ctx.session, self.record.id, first=first, after=after
            )
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
        return audit_connection(page)

    @strawberry.field
    def interactions(  # noqa: PLR0917 - GraphQL arguments
        self,
        info: Ctx,
        first: int = 10,
        after: str | None = None,
        channel: Channel | None = None,  # type: ignore[valid-type]
        type: InteractionType | None = None,  # type: ignore[valid-type]
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> InteractionConnection | None:
        from api.graphql.resolvers import customer_interactions  # noqa: PLC0415

        return customer_interactions(
            info, self.record.id, first, after,
            None if channel is None else channel.value,
            None if type is None else type.value,
            since, until,
        )  # fmt: skip


@strawberry.type
class AuditEntry:
    record: strawberry.Private[AuditRecordType]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.entry_id))

    @strawberry.field(description="Log position; null until the sequencer has ordered it.")
    def position(self) -> int | None:
        return self.record.position

    @strawberry.field
    def time(self) -> datetime:
        return self.record.time

    @strawberry.field
    def actor(self) -> str:
        return self.record.actor

    @strawberry.field
    def role(self) -> str:
        return self.record.role

    @strawberry.field
    def purpose(self) -> str:
        return self.record.purpose

    @strawberry.field
    def action(self) -> str:
        return self.record.action

    @strawberry.field
    def outcome(self) -> str:
        return self.record.outcome

    @strawberry.field
    def customer_id(self) -> strawberry.ID | None:
        cid = self.record.customer_id
        return None if cid is None else strawberry.ID(str(cid))

    @strawberry.field(description="Field names and how each resolved (clear, masked, hidden).")
    def fields(self) -> JSON:
        return cast(JSON, self.record.fields)

    @strawberry.field
    def request_id(self) -> str:
        return self.record.request_id


@strawberry.type
class AuditEntryEdge:
    node: AuditEntry
    cursor: str


@strawberry.type
class AuditEntryConnection:
    edges: list[AuditEntryEdge]
    page_info: PageInfo


def audit_connection(page: Any) -> AuditEntryConnection:  # noqa: ANN401 - a Page[AuditRecord]
    return AuditEntryConnection(
        edges=[AuditEntryEdge(node=AuditEntry(record=r), cursor=r.cursor) for r in page.items],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


@strawberry.type
class AuditCheckpoint:
    tree_size: int
    root_hash: str = strawberry.field(description="Base64 SHA-256 tree head.")
    note: str = strawberry.field(description="The C2SP signed note, verifiable offline.")
    created_at: datetime
    public_key: str = strawberry.field(description="The signed-note verifier key.")


@strawberry.type
class AuditInclusionProof:
    entry_id: strawberry.ID
    position: int
    tree_size: int
    leaf_hash: str
    proof: list[str]
    checkpoint: str


@strawberry.input
class AuditFilterInput:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    customer_id: strawberry.ID | None = None
    action: str | None = None


@strawberry.type
class CustomerEdge:
    node: Customer
    cursor: str


@strawberry.type
class CustomerConnection:
    edges: list[CustomerEdge]
    page_info: PageInfo


@strawberry.type
class MergeResult:
    customer: Customer
    merged_id: strawberry.ID
    moved_interactions: int
    filled_fields: list[str]


@strawberry.type
class RecordResult:
    inserted: int
    duplicates: int


@strawberry.type
class AccessExplanation:
    resolution: str
    rule: list[str] | None
    reason: str


@strawberry.type
class Policy:
    version: int
    lines: list[str]


@strawberry.input
class ExternalIdInput:
    source: str
    external_id: str


@strawberry.input(description="An address in parts; masked, it shows the city and country only.")
class AddressInput:
    street: str | None = strawberry.field(default=None, description="Street lines (\\n).")
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = strawberry.field(default=None, description="ISO 3166-1 alpha-2.")


@strawberry.input
class CustomerInput:
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    birth_date: str | None = None
    address: str | None = strawberry.field(
        default=None, description="Free text (masked as ***); prefer postalAddress."
    )
    postal_address: AddressInput | None = None
    locale: str | None = None
    tier: str | None = None
    tags: list[str] | None = None
    attributes: JSON | None = None
    external_ids: list[ExternalIdInput] | None = None


@strawberry.input(description="Only the fields given change; null clears a field.")
class CustomerPatchInput:
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    birth_date: str | None = strawberry.UNSET
    address: str | None = strawberry.UNSET
    postal_address: AddressInput | None = strawberry.UNSET
    locale: str | None = strawberry.UNSET
    tier: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    add_external_ids: list[ExternalIdInput] | None = None


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


@strawberry.input
class CustomerFilter:
    tier: str | None = None
    locale: str | None = None
    tag: str | None = None
    status: list[StatusEnum] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def parse_id(value: str, field: str = "id") -> uuid.UUID:
    from vault.errors import InvalidInput  # noqa: PLC0415

    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InvalidInput(field, "is not a customer id") from None


IdArg = Annotated[strawberry.ID, strawberry.argument(description="A customer id (UUID).")]
