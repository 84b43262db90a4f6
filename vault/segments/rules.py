"""The segment rule language: its vocabulary and the typed, immutable rule tree.

A rule is never an evaluated string: it is a tree of the frozen dataclasses below
(conditions on attributes, consent, behaviour aggregates, sequences of interactions
(:class:`EventSequence`), metrics, other segments).
:mod:`vault.segments.parse` reads one from its JSON document (and writes it back),
:mod:`vault.segments.compile` turns it into one SQL statement. Here also live the
errors every refusal raises (:class:`RuleError` names the path of the bad node, never
the value) and the walks over segment references: :func:`check_references` refuses
cycles, :func:`any_node` asks whether a rule (with the segments it refers to) holds a
node of some kind. :func:`check_attributes` holds custom attribute conditions to their
declarations: a declared, non-PII attribute, compared with a value of its type.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Union

from policies.attributes import AttributeRegistry, AttributeType
from policies.purposes import Purpose
from vault.errors import InvalidInput
from vault.types import Channel, InteractionType

__all__ = [
    "AGGREGATES_ON_AMOUNT",
    "AGGREGATES_ON_TIME",
    "Aggregate",
    "All",
    "AnyOf",
    "Attribute",
    "AttributeField",
    "Behaviour",
    "BetweenDays",
    "Consent",
    "EventSequence",
    "Ever",
    "Gap",
    "GapUnit",
    "Metric",
    "MetricName",
    "Not",
    "Op",
    "Resolver",
    "Rule",
    "RuleError",
    "SegmentCycle",
    "SegmentRef",
    "Since",
    "Step",
    "Window",
    "WithinDays",
    "any_node",
    "check_attributes",
    "check_references",
]


class RuleError(InvalidInput):
    """A rule document broke a rule of the language. ``field`` is the path of the bad
    node (``rule.any[1].metric.value``); the message never carries the value."""


class SegmentCycle(RuleError):
    """Segment references loop back to a segment already being expanded."""


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    IN = "in"
    EXISTS = "exists"
    CONTAINS = "contains"


COMPARISONS = (Op.EQ, Op.NE, Op.LT, Op.LTE, Op.GT, Op.GTE)


class AttributeField(StrEnum):
    TIER = "tier"
    LOCALE = "locale"
    TAGS = "tags"
    CUSTOM = "custom"
    CREATED_AT = "created_at"


class Aggregate(StrEnum):
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    FIRST = "first"
    LAST = "last"


AGGREGATES_ON_AMOUNT = frozenset({Aggregate.SUM, Aggregate.AVG, Aggregate.MIN, Aggregate.MAX})
AGGREGATES_ON_TIME = frozenset({Aggregate.FIRST, Aggregate.LAST})


class MetricName(StrEnum):
    RECENCY_DAYS = "recency_days"
    FREQUENCY = "frequency"
    MONETARY = "monetary"
    RFM_R = "rfm_r"
    RFM_F = "rfm_f"
    RFM_M = "rfm_m"
    LIFETIME_VALUE = "lifetime_value"
    PURCHASE_COUNT = "purchase_count"
    DAYS_SINCE_LAST_INTERACTION = "days_since_last_interaction"
    ENGAGEMENT_SCORE = "engagement_score"


SCORE_METRICS = frozenset({MetricName.RFM_R, MetricName.RFM_F, MetricName.RFM_M})

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class All:
    children: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    children: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Rule


@dataclass(frozen=True, slots=True)
class Attribute:
    field: AttributeField
    op: Op
    value: Scalar | datetime | tuple[Scalar, ...] | None = None
    key: str | None = None  # the custom attribute's name (field ``custom`` only)


@dataclass(frozen=True, slots=True)
class Consent:
    purpose: Purpose


@dataclass(frozen=True, slots=True)
class WithinDays:
    days: int


@dataclass(frozen=True, slots=True)
class BetweenDays:
    near: int  # the more recent edge, in days ago
    far: int


@dataclass(frozen=True, slots=True)
class Since:
    at: datetime  # aware; the window is ``at <= occurred_at <= now``


@dataclass(frozen=True, slots=True)
class Ever:
    pass


Window = WithinDays | BetweenDays | Since | Ever


@dataclass(frozen=True, slots=True)
class Behaviour:
    """An aggregate of the customer's interactions that match ``types`` and ``channels``
    (empty: any) inside ``window``, compared with ``value``. Amount aggregates compare
    integer minor units of ``currency``; ``first``/``last`` compare days ago."""

    aggregate: Aggregate
    op: Op
    value: int | float
    window: Window
    types: tuple[InteractionType, ...] = ()
    channels: tuple[Channel, ...] = ()
    currency: str | None = None


class GapUnit(StrEnum):
    DAYS = "days"
    HOURS = "hours"
    MINUTES = "minutes"


_UNIT_SECONDS = {GapUnit.DAYS: 86_400, GapUnit.HOURS: 3_600, GapUnit.MINUTES: 60}


@dataclass(frozen=True, slots=True)
class Gap:
    """How long after one step of a sequence the next may come: ``amount`` whole units."""

    amount: int
    unit: GapUnit

    @property
    def seconds(self) -> int:
        return self.amount * _UNIT_SECONDS[self.unit]

    @property
    def delta(self) -> timedelta:
        return timedelta(seconds=self.seconds)


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a sequence: an interaction of ``types`` on ``channels`` (empty: any);
    ``absent`` (the last step only): no such interaction follows in time."""

    types: tuple[InteractionType, ...] = ()
    channels: tuple[Channel, ...] = ()
    absent: bool = False

    def may_be(self, other: Step) -> bool:
        """Whether one interaction could match both steps (then the two must differ)."""
        types = not self.types or not other.types or bool(set(self.types) & set(other.types))
        channels = (
            not self.channels
            or not other.channels
            or bool(set(self.channels) & set(other.channels))
        )
        return types and channels


def _overlap(mine: tuple[StrEnum, ...], theirs: tuple[StrEnum, ...]) -> bool:
    """Whether one value could be in both lists, an empty list standing for any value."""
    return not mine or not theirs or bool(set(mine) & set(theirs))


@dataclass(frozen=True, slots=True)
class EventSequence:
    """Interactions in order: the first step's inside ``window``, each next one at the
    same time as the previous or up to ``within`` after it; a last step marked
    ``absent`` says that none came within that time (the semantics and the edges are in
    :mod:`vault.segments.sequences`)."""

    steps: tuple[Step, ...]
    within: Gap
    window: Window


@dataclass(frozen=True, slots=True)
class Metric:
    name: MetricName
    op: Op
    value: int | float


@dataclass(frozen=True, slots=True)
class SegmentRef:
    segment_id: uuid.UUID


Rule = Union[All, AnyOf, Not, Attribute, Consent, Behaviour, EventSequence, Metric, SegmentRef]  # noqa: UP007

# -- walking references ---------------------------------------------------------------

Resolver = Callable[[uuid.UUID], Rule | None]


def check_references(rule: Rule, resolve: Resolver, *, own_id: uuid.UUID | None = None) -> None:
    """Follow every segment reference; raise :class:`SegmentCycle` when one leads back to
    a segment being expanded (``own_id`` for a definition being saved) and
    :class:`RuleError` for an unknown segment."""
    _walk(rule, resolve, "rule", [own_id] if own_id is not None else [])


def _walk(rule: Rule, resolve: Resolver, path: str, stack: list[uuid.UUID]) -> None:
    match rule:
        case All(children) | AnyOf(children):
            kind = "all" if isinstance(rule, All) else "any"
            for i, child in enumerate(children):
                _walk(child, resolve, f"{path}.{kind}[{i}]", stack)
        case Not(child):
            _walk(child, resolve, f"{path}.not", stack)
        case SegmentRef(segment_id):
            where = f"{path}.segment.id"
            if segment_id in stack:
                raise SegmentCycle(where, f"segment {segment_id} refers back to itself")
            target = resolve(segment_id)
            if target is None:
                raise RuleError(where, f"no segment {segment_id}")
            _walk(target, resolve, f"{where}({segment_id})", [*stack, segment_id])
        case _:
            pass


def any_node(rule: Rule, test: Callable[[Rule], bool], resolve: Resolver | None = None) -> bool:
    """Whether ``test`` holds for a node of ``rule`` or of the segments it refers to
    (each followed once, none without ``resolve``; an unknown segment adds nothing)."""
    seen: set[uuid.UUID] = set()

    def walk(node: Rule) -> bool:
        if test(node):
            return True
        match node:
            case All(children) | AnyOf(children):
                return any(walk(c) for c in children)
            case Not(child):
                return walk(child)
            case SegmentRef(segment_id):
                if segment_id in seen or resolve is None:
                    return False
                seen.add(segment_id)
                target = resolve(segment_id)
                return target is not None and walk(target)
        return False

    return walk(rule)


# -- custom attributes ------------------------------------------------------------------


def check_attributes(rule: Rule, registry: AttributeRegistry, path: str = "rule") -> None:
    """Refuse a condition on a custom attribute that is not declared, that is personal
    data (encrypted: no rule may read it) or whose value is not of the declared type; the
    error names the node's path and the attribute, never a value. Referenced segments were
    checked when they were saved."""
    match rule:
        case All(children) | AnyOf(children):
            kind = "all" if isinstance(rule, All) else "any"
            for i, child in enumerate(children):
                check_attributes(child, registry, f"{path}.{kind}[{i}]")
        case Not(child):
            check_attributes(child, registry, f"{path}.not")
        case Attribute(field=AttributeField.CUSTOM, key=str(key)):
            _check_custom(rule, registry, key, f"{path}.attribute")
        case _:
            pass


_RULE_TYPES: dict[AttributeType, tuple[type, ...]] = {
    AttributeType.STRING: (str,),
    AttributeType.DATE: (str,),
    AttributeType.INTEGER: (int, float),
    AttributeType.DECIMAL: (int, float),
    AttributeType.BOOLEAN: (bool,),
}


def _check_custom(rule: Attribute, registry: AttributeRegistry, key: str, path: str) -> None:
    info = registry.get(key)
    if info is None:
        raise RuleError(
            f"{path}.key",
            f"attribute {key!r} is not declared (policies/attributes.toml, CVAULT_ATTRIBUTES_FILE)",
        )
    if info.pii:
        raise RuleError(
            f"{path}.key",
            f"attribute {key!r} is personal data (declared pii = true) and stored encrypted: "
            "segment rules cannot use it",
        )
    values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
    wanted = _RULE_TYPES[info.type]
    for value in values:
        if value is None:
            continue
        is_bool = isinstance(value, bool)
        if not isinstance(value, wanted) or (is_bool and info.type is not AttributeType.BOOLEAN):
            raise RuleError(
                f"{path}.value", f"attribute {key!r} is declared {info.type.value}: compare it "
                f"with a {info.type.value} value"
            )  # fmt: skip
