"""GraphQL for segments and insights: definitions, preview, members, metrics, channels.

The rule is a GraphQL input type of the same shape as the JSON rule language of
:mod:`vault.segments.rules` (each node sets exactly one field: ``@oneOf``); resolvers
turn it into that document and the segment service parses, checks and compiles it.
Members come back as customers, each read under the caller's policy and purpose (a
consent-based purpose sees only customers who granted it).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import atomic
from api.graphql.resolvers import prefetch_timelines
from api.graphql.types import (
    Ctx,
    Customer,
    CustomerConnection,
    CustomerEdge,
    IdArg,
    PageInfo,
    parse_id,
)
from vault.money import from_minor
from vault.segments.metrics import ChannelStats as ChannelStatsRecord
from vault.segments.metrics import CustomerMetrics as CustomerMetricsRecord
from vault.segments.rules import Aggregate as AggregateEnum
from vault.segments.rules import AttributeField as AttributeFieldEnum
from vault.segments.rules import MetricName as MetricNameEnum
from vault.segments.rules import Op as OpEnum
from vault.segments.service import Segment as SegmentRecord
from vault.segments.webhooks import Webhook as WebhookRecord
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = [
    "SegmentMutation",
    "SegmentQuery",
    "WebhookMutation",
    "WebhookQuery",
    "customer_metrics",
    "customer_segments",
]

RuleOp = strawberry.enum(OpEnum, name="RuleOp")
Aggregate = strawberry.enum(AggregateEnum, name="Aggregate")
AttributeField = strawberry.enum(AttributeFieldEnum, name="AttributeField")
MetricName = strawberry.enum(MetricNameEnum, name="MetricName")


# -- the rule as an input type ------------------------------------------------------


@strawberry.input(one_of=True, description="A time window: exactly one field.")
class WindowInput:
    within_days: int | None = strawberry.UNSET
    between_days: list[int] | None = strawberry.UNSET
    ever: bool | None = strawberry.UNSET


@strawberry.input(description="A condition on a clear attribute (tier, locale, tags, ...).")
class AttributeConditionInput:
    field: AttributeFieldEnum
    op: OpEnum
    value: JSON | None = None
    key: str | None = strawberry.field(default=None, description="A custom attribute's name.")


@strawberry.input(description="The customer has a current grant of this purpose.")
class ConsentConditionInput:
    purpose: str


@strawberry.input(description="An aggregate of matching interactions inside a window.")
class BehaviourConditionInput:
    aggregate: AggregateEnum
    op: OpEnum
    value: float
    window: WindowInput
    types: list[InteractionTypeEnum] | None = None
    channels: list[ChannelEnum] | None = None
    currency: str | None = None


@strawberry.input(description="A per-customer metric (RFM, lifetime value, ...).")
class MetricConditionInput:
    name: MetricNameEnum
    op: OpEnum
    value: float


@strawberry.input(description="Another segment's rule.")
class SegmentReferenceInput:
    id: strawberry.ID


@strawberry.input(one_of=True, description="A rule node: exactly one field.")
class SegmentRuleInput:
    all: list[SegmentRuleInput] | None = strawberry.UNSET
    any: list[SegmentRuleInput] | None = strawberry.UNSET
    not_: SegmentRuleInput | None = strawberry.field(name="not", default=strawberry.UNSET)
    attribute: AttributeConditionInput | None = strawberry.UNSET
    consent: ConsentConditionInput | None = strawberry.UNSET
    behaviour: BehaviourConditionInput | None = strawberry.UNSET
    metric: MetricConditionInput | None = strawberry.UNSET
    segment: SegmentReferenceInput | None = strawberry.UNSET


def _given(value: object) -> bool:
    return value is not None and value is not strawberry.UNSET


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _window(window: WindowInput) -> object:
    if _given(window.within_days):
        return {"within_days": window.within_days}
    if _given(window.between_days):
        return {"between_days": window.between_days}
    return "ever"


def rule_document(node: SegmentRuleInput) -> dict[str, Any]:  # noqa: PLR0911 - one per node kind
    """The JSON rule document of an input rule (the service validates it)."""
    if _given(node.all):
        return {"all": [rule_document(c) for c in cast(list[SegmentRuleInput], node.all)]}
    if _given(node.any):
        return {"any": [rule_document(c) for c in cast(list[SegmentRuleInput], node.any)]}
    if _given(node.not_):
        return {"not": rule_document(cast(SegmentRuleInput, node.not_))}
    if _given(node.attribute):
        a = cast(AttributeConditionInput, node.attribute)
        body: dict[str, Any] = {"field": OpValue(a.field), "op": OpValue(a.op)}
        if a.value is not None:
            body["value"] = a.value
        if a.key is not None:
            body["key"] = a.key
        return {"attribute": body}
    if _given(node.consent):
        return {"consent": {"purpose": cast(ConsentConditionInput, node.consent).purpose}}
    if _given(node.behaviour):
        b = cast(BehaviourConditionInput, node.behaviour)
        doc: dict[str, Any] = {
            "aggregate": OpValue(b.aggregate), "op": OpValue(b.op), "value": _number(b.value),
            "window": _window(b.window),
        }  # fmt: skip
        if b.types:
            doc["types"] = [OpValue(t) for t in b.types]
        if b.channels:
            doc["channels"] = [OpValue(c) for c in b.channels]
        if b.currency is not None:
            doc["currency"] = b.currency
        return {"behaviour": doc}
    if _given(node.metric):
        m = cast(MetricConditionInput, node.metric)
        return {"metric": {"name": OpValue(m.name), "op": OpValue(m.op), "value": _number(m.value)}}
    ref = cast(SegmentReferenceInput, node.segment)
    return {"segment": {"id": str(ref.id)}}


def OpValue(member: object) -> str:  # noqa: N802 - reads as a conversion
    """A GraphQL enum argument's stored value (Strawberry hands over the Python member)."""
    return str(getattr(member, "value", member))


# -- output types -------------------------------------------------------------------


@strawberry.type(description="A saved segment: its rule, its size and its members.")
class Segment:
    record: strawberry.Private[SegmentRecord]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.record.id))

    @strawberry.field
    def name(self) -> str:
        return self.record.name

    @strawberry.field
    def description(self) -> str | None:
        return self.record.description

    @strawberry.field(description="The rule as its JSON document.")
    def definition(self) -> JSON:
        return cast(JSON, self.record.definition)

    @strawberry.field
    def version(self) -> int:
        return self.record.version

    @strawberry.field
    def created_at(self) -> datetime:
        return self.record.created_at

    @strawberry.field
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
    def members(self, info: Ctx, first: int = 20, after: str | None = None) -> CustomerConnection:
        ctx = info.context
        page = ctx.vault.segments.members(ctx.session, self.record.id, first=first, after=after)
        ids = list(page.items)
        prefetch_timelines(info, ids)
        customers = ctx.vault.customers.get_many(ctx.session, ids) if ids else []
        return CustomerConnection(
            edges=[CustomerEdge(node=Customer(record=c), cursor=_member_cursor(c.id))
                   for c in customers],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
        )  # fmt: skip


def _member_cursor(customer_id: uuid.UUID) -> str:
    """The members cursor of :meth:`vault.segments.service.SegmentService.members`."""
    return base64.urlsafe_b64encode(customer_id.bytes).decode("ascii")


@strawberry.type(description="A customer's metrics, as last computed (see docs).")
class CustomerMetrics:
    computed_at: datetime
    currency: str
    first_interaction_at: datetime | None
    last_interaction_at: datetime | None
    last_purchase_at: datetime | None
    recency_days: int | None
    days_since_last_interaction: int | None
    frequency: int
    monetary: Decimal
    lifetime_value: Decimal
    purchase_count: int
    engagement_score: int
    r_score: int
    f_score: int
    m_score: int


@strawberry.type
class Money:
    currency: str
    amount: Decimal


@strawberry.type(description="One channel over a time range, across customers; no PII.")
class ChannelStats:
    channel: ChannelEnum
    interactions: int
    customers: int
    conversions: int
    converting_customers: int
    conversion_rate: float
    revenue: list[Money]


def customer_metrics(record: CustomerMetricsRecord) -> CustomerMetrics:
    money = record.currency
    return CustomerMetrics(
        computed_at=record.computed_at,
        currency=money,
        first_interaction_at=record.first_interaction_at,
        last_interaction_at=record.last_interaction_at,
        last_purchase_at=record.last_purchase_at,
        recency_days=record.recency_days,
        days_since_last_interaction=record.days_since_last_interaction,
        frequency=record.frequency,
        monetary=from_minor(record.monetary_minor, money),
        lifetime_value=from_minor(record.lifetime_value_minor, money),
        purchase_count=record.purchase_count,
        engagement_score=record.engagement_score,
        r_score=record.r_score,
        f_score=record.f_score,
        m_score=record.m_score,
    )


def customer_segments(records: list[SegmentRecord]) -> list[Segment]:
    return [Segment(record=r) for r in records]


def _channel(stats: ChannelStatsRecord) -> ChannelStats:
    return ChannelStats(
        channel=stats.channel,
        interactions=stats.interactions,
        customers=stats.customers,
        conversions=stats.conversions,
        converting_customers=stats.converting_customers,
        conversion_rate=stats.conversion_rate,
        revenue=[
            Money(currency=c, amount=from_minor(minor, c))
            for c, minor in sorted(stats.revenue_minor.items())
        ],
    )


@strawberry.input
class SegmentInput:
    name: str
    rule: SegmentRuleInput
    description: str | None = None


@strawberry.input(description="Only the fields given change.")
class SegmentPatchInput:
    name: str | None = None
    rule: SegmentRuleInput | None = None
    description: str | None = None


@strawberry.type
class SegmentRefresh:
    segment_id: strawberry.ID
    members: int
    entered: int
    left: int


# -- fields ---------------------------------------------------------------------------


@strawberry.type
class SegmentQuery:
    @strawberry.field(description="Every saved segment.")
    def segments(self, info: Ctx) -> list[Segment]:
        ctx = info.context
        return customer_segments(ctx.vault.segments.list_segments(ctx.session))

    @strawberry.field
    def segment(self, info: Ctx, id: IdArg) -> Segment:
        ctx = info.context
        return Segment(record=ctx.vault.segments.get(ctx.session, parse_id(id)))

    @strawberry.field(description="How many customers the caller may process match a rule now.")
    def preview_segment(self, info: Ctx, rule: SegmentRuleInput) -> int:
        ctx = info.context
        return ctx.vault.segments.preview(ctx.session, rule_document(rule))

    @strawberry.field(description="Visits, conversions and revenue per channel; no PII.")
    def channel_analytics(self, info: Ctx, since: datetime, until: datetime) -> list[ChannelStats]:
        ctx = info.context
        return [
            _channel(s) for s in ctx.vault.segments.channel_analytics(ctx.session, since, until)
        ]


@strawberry.type
class SegmentMutation:
    @strawberry.mutation
    def create_segment(self, info: Ctx, input: SegmentInput) -> Segment | None:
        ctx = info.context
        with atomic(info) as session:
            made = ctx.vault.segments.create(
                session, name=input.name, definition=rule_document(input.rule),
                description=input.description,
            )  # fmt: skip
        return Segment(record=made)

    @strawberry.mutation
    def update_segment(self, info: Ctx, id: IdArg, input: SegmentPatchInput) -> Segment | None:
        ctx = info.context
        with atomic(info) as session:
            changed = ctx.vault.segments.update(
                session, parse_id(id), name=input.name,
                definition=None if input.rule is None else rule_document(input.rule),
                description=input.description,
            )  # fmt: skip
        return Segment(record=changed)

    @strawberry.mutation(description="Delete a segment; its members leave (events are sent).")
    def delete_segment(self, info: Ctx, id: IdArg) -> bool | None:
        ctx = info.context
        with atomic(info) as session:
            ctx.vault.segments.delete(session, parse_id(id))
        return True

    @strawberry.mutation(
        description="Recompute membership now (one segment, or all); metrics: rebuild the "
        "metrics rollup first (by default only when a rule reads it)."
    )
    def refresh_segments(
        self, info: Ctx, id: strawberry.ID | None = None, metrics: bool | None = None
    ) -> list[SegmentRefresh]:
        ctx = info.context
        with atomic(info) as session:
            done = ctx.vault.segments.refresh(
                session, None if id is None else parse_id(id), metrics=metrics
            )
        return [
            SegmentRefresh(
                segment_id=strawberry.ID(str(r.segment_id)),
                members=r.members, entered=r.entered, left=r.left,
            )
            for r in done
        ]  # fmt: skip


# -- webhooks -------------------------------------------------------------------------


@strawberry.type(description="An endpoint that hears segment enter/leave events.")
class WebhookEndpoint:
    id: strawberry.ID
    url: str
    purpose: str
    segment_ids: list[strawberry.ID]
    created_at: datetime
    disabled_at: datetime | None


@strawberry.type(description="A new webhook and its signing secret, shown this once.")
class NewWebhookEndpoint:
    webhook: WebhookEndpoint
    secret: str


def _webhook(record: WebhookRecord) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=strawberry.ID(str(record.id)),
        url=record.url,
        purpose=record.purpose,
        segment_ids=[strawberry.ID(str(s)) for s in record.segment_ids],
        created_at=record.created_at,
        disabled_at=record.disabled_at,
    )


@strawberry.type
class WebhookQuery:
    @strawberry.field(description="Webhooks of the caller's purpose.")
    def webhooks(self, info: Ctx) -> list[WebhookEndpoint]:
        ctx = info.context
        return [_webhook(w) for w in ctx.vault.webhooks.list(ctx.session)]


@strawberry.type
class WebhookMutation:
    @strawberry.mutation(
        description="Register an endpoint for enter/leave events of these segments; it only "
        "ever hears of customers its purpose may process. Signed with HMAC-SHA256."
    )
    def create_webhook(
        self, info: Ctx, url: str, segment_ids: list[strawberry.ID], purpose: str
    ) -> NewWebhookEndpoint | None:
        ctx = info.context
        ids = [parse_id(s, "segmentIds") for s in segment_ids]
        with atomic(info) as session:
            made = ctx.vault.webhooks.create(session, url=url, segment_ids=ids, purpose=purpose)
        return NewWebhookEndpoint(webhook=_webhook(made.webhook), secret=made.secret)

    @strawberry.mutation(description="Stop deliveries to a webhook.")
    def disable_webhook(self, info: Ctx, id: IdArg) -> WebhookEndpoint | None:
        ctx = info.context
        with atomic(info) as session:
            return _webhook(ctx.vault.webhooks.disable(session, parse_id(id)))
