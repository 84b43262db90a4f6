"""The segment rule language: typed data parsed from JSON, refusals that name the path of
the bad node (never its value), round trips, and cycle detection over references."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from vault.errors import InvalidInput
from vault.segments.parse import parse_rule, rule_to_json
from vault.segments.rules import (
    Aggregate,
    All,
    Behaviour,
    BetweenDays,
    EventSequence,
    Ever,
    Gap,
    GapUnit,
    Op,
    Rule,
    RuleError,
    SegmentCycle,
    SegmentRef,
    Since,
    Step,
    WithinDays,
    check_references,
)
from vault.types import Channel, InteractionType

DONE_MEANS: dict[str, Any] = {
    "all": [
        {
            "behaviour": {
                "aggregate": "count",
                "types": ["purchase"],
                "window": {"within_days": 90},
                "op": "gte",
                "value": 2,
            }
        },
        {
            "behaviour": {
                "aggregate": "count",
                "types": ["page_view"],
                "window": {"within_days": 30},
                "op": "eq",
                "value": 0,
            }
        },
        {"consent": {"purpose": "marketing_email"}},
    ]
}


def test_a_rule_parses_into_typed_frozen_data() -> None:
    """The issue's example becomes All(Behaviour, Behaviour, Consent) with enums."""
    rule = parse_rule(DONE_MEANS)
    assert isinstance(rule, All)
    first = rule.children[0]
    expected = Behaviour(
        Aggregate.COUNT, Op.GTE, 2, WithinDays(90), types=(InteractionType.PURCHASE,)
    )
    assert expected == first
    with pytest.raises(AttributeError):
        first.value = 3  # type: ignore[misc]


ROUND_TRIPS: list[dict[str, Any]] = [
    DONE_MEANS,
    {"not": {"attribute": {"field": "tier", "op": "eq", "value": "gold"}}},
    {"any": [{"attribute": {"field": "tags", "op": "contains", "value": "vip"}}]},
    {"attribute": {"field": "custom", "key": "plan", "op": "in", "value": ["a", "b"]}},
    {"attribute": {"field": "custom", "key": "score", "op": "gt", "value": 2.5}},
    {"attribute": {"field": "locale", "op": "exists"}},
    {"attribute": {"field": "created_at", "op": "lt", "value": "2026-01-01T00:00:00+00:00"}},
    {
        "behaviour": {
            "aggregate": "sum",
            "types": ["purchase"],
            "channels": ["web", "app"],
            "window": {"between_days": [30, 90]},
            "op": "gt",
            "value": 50000,
            "currency": "EUR",
        }
    },
    {"behaviour": {"aggregate": "last", "window": "ever", "op": "gt", "value": 60}},
    {"metric": {"name": "rfm_m", "op": "eq", "value": 5}},
    {"segment": {"id": "8c7ad6a4-2b8e-4d5c-9a57-7b8f1f0e9d11"}},
    {
        "sequence": {
            "steps": [{"types": ["cart_abandon"], "channels": ["web"]},
                      {"types": ["purchase"], "absent": True}],
            "within": {"days": 2},
            "window": {"within_days": 30},
        }
    },
    {
        "sequence": {
            "steps": [{"types": ["page_view"]}, {}, {"types": ["purchase"], "channels": ["app"]}],
            "within": {"minutes": 90},
            "window": {"since": "2026-11-01T00:00:00+00:00"},
        }
    },
]  # fmt: skip


def _sequence(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "steps": [{"types": ["cart_abandon"]}, {"types": ["purchase"], "absent": True}],
        "within": {"days": 2},
        "window": {"within_days": 30},
    }
    return {"sequence": {**body, **changes}}


@pytest.mark.parametrize("document", ROUND_TRIPS)
def test_rule_to_json_reads_back_into_an_equal_rule(document: dict[str, Any]) -> None:
    """parse(to_json(parse(doc))) == parse(doc), and to_json is the document itself."""
    rule = parse_rule(document)
    assert rule == parse_rule(rule_to_json(rule))
    assert document == rule_to_json(rule)


BAD: list[tuple[object, str, str]] = [
    ("all", "rule", "must be an object with exactly one of"),
    ({"all": [], "any": []}, "rule", "exactly one of"),
    ({"every": []}, "rule", "unknown node"),
    ({"all": []}, "rule.all", "non-empty list"),
    (
        {"all": [DONE_MEANS, {"consent": {"purpose": "x"}}, {"any": [{"not": 3}]}]},
        "rule.all[1].consent.purpose",
        "must be one of",
    ),
    (
        {
            "all": [
                {"attribute": {"field": "tier", "op": "eq", "value": "gold"}},
                {"attribute": {"field": "tier", "op": "exists"}},
                {
                    "behaviour": {
                        "aggregate": "count",
                        "window": {"within_days": 0},
                        "op": "gte",
                        "value": 1,
                    }
                },
            ]
        },
        "rule.all[2].behaviour.window.within_days",
        "must be a positive integer",
    ),
    (
        {
            "behaviour": {
                "aggregate": "count",
                "window": {"between_days": [90, 30]},
                "op": "gte",
                "value": 1,
            }
        },
        "rule.behaviour.window.between_days",
        "N < M",
    ),
    (
        {"behaviour": {"aggregate": "sum", "window": "ever", "op": "gt", "value": 1}},
        "rule.behaviour.currency",
        "is required for aggregate sum",
    ),
    (
        {"behaviour": {"aggregate": "count", "window": "ever", "op": "in", "value": 1}},
        "rule.behaviour.op",
        "must be one of: eq, ne, lt, lte, gt, gte",
    ),
    (
        {
            "behaviour": {
                "aggregate": "count",
                "types": ["purchase", "teleport"],
                "window": "ever",
                "op": "gt",
                "value": 1,
            }
        },
        "rule.behaviour.types[1]",
        "must be one of",
    ),
    (
        {"behaviour": {"aggregate": "count", "window": "ever", "op": "gt", "value": -1}},
        "rule.behaviour.value",
        "at least 0",
    ),
    (
        {"not": {"metric": {"name": "rfm_r", "op": "eq", "value": 6}}},
        "rule.not.metric.value",
        "at most 5",
    ),
    (
        {"metric": {"name": "engagement_score", "op": "gt", "value": "high"}},
        "rule.metric.value",
        "must be a number",
    ),
    (
        {"attribute": {"field": "custom", "key": "a.b", "op": "eq", "value": 1}},
        "rule.attribute.key",
        "letters, digits or underscores",
    ),
    (
        {"attribute": {"field": "tags", "op": "eq", "value": "vip"}},
        "rule.attribute.op",
        "must be one of: contains",
    ),
    (
        {"attribute": {"field": "created_at", "op": "lt", "value": "2026-01-01"}},
        "rule.attribute.value",
        "UTC offset",
    ),
    (
        {"attribute": {"field": "custom", "key": "k", "op": "in", "value": ["a", 1]}},
        "rule.attribute.value",
        "one type",
    ),
    ({"segment": {"id": "nope"}}, "rule.segment.id", "UUID"),
    (_sequence(within={"days": -2}), "rule.sequence.within.days", "must be a positive integer"),
    (_sequence(within={"hours": 0}), "rule.sequence.within.hours", "must be a positive integer"),
    (_sequence(within={"minutes": 1.5}), "rule.sequence.within.minutes", "positive integer"),
    (_sequence(within={"weeks": 1}), "rule.sequence.within", '{"days": N}, {"hours": N}'),
    (_sequence(within={"days": 40_000}), "rule.sequence.within.days", "at most 36500"),
    (_sequence(steps=[]), "rule.sequence.steps", "must be a list of 2-8 steps"),
    (_sequence(steps=[{"types": ["purchase"]}]), "rule.sequence.steps", "2-8 steps"),
    (_sequence(steps=[{}] * 9), "rule.sequence.steps", "2-8 steps"),
    (
        _sequence(steps=[{"types": ["cart_abandon"]}, {"channels": ["web", "fax"]}]),
        "rule.sequence.steps[1].channels[1]",
        "must be one of: web, email, sms",
    ),
    (
        _sequence(steps=[{"types": ["cart_abandon"], "absent": True}, {"types": ["purchase"]}]),
        "rule.sequence.steps[0].absent",
        "only the last step may be absent",
    ),
    (_sequence(steps=[{}, {"absent": "yes"}]), "rule.sequence.steps[1].absent", "true or false"),
    (_sequence(steps=[{}, {"type": ["purchase"]}]), "rule.sequence.steps[1]", "unknown keys: type"),
    (_sequence(window={"since": "2026-11-01"}), "rule.sequence.window.since", "UTC offset"),
    (_sequence(window={"last_days": 3}), "rule.sequence.window", '{"since": TIME}'),
    (
        _sequence(window={"since": "0001-01-01T00:00:00+14:00"}),
        "rule.sequence.window.since",
        "out of range",
    ),
    (
        {"attribute": {"field": "created_at", "op": "lt", "value": "9999-12-31T23:00:00-14:00"}},
        "rule.attribute.value",
        "out of range",
    ),
    ({"sequence": {"steps": [{}, {}], "window": "ever"}}, "rule.sequence.within", "is required"),
    ({"consent": {"purpose": "support", "extra": 1}}, "rule.consent", "unknown keys: extra"),
]


@pytest.mark.parametrize(("document", "path", "rule"), BAD)
def test_a_bad_rule_is_refused_with_the_path_of_the_bad_node(
    document: object, path: str, rule: str
) -> None:
    """RuleError is an InvalidInput whose field is the path of the first bad node."""
    with pytest.raises(InvalidInput) as caught:
        parse_rule(document)
    assert isinstance(caught.value, RuleError)
    assert path == caught.value.field
    assert rule in caught.value.rule


def test_a_refusal_never_echoes_the_value() -> None:
    """A secret-looking value in a bad place does not reach the message."""
    secret = "alice@example.com"
    with pytest.raises(RuleError) as caught:
        parse_rule({"attribute": {"field": "tier", "op": "eq", "value": [secret]}})
    assert secret not in str(caught.value)
    with pytest.raises(RuleError) as caught:
        parse_rule({"consent": {"purpose": secret}})
    assert secret not in str(caught.value)
    for bad in ({"steps": [{}, {"channels": [secret]}]}, {"within": {secret: 1}},
                {"window": {"since": secret}}):  # fmt: skip
        with pytest.raises(RuleError) as caught:
            parse_rule(_sequence(**bad))
        assert secret not in str(caught.value)


def test_deep_or_huge_rules_are_refused() -> None:
    """Nesting and size are bounded."""
    deep: dict[str, Any] = {"attribute": {"field": "tier", "op": "exists"}}
    for _ in range(20):
        deep = {"not": deep}
    with pytest.raises(RuleError, match="levels deep"):
        parse_rule(deep)
    wide = {"any": [{"attribute": {"field": "tier", "op": "exists"}}] * 250}
    with pytest.raises(RuleError, match="at most 200 nodes"):
        parse_rule(wide)


def test_windows_parse_into_their_four_kinds() -> None:
    """within_days, between_days, since and ever."""

    def window(raw: object) -> object:
        body = {"aggregate": "count", "window": raw, "op": "gt", "value": 0}
        parsed = parse_rule({"behaviour": body})
        assert isinstance(parsed, Behaviour)
        return parsed.window

    assert WithinDays(7) == window({"within_days": 7})
    assert BetweenDays(0, 7) == window({"between_days": [0, 7]})
    assert Ever() == window("ever")
    since = datetime(2026, 11, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    assert Since(since) == window({"since": "2026-11-01T12:00:00+01:00"})


def test_a_sequence_parses_into_steps_a_gap_and_a_window() -> None:
    """Abandoned cart, then no purchase within 2 days, in the last 30 days."""
    expected = EventSequence(
        (Step((InteractionType.CART_ABANDON,), (Channel.WEB,)),
         Step((InteractionType.PURCHASE,), absent=True)),
        Gap(2, GapUnit.DAYS),
        WithinDays(30),
    )  # fmt: skip
    document = _sequence(
        steps=[{"types": ["cart_abandon"], "channels": ["web"]},
               {"types": ["purchase"], "absent": True}]
    )  # fmt: skip
    actual = parse_rule(document)
    assert expected == actual
    assert timedelta(days=2) == Gap(2, GapUnit.DAYS).delta == Gap(48, GapUnit.HOURS).delta


def _resolver(rules: dict[uuid.UUID, Rule]) -> Any:
    return rules.get


def test_a_reference_cycle_is_detected_with_its_path() -> None:
    """a -> b -> a raises SegmentCycle; the path names where the loop closes."""
    a, b = uuid.uuid4(), uuid.uuid4()
    rules: dict[uuid.UUID, Rule] = {
        a: parse_rule({"all": [{"segment": {"id": str(b)}}]}),
        b: parse_rule({"not": {"segment": {"id": str(a)}}}),
    }
    with pytest.raises(SegmentCycle) as caught:
        check_references(rules[a], _resolver(rules), own_id=a)
    assert caught.value.field == f"rule.all[0].segment.id({b}).not.segment.id"


def test_a_rule_referring_to_itself_is_a_cycle() -> None:
    """own_id names the segment being saved."""
    me = uuid.uuid4()
    with pytest.raises(SegmentCycle):
        check_references(SegmentRef(me), _resolver({}), own_id=me)


def test_an_unknown_reference_is_refused_and_a_diamond_is_not_a_cycle() -> None:
    """Two paths to one segment are fine; a missing segment is a RuleError."""
    base, left, right = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    rules: dict[uuid.UUID, Rule] = {
        base: parse_rule({"attribute": {"field": "tier", "op": "exists"}}),
        left: SegmentRef(base),
        right: SegmentRef(base),
    }
    top = parse_rule({"all": [{"segment": {"id": str(left)}}, {"segment": {"id": str(right)}}]})
    check_references(top, _resolver(rules))
    missing = uuid.uuid4()
    with pytest.raises(RuleError, match="no segment") as caught:
        check_references(SegmentRef(missing), _resolver(rules))
    assert not isinstance(caught.value, SegmentCycle)
