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
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Ctx, GraphQLContext, atomic
from api.graphql.types.common import IdArg, described_enum, parse_id
from api.graphql.types.customers import Segment, customer_segments
from api.graphql.types.insights import ChannelStats, channel_stats
from vault.segments.models import Segment as SegmentRecord
from vault.segments.rules import Aggregate as AggregateEnum
from vault.segments.rules import AttributeField as AttributeFieldEnum
from vault.segments.rules import MetricName as MetricNameEnum
from vault.segments.rules import Op as OpEnum
from vault.types import Channel as ChannelEnum
from vault.types import InteractionType as InteractionTypeEnum

__all__ = [
    "SegmentMutation",
    "SegmentQuery",
    "segment_record",
]

RuleOp = described_enum(
    OpEnum,
    "RuleOp",
    "How a condition compares.",
    {
        "EQ": "Equal to the value.",
        "NE": "Not equal to the value.",
        "LT": "Less than the value.",
        "LTE": "Less than or equal to the value.",
        "GT": "Greater than the value.",
        "GTE": "Greater than or equal to the value.",
        "IN": "One of the values (a list).",
        "EXISTS": "Present (no value).",
        "CONTAINS": "A list holding the value (tags).",
    },
)
Aggregate = described_enum(
    AggregateEnum,
    "Aggregate",
    "What a behaviour condition computes over the matching interactions.",
    {
        "COUNT": "How many.",
        "SUM": "The sum of their amounts.",
        "AVG": "The average amount.",
        "MIN": "The smallest amount.",
        "MAX": "The largest amount.",
        "FIRST": "Days since the first one.",
        "LAST": "Days since the last one.",
    },
)
AttributeField = described_enum(
    AttributeFieldEnum,
    "AttributeField",
    "A clear (non-PII) customer attribute a rule may test.",
    {
        "TIER": "The loyalty tier.",
        "LOCALE": "The locale.",
        "TAGS": "The tags.",
        "CUSTOM": "A declared, non-PII custom attribute (named by key).",
        "CREATED_AT": "When the record was created.",
    },
)
MetricName = described_enum(
    MetricNameEnum,
    "MetricName",
    "A per-customer metric of the rollup.",
    {
        "RECENCY_DAYS": "Days since the last purchase.",
        "FREQUENCY": "Purchases in the last 365 days.",
        "MONETARY": "Purchases less refunds in the last 365 days.",
        "RFM_R": "Recency score, 1 to 5.",
        "RFM_F": "Frequency score, 1 to 5.",
        "RFM_M": "Monetary score, 1 to 5.",
        "LIFETIME_VALUE": "Purchases less refunds, ever.",
        "PURCHASE_COUNT": "Purchases, ever.",
        "DAYS_SINCE_LAST_INTERACTION": "Days since the last interaction of any kind.",
        "ENGAGEMENT_SCORE": "The last 90 days' interactions weighted by kind.",
    },
)


def _unset(description: str) -> Any:  # noqa: ANN401 - a field of whatever type it sits on
    return strawberry.field(default=strawberry.UNSET, description=description)


# -- the rule as an input type ------------------------------------------------------


@strawberry.input(one_of=True, description="A time window: exactly one field.")
class WindowInput:
    within_days: int | None = _unset("The last N days.")
    between_days: list[int] | None = _unset("From N to M days ago: [N, M], N the nearer.")
    since: datetime | None = _unset("From this time (with its UTC offset) to now.")
    ever: bool | None = _unset("All time (true).")


@strawberry.input(description="A condition on a clear attribute (tier, locale, tags, ...).")
class AttributeConditionInput:
    field: AttributeFieldEnum = strawberry.field(description="The attribute.")
    op: OpEnum = strawberry.field(description="The comparison.")
    value: JSON | None = strawberry.field(
        default=None, description="What it is compared with (none for EXISTS)."
    )
    key: str | None = strawberry.field(
        default=None,
        description="A custom attribute's name: declared, and not PII (those are encrypted).",
    )


@strawberry.input(description="The customer has a current grant of this purpose.")
class ConsentConditionInput:
    purpose: str = strawberry.field(description="A consent-based purpose's name.")


@strawberry.input(description="An aggregate of matching interactions inside a window.")
class BehaviourConditionInput:
    aggregate: AggregateEnum = strawberry.field(description="What is computed.")
    op: OpEnum = strawberry.field(description="The comparison.")
    value: float = strawberry.field(description="What it is compared with.")
    window: WindowInput = strawberry.field(description="Which interactions, by time.")
    types: list[InteractionTypeEnum] | None = strawberry.field(
        default=None, description="Only these types (default: all)."
    )
    channels: list[ChannelEnum] | None = strawberry.field(
        default=None, description="Only these channels (default: all)."
    )
    currency: str | None = strawberry.field(
        default=None, description="Amounts in this currency only (SUM, AVG, MIN, MAX)."
    )


@strawberry.input(one_of=True, description="How long after a step the next may come: one field.")
class GapInput:
    days: int | None = _unset("So many days.")
    hours: int | None = _unset("So many hours.")
    minutes: int | None = _unset("So many minutes.")


@strawberry.input(
    description="A step: an interaction of these types on these channels (none: any)."
)
class SequenceStepInput:
    types: list[InteractionTypeEnum] | None = strawberry.field(
        default=None, description="Interactions of these types (none: any type)."
    )
    channels: list[ChannelEnum] | None = strawberry.field(
        default=None, description="Interactions on these channels (none: any channel)."
    )
    absent: bool = strawberry.field(
        default=False, description="The last step only: no such interaction came within the gap."
    )


@strawberry.input(
    description="Interactions in order: the first step's inside the window, each next one at "
    "or up to `within` after the previous (2-8 steps; the last may be absent)."
)
class SequenceConditionInput:
    steps: list[SequenceStepInput] = strawberry.field(description="The steps, in order.")
    within: GapInput = strawberry.field(description="The most time between two steps.")
    window: WindowInput = strawberry.field(description="When the first step happened.")


@strawberry.input(description="A per-customer metric (RFM, lifetime value, ...).")
class MetricConditionInput:
    name: MetricNameEnum = strawberry.field(description="The metric.")
    op: OpEnum = strawberry.field(description="The comparison.")
    value: float = strawberry.field(description="What it is compared with.")


@strawberry.input(description="Another segment's rule.")
class SegmentReferenceInput:
    id: strawberry.ID = strawberry.field(description="The segment's id.")


@strawberry.input(one_of=True, description="A rule node: exactly one field.")
class SegmentRuleInput:
    all: list[SegmentRuleInput] | None = _unset("Every one of these rules holds.")
    any: list[SegmentRuleInput] | None = _unset("At least one of these rules holds.")
    not_: SegmentRuleInput | None = strawberry.field(
        name="not", default=strawberry.UNSET, description="This rule does not hold."
    )
    attribute: AttributeConditionInput | None = _unset("A condition on an attribute.")
    consent: ConsentConditionInput | None = _unset("A current consent grant.")
    behaviour: BehaviourConditionInput | None = _unset("A condition on interactions.")
    sequence: SequenceConditionInput | None = _unset(
        "Interactions in order: each step within the gap of the one before (or, for an "
        "absent last step, none within it)."
    )
    metric: MetricConditionInput | None = _unset("A condition on a metric.")
    segment: SegmentReferenceInput | None = _unset("Another segment's rule holds.")


def _given(value: object) -> bool:
    return value is not None and value is not strawberry.UNSET


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _window(window: WindowInput) -> object:
    if _given(window.within_days):
        return {"within_days": window.within_days}
    if _given(window.between_days):
        return {"between_days": window.between_days}
    if _given(window.since):
        return {"since": cast(datetime, window.since).isoformat()}
    return "ever"


def _gap(gap: GapInput) -> dict[str, Any]:
    return {unit: getattr(gap, unit) for unit in ("days", "hours", "minutes")
            if _given(getattr(gap, unit))}  # fmt: skip


def _step(step: SequenceStepInput) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if step.types:
        doc["types"] = [OpValue(t) for t in step.types]
    if step.channels:
        doc["channels"] = [OpValue(c) for c in step.channels]
    if step.absent:
        doc["absent"] = True
    return doc


def _attribute(a: AttributeConditionInput) -> dict[str, Any]:
    body: dict[str, Any] = {"field": OpValue(a.field), "op": OpValue(a.op)}
    if a.value is not None:
        body["value"] = a.value
    if a.key is not None:
        body["key"] = a.key
    return body


def _behaviour(b: BehaviourConditionInput) -> dict[str, Any]:
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
    return doc


def rule_document(node: SegmentRuleInput) -> dict[str, Any]:  # noqa: PLR0911 - one per node kind
    """The JSON rule document of an input rule (the service validates it)."""
    if _given(node.all):
        return {"all": [rule_document(c) for c in cast(list[SegmentRuleInput], node.all)]}
    if _given(node.any):
        return {"any": [rule_document(c) for c in cast(list[SegmentRuleInput], node.any)]}
    if _given(node.not_):
        return {"not": rule_document(cast(SegmentRuleInput, node.not_))}
    if _given(node.attribute):
        return {"attribute": _attribute(cast(AttributeConditionInput, node.attribute))}
    if _given(node.consent):
        return {"consent": {"purpose": cast(ConsentConditionInput, node.consent).purpose}}
    if _given(node.behaviour):
        return {"behaviour": _behaviour(cast(BehaviourConditionInput, node.behaviour))}
    if _given(node.sequence):
        q = cast(SequenceConditionInput, node.sequence)
        return {"sequence": {"steps": [_step(step) for step in q.steps],
                             "within": _gap(q.within), "window": _window(q.window)}}  # fmt: skip
    if _given(node.metric):
        m = cast(MetricConditionInput, node.metric)
        return {"metric": {"name": OpValue(m.name), "op": OpValue(m.op), "value": _number(m.value)}}
    ref = cast(SegmentReferenceInput, node.segment)
    return {"segment": {"id": str(ref.id)}}


def OpValue(member: object) -> str:  # noqa: N802 - reads as a conversion
    """A GraphQL enum argument's stored value (Strawberry hands over the Python member)."""
    return str(getattr(member, "value", member))


# -- inputs and results ---------------------------------------------------------------


@strawberry.input(description="A new segment.")
class SegmentInput:
    name: str = strawberry.field(description="Its name.")
    rule: SegmentRuleInput = strawberry.field(description="Who is in it.")
    description: str | None = strawberry.field(default=None, description="What it is for.")


@strawberry.input(description="Only the fields given change.")
class SegmentPatchInput:
    name: str | None = strawberry.field(default=None, description="A new name.")
    rule: SegmentRuleInput | None = strawberry.field(default=None, description="A new rule.")
    description: str | None = strawberry.field(default=None, description="A new description.")


@strawberry.type(description="What recomputing one segment's membership did.")
class SegmentRefresh:
    segment_id: strawberry.ID = strawberry.field(description="The segment.")
    members: int = strawberry.field(description="Members now.")
    entered: int = strawberry.field(description="Customers who entered.")
    left: int = strawberry.field(description="Customers who left.")


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

    @strawberry.field(description="One saved segment.")
    def segment(self, info: Ctx, id: IdArg) -> Segment:
        ctx = info.context
        return Segment(record=segment_record(ctx, id))

    @strawberry.field(description="How many customers the caller may process match a rule now.")
    def preview_segment(
        self,
        info: Ctx,
        rule: Annotated[SegmentRuleInput, strawberry.argument(description="The rule to try.")],
    ) -> int:
        ctx = info.context
        return ctx.vault.segments.preview(ctx.session, rule_document(rule))

    @strawberry.field(description="Visits, conversions and revenue per channel; no PII.")
    def channel_analytics(
        self,
        info: Ctx,
        since: Annotated[datetime, strawberry.argument(description="From (inclusive).")],
        until: Annotated[datetime, strawberry.argument(description="To (exclusive).")],
    ) -> list[ChannelStats]:
        ctx = info.context
        return [
            channel_stats(s)
            for s in ctx.vault.segments.channel_analytics(ctx.session, since, until)
        ]


@strawberry.type
class SegmentMutation:
    @strawberry.mutation(description="Save a new segment; membership follows at the refresh.")
    def create_segment(
        self,
        info: Ctx,
        input: Annotated[SegmentInput, strawberry.argument(description="The segment.")],
    ) -> Segment | None:
        ctx = info.context
        with atomic(info) as session:
            made = ctx.vault.segments.create(
                session, name=input.name, definition=rule_document(input.rule),
                description=input.description,
            )  # fmt: skip
        return Segment(record=made)

    @strawberry.mutation(description="Change a segment; its version goes up.")
    def update_segment(
        self,
        info: Ctx,
        id: IdArg,
        input: Annotated[SegmentPatchInput, strawberry.argument(description="What changes.")],
    ) -> Segment | None:
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
        self,
        info: Ctx,
        id: Annotated[
            strawberry.ID | None, strawberry.argument(description="One segment (default: all).")
        ] = None,
        metrics: Annotated[
            bool | None, strawberry.argument(description="Rebuild the metrics rollup first.")
        ] = None,
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
