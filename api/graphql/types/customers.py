"""The Customer type and the Segment type, declared together because each lists the
other: a customer's segments, a segment's members.

A customer's fields resolve under the caller's policy: a PII field the policy hides, the
locale, tier or tags when the policy does not show them, custom attributes when the caller
may see none of them (``attributes`` holds only those it may see), and
a feature's field (consents, segments, metrics, access history, interactions) the caller
may not see for this customer, is null and listed in ``extensions.redacted``. A
segment's members are customers read the same way, under the caller's policy and purpose
(a consent-based purpose sees only customers who granted it).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, ClassVar, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import REFUSED, Ctx, path_of
from api.graphql.timelines import customer_timeline, prefetch_timelines
from api.graphql.types.audit import AuditEntryConnection, audit_connection
from api.graphql.types.common import (
    NO_PAGE,
    AfterArg,
    BeforeArg,
    FirstArg,
    LastArg,
    PageInfo,
    count_only,
    described_enum,
    page_info,
    page_sizes,
    taken,
)
from api.graphql.types.consent import (
    Consent,
    ConsentEvent,
    consent_entries,
    consent_history_entries,
)
from api.graphql.types.insights import CustomerMetrics, customer_metrics
from api.graphql.types.interactions import (
    Channel,
    InteractionConnection,
    InteractionType,
    interaction_connection,
)
from api.graphql.types.node import Node
from vault.customers import Customer as CustomerRecord
from vault.pagination import Page
from vault.segments.models import Segment as SegmentRecord
from vault.types import CustomerStatus as StatusEnum

__all__ = [
    "Customer",
    "CustomerConnection",
    "CustomerEdge",
    "CustomerStatus",
    "MergeResult",
    "PostalAddress",
    "Segment",
    "customer_connection",
    "customer_segments",
    "profile_value",
]

CustomerStatus = described_enum(
    StatusEnum,
    "CustomerStatus",
    "Where a customer record stands.",
    {
        "ACTIVE": "Processed for every purpose the policy and consents allow.",
        "RESTRICTED": "Processing restricted (Art. 18): compliance and the customer only.",
        "ERASED": "Erased: a tombstone, its data key destroyed.",
        "MERGED": "Merged into another record (mergedInto), kept as a pointer.",
    },
)


def _pii(record: CustomerRecord, field: str, info: Ctx) -> str | None:
    """A PII field as the policy resolved it; a hidden one is null and listed as redacted."""
    if record.resolutions.get(field) == "hidden":
        info.context.redacted.append(path_of(info))
        return None
    value: str | None = getattr(record, field)
    return value


def profile_value(record: CustomerRecord, field: str) -> tuple[bool, object]:
    """(hidden, value) of ``locale``, ``tier``, ``tags`` or ``attributes`` as the policy
    resolved it; ``attributes`` is hidden when no kind of attribute is shown."""
    res = record.resolutions
    if field == "attributes":
        kinds = [v for k, v in res.items() if k in _ATTRIBUTE_KINDS or k.startswith("attr:")]
        return all(v == "hidden" for v in kinds), record.attributes
    return res.get(field, "hidden") == "hidden", getattr(record, field)


_ATTRIBUTE_KINDS = frozenset({"attributes", "undeclared_attributes"})


def _profile(record: CustomerRecord, field: str, info: Ctx) -> object:
    hidden, value = profile_value(record, field)
    if hidden:
        info.context.redacted.append(path_of(info))
        return None
    return value


@strawberry.type(description="An address in parts; masked, only city and country are given.")
class PostalAddress:
    street: str | None = strawberry.field(description="Street lines; null when masked.")
    city: str | None = strawberry.field(description="City or town.")
    region: str | None = strawberry.field(description="State, province, region; null when masked.")
    postal_code: str | None = strawberry.field(description="Postal code; null when masked.")
    country: str | None = strawberry.field(description="ISO 3166-1 alpha-2.")


@strawberry.type(description="A customer, its PII resolved under the caller's policy.")
class Customer(Node):
    record: strawberry.Private[CustomerRecord]
    NODE_TYPE: ClassVar[str] = "Customer"

    def node_uuid(self) -> uuid.UUID:
        return self.record.id

    @strawberry.field(
        description="The customer's pseudonymous id (a UUID): what tokens, webhooks, the "
        "audit trail and the CLI name it by."
    )
    def customer_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field(description="E-mail address (PII).")
    def email(self, info: Ctx) -> str | None:
        return _pii(self.record, "email", info)

    @strawberry.field(description="Phone number in E.164 (PII).")
    def phone(self, info: Ctx) -> str | None:
        return _pii(self.record, "phone", info)

    @strawberry.field(description="Given name, in any script (PII).")
    def first_name(self, info: Ctx) -> str | None:
        return _pii(self.record, "first_name", info)

    @strawberry.field(description="Family name, in any script (PII).")
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

    @strawberry.field(description="Preferred locale (BCP 47).")
    def locale(self, info: Ctx) -> str | None:
        return cast(str | None, _profile(self.record, "locale", info))

    @strawberry.field(description="Loyalty tier.")
    def tier(self, info: Ctx) -> str | None:
        return cast(str | None, _profile(self.record, "tier", info))

    @strawberry.field(description="Free labels.")
    def tags(self, info: Ctx) -> list[str] | None:
        return cast(list[str] | None, _profile(self.record, "tags", info))

    @strawberry.field(
        description="The declared custom attributes the caller may see: PII ones in clear "
        "or masked as the policy resolves them, the others in clear; null when it may see "
        "none."
    )
    def attributes(self, info: Ctx) -> JSON | None:
        return cast(JSON | None, _profile(self.record, "attributes", info))

    @strawberry.field(description="Active, restricted, erased or merged.")
    def status(self) -> StatusEnum:
        return self.record.status

    @strawberry.field(description="When the record was created.")
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(
        description="Grows by one with every change of the record (an update, a merge, an "
        "erasure, a rectification, a restriction). Pass it back as `expectedVersion` to "
        "`updateCustomer` so that a change made meanwhile by someone else is not overwritten."
    )
    def version(self) -> int:
        return self.record.version

    @strawberry.field(description="Where each consent-based purpose stands for this customer.")
    def consents(self, info: Ctx) -> list[Consent] | None:
        ctx = info.context
        try:
            return consent_entries(ctx.privacy.ledger.status(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="Every consent change of this customer, oldest first.")
    def consent_history(self, info: Ctx) -> list[ConsentEvent] | None:
        ctx = info.context
        try:
            return consent_history_entries(ctx.privacy.ledger.history(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="The segments this customer is in now.")
    def segments(self, info: Ctx) -> list[Segment] | None:
        ctx = info.context
        try:
            return customer_segments(ctx.vault.segments.segments_of(ctx.session, self.record.id))
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None

    @strawberry.field(description="RFM, lifetime value and engagement, as last computed.")
    def metrics(self, info: Ctx) -> CustomerMetrics | None:
        ctx = info.context
        try:
            found = ctx.vault.segments.metrics(ctx.session, self.record.id)
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
        return None if found is None else customer_metrics(found)

    @strawberry.field(description="Who accessed this customer's data, when and why (Art. 15).")
    def access_history(
        self,
        info: Ctx,
        first: FirstArg = 20,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> AuditEntryConnection | None:
        ctx, customer_id = info.context, self.record.id
        first_, last_ = page_sizes(info, first, last)

        def count() -> int:
            return ctx.vault.trail.access_history_count(ctx.session, customer_id)

        try:
            if count_only(info, first_, last_):
                return audit_connection(NO_PAGE, taken(count()))
            page = ctx.vault.trail.access_history(
                ctx.session, customer_id, first=first_, after=after, last=last_, before=before
            )
        except REFUSED:
            ctx.redacted.append(path_of(info))
            return None
        return audit_connection(page, count)

    @strawberry.field(description="The customer's interactions, newest first.")
    def interactions(  # noqa: PLR0917 - GraphQL arguments
        self,
        info: Ctx,
        first: FirstArg = 10,
        after: AfterArg = None,
        channel: Annotated[
            Channel | None,  # type: ignore[valid-type]
            strawberry.argument(description="On this channel only."),
        ] = None,
        type: Annotated[
            InteractionType | None,  # type: ignore[valid-type]
            strawberry.argument(description="Of this type only."),
        ] = None,
        since: Annotated[
            datetime | None, strawberry.argument(description="At or after this time.")
        ] = None,
        until: Annotated[
            datetime | None, strawberry.argument(description="Before this time.")
        ] = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> InteractionConnection | None:
        ctx, customer_id = info.context, self.record.id
        first_, last_ = page_sizes(info, first, last)
        channel_value = None if channel is None else channel.value
        type_value = None if type is None else type.value

        def count() -> int:
            return ctx.vault.interactions.count(
                ctx.session, customer_id, channel=channel_value, type=type_value,
                since=since, until=until,
            )  # fmt: skip

        if count_only(info, first_, last_):
            try:
                return interaction_connection(NO_PAGE, taken(count()))
            except REFUSED:
                ctx.redacted.append(path_of(info))
                return None
        page = customer_timeline(
            info, customer_id, (first_, after, last_, before),
            channel_value, type_value, since, until,
        )  # fmt: skip
        return None if page is None else interaction_connection(page, count)


@strawberry.type(description="A customer in a page, with its cursor.")
class CustomerEdge:
    node: Customer = strawberry.field(description="The customer.")
    cursor: str = strawberry.field(description="Pass it as `after` to read on from here.")


@strawberry.type(description="A page of customers.")
class CustomerConnection:
    edges: list[CustomerEdge] = strawberry.field(description="The customers of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more customers follow.")
    counter: strawberry.Private[Callable[[], int]]

    @strawberry.field(
        description="How many customers the whole list holds for the caller (the same "
        "filter, policy and consent), counted without reading any; audited as a count."
    )
    def total_count(self) -> int:
        return self.counter()


def customer_connection(
    page: Page[CustomerRecord], counter: Callable[[], int]
) -> CustomerConnection:
    return CustomerConnection(
        edges=[
            CustomerEdge(node=Customer(record=c), cursor=page.cursor(n))
            for n, c in enumerate(page.items)
        ],
        page_info=page_info(page),
        counter=counter,
    )


@strawberry.type(description="What merging a duplicate into a customer did.")
class MergeResult:
    customer: Customer = strawberry.field(description="The surviving customer.")
    merged_id: strawberry.ID = strawberry.field(description="The duplicate, now merged.")
    moved_interactions: int = strawberry.field(description="Interactions moved over.")
    filled_fields: list[str] = strawberry.field(
        description="Fields the survivor lacked and took from the duplicate."
    )


@strawberry.type(description="A saved segment: its rule, its size and its members.")
class Segment(Node):
    record: strawberry.Private[SegmentRecord]
    NODE_TYPE: ClassVar[str] = "Segment"

    def node_uuid(self) -> uuid.UUID:
        return self.record.id

    @strawberry.field(description="The segment's id (a UUID).")
    def segment_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field(description="Its name.")
    def name(self) -> str:
        return self.record.name

    @strawberry.field(description="What it is for.")
    def description(self) -> str | None:
        return self.record.description

    @strawberry.field(description="The rule as its JSON document.")
    def definition(self) -> JSON:
        return cast(JSON, self.record.definition)

    @strawberry.field(description="Grows by one with each change of the rule or name.")
    def version(self) -> int:
        return self.record.version

    @strawberry.field(description="When it was created.")
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field(description="When it last changed.")
    def updated_at(self) -> datetime:
        return self.record.updated_at

    @strawberry.field(description="When membership was last computed.")
    def refreshed_at(self) -> datetime | None:
        return self.record.refreshed_at

    @strawberry.field(description="Current members the caller's purpose may process.")
    def size(self, info: Ctx) -> int:
        ctx = info.context
        return ctx.vault.segments.size(ctx.session, self.record.id)

    @strawberry.field(description="Current members, as customers under the caller's policy.")
    def members(
        self,
        info: Ctx,
        first: FirstArg = 20,
        after: AfterArg = None,
        last: LastArg = None,
        before: BeforeArg = None,
    ) -> CustomerConnection:
        ctx = info.context
        first_, last_ = page_sizes(info, first, last)
        segment_id = self.record.id

        def count() -> int:
            return ctx.vault.segments.size(ctx.session, segment_id)

        if count_only(info, first_, last_):
            return customer_connection(NO_PAGE, taken(count()))
        page = ctx.vault.segments.members(
            ctx.session, segment_id, first=first_, after=after, last=last_, before=before
        )
        ids = list(page.items)
        prefetch_timelines(info, ids)
        customers = ctx.vault.customers.get_many(ctx.session, ids) if ids else []
        return customer_connection(page.with_items(customers), count)


def customer_segments(records: list[SegmentRecord]) -> list[Segment]:
    return [Segment(record=r) for r in records]
