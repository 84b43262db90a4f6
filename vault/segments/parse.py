"""The JSON form of a segment rule, both ways: :func:`parse_rule` reads a document into
the typed rule of :mod:`vault.segments.rules`, :func:`rule_to_json` writes one back.

Every refusal names the *path* of the bad node
(``rule.all[2].behaviour.window.within_days: must be a positive integer``), never the
value. The shapes (each node is an object with exactly one key)::

    {"all": [RULE, ...]}            every child holds (an empty list is refused)
    {"any": [RULE, ...]}            at least one child holds
    {"not": RULE}
    {"attribute": {"field": "tier" | "locale", "op": "eq" | "ne" | "in" | "exists", "value": ...}}
    {"attribute": {"field": "tags", "op": "contains", "value": "vip"}}
    {"attribute": {"field": "custom", "key": "plan", "op": OP, "value": str | number | bool}}
    {"attribute": {"field": "created_at", "op": CMP, "value": "2026-01-01T00:00:00+00:00"}}
    {"consent": {"purpose": "marketing_email"}}          a current, unexpired grant
    {"behaviour": {"aggregate": AGG, "types": [...], "channels": [...], "window": WINDOW,
                   "op": CMP, "value": number, "currency": "EUR"}}
    {"sequence": {"steps": [STEP, STEP, ...], "within": GAP, "window": WINDOW}}
    {"metric": {"name": METRIC, "op": CMP, "value": number}}
    {"segment": {"id": "<segment uuid>"}}                the rule of another segment

``CMP`` is one of eq, ne, lt, lte, gt, gte. ``WINDOW`` is ``{"within_days": N}``,
``{"between_days": [N, M]}`` (N < M), ``{"since": "<ISO time with offset>"}`` or
``"ever"``. A sequence has 2-8 steps ``{"types": [...], "channels": [...]}``, the last
one may add ``"absent": true``; ``GAP`` is ``{"days": N}``, ``{"hours": N}`` or
``{"minutes": N}``. Semantics (edges, money, missing values) are documented in
:mod:`vault.segments.compile` and :mod:`vault.segments.sequences`. Limits: 16 levels,
200 nodes, lists of 100.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from policies.purposes import Purpose
from vault.money import check_currency
from vault.segments.rules import (
    AGGREGATES_ON_AMOUNT,
    COMPARISONS,
    SCORE_METRICS,
    Aggregate,
    All,
    AnyOf,
    Attribute,
    AttributeField,
    Behaviour,
    BetweenDays,
    Consent,
    EventSequence,
    Ever,
    Gap,
    GapUnit,
    Metric,
    MetricName,
    Not,
    Op,
    Rule,
    RuleError,
    Scalar,
    SegmentRef,
    Since,
    Step,
    Window,
    WithinDays,
)
from vault.text import date_problem
from vault.types import Channel, InteractionType

__all__ = ["parse_rule", "rule_to_json"]

MAX_DEPTH = 16
MAX_NODES = 200
MAX_LIST = 100
MAX_DAYS = 36_500
MAX_STEPS = 8
_GAP_LIMITS = {GapUnit.DAYS: MAX_DAYS, GapUnit.HOURS: MAX_DAYS * 24,
               GapUnit.MINUTES: MAX_DAYS * 1440}  # fmt: skip
_KEY = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_MAX_TEXT = 200


_E = TypeVar("_E", bound=StrEnum)


class _Parser:
    def __init__(self) -> None:
        self.nodes = 0

    def rule(self, data: object, path: str, depth: int) -> Rule:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleError(path, f"a rule may hold at most {MAX_NODES} nodes")
        if depth > MAX_DEPTH:
            raise RuleError(path, f"rules nest at most {MAX_DEPTH} levels deep")
        if not isinstance(data, Mapping) or len(data) != 1:
            raise RuleError(path, f"must be an object with exactly one of: {', '.join(_NODES)}")
        ((kind, body),) = data.items()
        handler = _NODES.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise RuleError(path, f"unknown node; expected one of: {', '.join(_NODES)}")
        return handler(self, body, f"{path}.{kind}", depth)

    def children(self, body: object, path: str, depth: int) -> tuple[Rule, ...]:
        if not isinstance(body, list) or not body:
            raise RuleError(path, "must be a non-empty list of rules")
        return tuple(self.rule(child, f"{path}[{i}]", depth + 1) for i, child in enumerate(body))

    def all_(self, body: object, path: str, depth: int) -> Rule:
        return All(self.children(body, path, depth))

    def any_(self, body: object, path: str, depth: int) -> Rule:
        return AnyOf(self.children(body, path, depth))

    def not_(self, body: object, path: str, depth: int) -> Rule:
        return Not(self.rule(body, path, depth + 1))

    def attribute(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(body, path, required=("field", "op"), optional=("value", "key"))
        field = _enum(AttributeField, obj["field"], f"{path}.field")
        op = _enum(Op, obj["op"], f"{path}.op")
        allowed = _ATTRIBUTE_OPS[field]
        if op not in allowed:
            raise RuleError(f"{path}.op", f"must be one of: {', '.join(allowed)} for {field}")
        key = None
        if field is AttributeField.CUSTOM:
            key = obj.get("key")
            if not isinstance(key, str) or not _KEY.match(key):
                raise RuleError(f"{path}.key", "must be 1-64 letters, digits or underscores")
        elif "key" in obj:
            raise RuleError(f"{path}.key", "is only for field custom")
        value = _attribute_value(field, op, obj.get("value"), f"{path}.value", "value" in obj)
        return Attribute(field, op, value, key)

    def consent(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(body, path, required=("purpose",))
        return Consent(_enum(Purpose, obj["purpose"], f"{path}.purpose"))

    def behaviour(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(
            body,
            path,
            required=("aggregate", "op", "value", "window"),
            optional=("types", "channels", "currency"),
        )
        aggregate = _enum(Aggregate, obj["aggregate"], f"{path}.aggregate")
        op = _comparison(obj["op"], f"{path}.op")
        window = _window(obj["window"], f"{path}.window")
        types = _enum_list(InteractionType, obj.get("types", []), f"{path}.types")
        channels = _enum_list(Channel, obj.get("channels", []), f"{path}.channels")
        currency = obj.get("currency")
        if aggregate in AGGREGATES_ON_AMOUNT:
            if not isinstance(currency, str):
                raise RuleError(f"{path}.currency", f"is required for aggregate {aggregate}")
            currency = check_currency(currency, field=f"{path}.currency")
            value: int | float = _integer(obj["value"], f"{path}.value", minimum=None)
        elif currency is not None:
            raise RuleError(f"{path}.currency", "is only for sum, avg, min and max")
        elif aggregate is Aggregate.COUNT:
            value = _integer(obj["value"], f"{path}.value", minimum=0)
        else:  # first / last: days ago
            value = _integer(obj["value"], f"{path}.value", minimum=0, maximum=MAX_DAYS)
        return Behaviour(aggregate, op, value, window, types, channels, currency)

    def sequence(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(body, path, required=("steps", "within", "window"))
        raw = obj["steps"]
        where = f"{path}.steps"
        if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_STEPS:
            raise RuleError(
                where, f"must be a list of 2-{MAX_STEPS} steps (a first step, then more)"
            )
        steps = tuple(_step(item, f"{where}[{i}]") for i, item in enumerate(raw))
        for i, step in enumerate(steps[:-1]):
            if step.absent:
                raise RuleError(f"{where}[{i}].absent", "only the last step may be absent")
        return EventSequence(steps, _gap(obj["within"], f"{path}.within"),
                             _window(obj["window"], f"{path}.window"))  # fmt: skip

    def metric(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(body, path, required=("name", "op", "value"))
        name = _enum(MetricName, obj["name"], f"{path}.name")
        op = _comparison(obj["op"], f"{path}.op")
        if name in SCORE_METRICS:
            value: int | float = _integer(obj["value"], f"{path}.value", minimum=1, maximum=5)
        else:
            value = _number(obj["value"], f"{path}.value")
        return Metric(name, op, value)

    def segment(self, body: object, path: str, _depth: int) -> Rule:
        obj = _object(body, path, required=("id",))
        raw = obj["id"]
        if isinstance(raw, str):
            try:
                return SegmentRef(uuid.UUID(raw))
            except ValueError:
                pass
        raise RuleError(f"{path}.id", "must be a segment id (UUID)")


_NODES: dict[str, Callable[[_Parser, object, str, int], Rule]] = {
    "all": _Parser.all_,
    "any": _Parser.any_,
    "not": _Parser.not_,
    "attribute": _Parser.attribute,
    "consent": _Parser.consent,
    "behaviour": _Parser.behaviour,
    "sequence": _Parser.sequence,
    "metric": _Parser.metric,
    "segment": _Parser.segment,
}

_ATTRIBUTE_OPS: dict[AttributeField, tuple[Op, ...]] = {
    AttributeField.TIER: (Op.EQ, Op.NE, Op.IN, Op.EXISTS),
    AttributeField.LOCALE: (Op.EQ, Op.NE, Op.IN, Op.EXISTS),
    AttributeField.TAGS: (Op.CONTAINS,),
    AttributeField.CUSTOM: (*COMPARISONS, Op.IN, Op.EXISTS),
    AttributeField.CREATED_AT: COMPARISONS,
}


def parse_rule(data: object, path: str = "rule") -> Rule:
    """Parse a rule document; raise :class:`RuleError` naming the path of the first bad
    node."""
    return _Parser().rule(data, path, 0)


def _object(
    body: object, path: str, *, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise RuleError(path, "must be an object")
    for name in required:
        if name not in body:
            raise RuleError(f"{path}.{name}", "is required")
    unknown = sorted(str(k)[:32] for k in body if k not in required and k not in optional)
    if unknown:
        raise RuleError(path, f"unknown keys: {', '.join(unknown)}")
    return body


def _enum(kind: type[_E], raw: object, path: str) -> _E:
    if isinstance(raw, str):
        try:
            return kind(raw)
        except ValueError:
            pass
    raise RuleError(path, f"must be one of: {', '.join(m.value for m in kind)}")


def _enum_list(kind: type[_E], raw: object, path: str) -> tuple[_E, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_LIST:
        raise RuleError(path, f"must be a list of at most {MAX_LIST} names")
    return tuple(dict.fromkeys(_enum(kind, v, f"{path}[{i}]") for i, v in enumerate(raw)))


def _comparison(raw: object, path: str) -> Op:
    op = _enum(Op, raw, path)
    if op not in COMPARISONS:
        raise RuleError(path, f"must be one of: {', '.join(COMPARISONS)}")
    return op


def _integer(raw: object, path: str, *, minimum: int | None, maximum: int | None = None) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise RuleError(path, "must be an integer")
    if minimum is not None and raw < minimum:
        raise RuleError(path, f"must be at least {minimum}")
    if maximum is not None and raw > maximum:
        raise RuleError(path, f"must be at most {maximum}")
    if abs(raw) >= 10**15:
        raise RuleError(path, "is out of range")
    return raw


def _number(raw: object, path: str) -> int | float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise RuleError(path, "must be a number")
    if not math.isfinite(raw) or abs(raw) >= 10**15:
        raise RuleError(path, "must be a finite number in range")
    return raw


def _days(raw: object, path: str) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
        raise RuleError(path, "must be a positive integer")
    if raw > MAX_DAYS:
        raise RuleError(path, f"must be at most {MAX_DAYS}")
    return raw


_WINDOWS = 'must be "ever", {"within_days": N}, {"between_days": [N, M]} or {"since": TIME}'


def _window(raw: object, path: str) -> Window:
    if raw == "ever":
        return Ever()
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RuleError(path, _WINDOWS)
    ((kind, value),) = raw.items()
    if kind == "since":
        return Since(_time(value, f"{path}.since"))
    if kind == "within_days":
        return WithinDays(_days(value, f"{path}.within_days"))
    if kind == "between_days":
        where = f"{path}.between_days"
        if not isinstance(value, list) or len(value) != 2:
            raise RuleError(where, "must be a list of two day counts [N, M]")
        near = _integer(value[0], f"{where}[0]", minimum=0, maximum=MAX_DAYS)
        far = _days(value[1], f"{where}[1]")
        if near >= far:
            raise RuleError(where, "must name the nearer edge first: N < M")
        return BetweenDays(near, far)
    raise RuleError(path, _WINDOWS)


def _step(raw: object, path: str) -> Step:
    obj = _object(raw, path, required=(), optional=("types", "channels", "absent"))
    absent = obj.get("absent", False)
    if not isinstance(absent, bool):
        raise RuleError(f"{path}.absent", "must be true or false")
    types = _enum_list(InteractionType, obj.get("types", []), f"{path}.types")
    channels = _enum_list(Channel, obj.get("channels", []), f"{path}.channels")
    return Step(types, channels, absent)


def _gap(raw: object, path: str) -> Gap:
    rule = 'must be {"days": N}, {"hours": N} or {"minutes": N}'
    if not isinstance(raw, Mapping) or len(raw) != 1:
        raise RuleError(path, rule)
    ((kind, value),) = raw.items()
    unit = next((u for u in GapUnit if u.value == kind), None)
    if unit is None:
        raise RuleError(path, rule)
    where = f"{path}.{unit.value}"
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise RuleError(where, "must be a positive integer (a time after the previous step)")
    if value > _GAP_LIMITS[unit]:
        raise RuleError(where, f"must be at most {_GAP_LIMITS[unit]}")
    return Gap(value, unit)


def parse_gap(raw: object, path: str) -> Gap:
    """A gap document (``{"hours": 2}``) as a :class:`Gap`; :class:`RuleError` if bad."""
    return _gap(raw, path)


def _scalar(raw: object, path: str) -> Scalar:
    if isinstance(raw, bool | int):
        return raw
    if isinstance(raw, float):
        return _number(raw, path)
    if isinstance(raw, str) and len(raw) <= _MAX_TEXT:
        return raw
    raise RuleError(path, f"must be a string of at most {_MAX_TEXT} characters, or a number")


def _attribute_value(
    field: AttributeField, op: Op, raw: object, path: str, given: bool
) -> Scalar | datetime | tuple[Scalar, ...] | None:
    if op is Op.EXISTS:
        if given:
            raise RuleError(path, "is not used with op exists")
        return None
    if not given:
        raise RuleError(path, "is required")
    if field is AttributeField.CREATED_AT:
        return _time(raw, path)
    if op is Op.IN:
        return _in_values(field, raw, path)
    value = _scalar(raw, path)
    if field is not AttributeField.CUSTOM and not isinstance(value, str):
        raise RuleError(path, f"must be a string for {field}")
    if isinstance(value, bool) and op not in (Op.EQ, Op.NE):
        raise RuleError(path, "a true/false value compares with eq or ne only")
    if isinstance(value, str) and field is AttributeField.CUSTOM and op not in (Op.EQ, Op.NE):
        raise RuleError(path, "a string value compares with eq, ne or in only")
    return value


def _time(raw: object, path: str) -> datetime:
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            pass
        else:
            if when.tzinfo is not None:
                return _in_utc_range(when, path)
    rule = "must be an ISO 8601 time with a UTC offset"
    raise RuleError(path, date_problem(raw, rule) if isinstance(raw, str) else rule)


def _in_utc_range(when: datetime, path: str) -> datetime:
    try:
        when.astimezone(UTC)  # stored and compared in UTC: year 1 at +14:00 has no UTC time
    except OverflowError:
        raise RuleError(path, "is out of range: its UTC time must lie in years 1-9999") from None
    return when


def _in_values(field: AttributeField, raw: object, path: str) -> tuple[Scalar, ...]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
        raise RuleError(path, f"must be a list of 1-{MAX_LIST} values")
    values = tuple(_scalar(v, f"{path}[{i}]") for i, v in enumerate(raw))
    kinds = {"bool" if isinstance(v, bool) else "str" if isinstance(v, str) else "num"
             for v in values}  # fmt: skip
    if len(kinds) != 1:
        raise RuleError(path, "must hold values of one type")
    if field is not AttributeField.CUSTOM and kinds != {"str"}:
        raise RuleError(path, f"must hold strings for {field}")
    return values


# -- back to JSON -----------------------------------------------------------------------


def rule_to_json(rule: Rule) -> dict[str, Any]:  # noqa: PLR0911 - one return per node kind
    """The document :func:`parse_rule` reads back into an equal rule."""
    match rule:
        case All(children):
            return {"all": [rule_to_json(c) for c in children]}
        case AnyOf(children):
            return {"any": [rule_to_json(c) for c in children]}
        case Not(child):
            return {"not": rule_to_json(child)}
        case Attribute():
            return {"attribute": _attribute_json(rule)}
        case Behaviour():
            return {"behaviour": _behaviour_json(rule)}
        case EventSequence(steps, within, window):
            return {"sequence": {"steps": [_step_json(s) for s in steps],
                                 "within": {within.unit.value: within.amount},
                                 "window": _window_json(window)}}  # fmt: skip
        case Consent(purpose):
            return {"consent": {"purpose": purpose.value}}
        case Metric(name, op, value):
            return {"metric": {"name": name.value, "op": op.value, "value": value}}
    return {"segment": {"id": str(rule.segment_id)}}


def _attribute_json(rule: Attribute) -> dict[str, Any]:
    body: dict[str, Any] = {"field": rule.field.value, "op": rule.op.value}
    if rule.key is not None:
        body["key"] = rule.key
    if isinstance(rule.value, datetime):
        body["value"] = rule.value.isoformat()
    elif isinstance(rule.value, tuple):
        body["value"] = list(rule.value)
    elif rule.value is not None:
        body["value"] = rule.value
    return body


def _behaviour_json(rule: Behaviour) -> dict[str, Any]:
    out: dict[str, Any] = {
        "aggregate": rule.aggregate.value,
        "op": rule.op.value,
        "value": rule.value,
        "window": _window_json(rule.window),
    }
    if rule.types:
        out["types"] = [t.value for t in rule.types]
    if rule.channels:
        out["channels"] = [c.value for c in rule.channels]
    if rule.currency is not None:
        out["currency"] = rule.currency
    return out


def _step_json(step: Step) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if step.types:
        out["types"] = [t.value for t in step.types]
    if step.channels:
        out["channels"] = [c.value for c in step.channels]
    if step.absent:
        out["absent"] = True
    return out


def _window_json(window: Window) -> object:
    match window:
        case WithinDays(days):
            return {"within_days": days}
        case BetweenDays(near, far):
            return {"between_days": [near, far]}
        case Since(at):
            return {"since": at.isoformat()}
    return "ever"
