"""GraphQL for segments and insights: definitions, preview, members, metrics, channels.

The rule is a GraphQL input type of the same shape as the JSON rule language of
:mod:`vault.segments.rules` (each node sets exactly one field: ``@oneOf``); resolvers
turn it into that document and the segment service parses, checks and compiles it.
The Segment type (whose members are customers) is declared with the Customer type in
:mod:`api.graphql.types.customers`, the metrics and channel types in
:mod:`api.graphql.types.insights`; this module holds the rule inputs, the root fields
and webhooks.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, GraphQLContext, atomic
from api.graphql.types.common import IdArg, parse_id
from api.graphql.types.customers import Segment, customer_segments
from api.graphql.types.insights import ChannelStats, channel_stats
from vault.segments.models import Segment as SegmentRecord
from vault.segments.rules import Aggregate as AggregateEnum
from vault.segments.rules import AttributeField as AttributeFieldEnum
from vault.segments.rules import MetricName as MetricNameEnum
from vault.segments.rules import Op as OpEnum
from vault.segments.webhooks import Webhook as WebhookRecord
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = [
    "SegmentMutation",
    "SegmentQuery",
    "WebhookMutation",
    "WebhookQuery",
    "segment_record",
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
    key: str | None = strawberry.field(
        default=None,
        description="A custom attribute's name: declared, and not PII (those are encrypted).",
    )


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


# -- inputs and results ---------------------------------------------------------------


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


def segment_record(ctx: GraphQLContext, segment_id: str) -> SegmentRecord:
    """``segment(id:)``: the segment, for a caller who may read segments."""
    return ctx.vault.segments.get(ctx.session, parse_id(ctx, segment_id, kind="segment"))


@strawberry.type
class SegmentQuery:
    @strawberry.field(description="Every saved segment.")
    def segments(self, info: Ctx) -> list[Segment]:
        ctx = info.context
        return customer_segments(ctx.vault.segments.list_segments(ctx.session))

    @strawberry.field
    def segment(self, info: Ctx, id: IdArg) -> Segment:
        ctx = info.context
        return Segment(record=segment_record(ctx, id))

    @strawberry.field(description="How many customers the caller may process match a rule now.")
    def preview_segment(self, info: Ctx, rule: SegmentRuleInput) -> int:
        ctx = info.context
        return ctx.vault.segments.preview(ctx.session, rule_document(rule))

    @strawberry.field(description="Visits, conversions and revenue per channel; no PII.")
    def channel_analytics(self, info: Ctx, since: datetime, until: datetime) -> list[ChannelStats]:
        ctx = info.context
        return [
            channel_stats(s)
            for s in ctx.vault.segments.channel_analytics(ctx.session, since, until)
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
                session, parse_id(ctx, id, kind="segment"), name=input.name,
                definition=None if input.rule is None else rule_document(input.rule),
                description=input.description,
            )  # fmt: skip
        return Segment(record=changed)

    @strawberry.mutation(description="Delete a segment; its members leave (events are sent).")
    def delete_segment(self, info: Ctx, id: IdArg) -> bool | None:
        ctx = info.context
        with atomic(info) as session:
            ctx.vault.segments.delete(session, parse_id(ctx, id, kind="segment"))
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
                session, None if id is None else parse_id(ctx, id, kind="segment"), metrics=metrics
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
        ids = [parse_id(ctx, s, "segmentIds", "segment") for s in segment_ids]
        with atomic(info) as session:
            made = ctx.vault.webhooks.create(session, url=url, segment_ids=ids, purpose=purpose)
        return NewWebhookEndpoint(webhook=_webhook(made.webhook), secret=made.secret)

    @strawberry.mutation(description="Stop deliveries to a webhook.")
    def disable_webhook(self, info: Ctx, id: IdArg) -> WebhookEndpoint | None:
        ctx = info.context
        with atomic(info) as session:
            return _webhook(ctx.vault.webhooks.disable(session, parse_id(ctx, id, kind="webhook")))
