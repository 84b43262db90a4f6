"""Compile a rule into ONE SQL ``SELECT`` of customer ids, the same on SQLite and PostgreSQL.

No customer is ever evaluated in Python: each node becomes a condition on
``customers``: ``id IN (...)`` (a semi-join) for occurrence, ``EXISTS`` for consent,
``NOT EXISTS`` (an anti-join) for non-occurrence or under a ``not``, ``id IN (grouped
interactions HAVING ...)`` for an aggregate that no interaction-less customer can
meet, a ``LEFT JOIN`` to a grouped subquery where zero or "no value" matters under a
``not``, and a join to the ``customer_metrics`` rollup for metrics.

What a rule means (every time is relative to the ``now`` passed in):

* **Members** are customers whose status is ``active``. Erased and merged customers
  never match; restricted ones neither, since processing is restricted for them.
* **Windows**: ``within_days N`` is ``now - N days <= occurred_at <= now``: an
  interaction exactly N x 24 h old is inside. ``between_days [N, M]`` is
  ``now - M days <= occurred_at < now - N days`` (the older edge inclusive, the
  nearer one belongs to "within N"). ``since T`` is ``T <= occurred_at <= now``.
  ``ever`` is ``occurred_at <= now``. Interactions stamped after ``now`` never count.
* **count** is the number of matching interactions, 0 when there are none, so
  ``count eq 0`` is "did not occur". **sum** adds ``amount_minor`` of matching
  interactions *in the rule's currency* (amounts in other currencies are
  ignored; refunds are separate interactions, filter by type), 0 when there are
  none. **avg / min / max** have no value without such an amount: the condition
  then does not hold (and its ``not`` does). Amount values are integer minor units.
* **first / last** compare how long ago the earliest / latest matching interaction
  happened, in exact elapsed time: ``last gt 30`` is ``occurred_at < now - 30 days``
  ("more than 30 days ago"), ``lte 7`` is ``>= now - 7 days``. Without such an
  interaction the condition does not hold.
* **attributes**: ``eq`` / ``in`` need a stored value; ``ne`` is ``not eq`` (a
  customer without the attribute matches); ``exists`` is "has a non-null value".
  A custom attribute compares only with values of the same JSON type: the number 5
  never equals the string "5". ``tags contains`` looks for one tag.
* **consent** holds while the current consent state is ``granted`` and its
  ``expires_at`` is unset or later than ``now``.
* **metrics** read the ``customer_metrics`` rollup (:mod:`vault.segments.metrics`)
  as of its last refresh; ``recency_days`` and ``days_since_last_interaction``
  compare exact elapsed time from the stored timestamps at ``now``. A customer
  without a rollup row matches no metric condition.
* **sequence**: "A, then B within D (then C ...)" and "A, then no B within D", each
  step with its types and channels; the window selects the first step. Semantics,
  edges and the SQL: :mod:`vault.segments.sequences`.
* **segment** references are inlined (evaluated at the same ``now``); a cycle
  raises :class:`~vault.segments.rules.SegmentCycle`.

Two shapes of the same rule: for every customer (a full refresh, a preview) the
semi-joins and grouped subqueries above, which the planner may drive from either side;
for a batch of customers (``among``: the ingest hook) each interaction and consent
condition becomes a correlated scalar subquery on the outer customer's id, a probe of
``ix_interactions_customer_timeline`` or the consent key that no planner can turn into a
join. The batch shape reads only the batch's own rows whatever the table statistics
say (a semi-join, priced on missing statistics, was seen rereading every purchase of a
window once per consent row). Both select the same customers.
"""

from __future__ import annotations

import operator
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Numeric,
    Select,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from vault.segments.rules import (
    AGGREGATES_ON_AMOUNT,
    Aggregate,
    All,
    AnyOf,
    Attribute,
    AttributeField,
    Behaviour,
    Consent,
    EventSequence,
    Metric,
    MetricName,
    Not,
    Op,
    Resolver,
    Rule,
    RuleError,
    SegmentCycle,
    SegmentRef,
    any_node,
)
from vault.segments.sequences import sequence_rows, window_clause
from vault.storage.models import (
    ConsentStateRow,
    CustomerMetricsRow,
    CustomerRow,
    InteractionRow,
)
from vault.storage.sql import id_in, json_array_has
from vault.types import ConsentState, CustomerStatus

__all__ = ["compile_rule", "uses_metrics"]

_C = CustomerRow.__table__
_I = InteractionRow
_M = CustomerMetricsRow.__table__

_PY_OPS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
    Op.LT: operator.lt,
    Op.LTE: operator.le,
    Op.GT: operator.gt,
    Op.GTE: operator.ge,
}


def _compare(expr: Any, op: Op, value: Any) -> ColumnElement[bool]:  # noqa: ANN401
    return _PY_OPS[op](expr, value)  # type: ignore[return-value]


def _present(expr: Any, op: Op, value: Any) -> ColumnElement[bool]:  # noqa: ANN401
    """``expr op value`` that is false (never NULL) when ``expr`` is NULL, so ``not``
    of it is true: every condition this module builds is two-valued."""
    return and_(expr.is_not(None), _compare(expr, op, value))


def _ago(when: Any, op: Op, days: float, now: datetime) -> ColumnElement[bool]:  # noqa: ANN401
    """``(now - when) op days`` on exact elapsed time, as a plain timestamp comparison."""
    edge = now - timedelta(days=days)
    flipped = {Op.GT: Op.LT, Op.GTE: Op.LTE, Op.LT: Op.GT, Op.LTE: Op.GTE}.get(op, op)
    return _present(when, flipped, edge)


class _Compiler:
    def __init__(
        self, now: datetime, dialect: str, resolve: Resolver | None, probe: bool = False
    ) -> None:
        self.now = now
        self.dialect = dialect
        self.resolve = resolve
        self.probe = probe  # the batch shape: correlated probes per outer customer
        self.joins: list[tuple[FromClause, ColumnElement[bool]]] = []
        self.metrics_joined = False
        self.stack: list[uuid.UUID] = []

    def from_clause(self) -> FromClause:
        joined: FromClause = _C
        for target, on in self.joins:
            joined = joined.outerjoin(target, on)
        return joined

    def condition(  # noqa: PLR0911 - one return per node kind
        self, rule: Rule, positive: bool, path: str
    ) -> ColumnElement[bool]:
        match rule:
            case All(children):
                return and_(
                    *(
                        self.condition(c, positive, f"{path}.all[{i}]")
                        for i, c in enumerate(children)
                    )
                )
            case AnyOf(children):
                return or_(
                    *(
                        self.condition(c, positive, f"{path}.any[{i}]")
                        for i, c in enumerate(children)
                    )
                )
            case Not(child):
                return not_(self.condition(child, not positive, f"{path}.not"))
            case Attribute():
                return self.attribute(rule)
            case Consent(purpose):
                s = ConsentStateRow
                granted = [
                    s.purpose == purpose.value,
                    s.state == ConsentState.GRANTED.value,
                    or_(s.expires_at.is_(None), s.expires_at > self.now),
                ]
                if self.probe:
                    return _found(s, s.customer_id == _C.c.id, *granted)
                # EXISTS, not IN: a consent set is large, and SQLite would list it whole.
                return exists().where(s.customer_id == _C.c.id, *granted)
            case Behaviour():
                return self.behaviour(rule, positive)
            case EventSequence():
                return self.sequence(rule, positive)
            case Metric():
                return self.metric(rule)
            case SegmentRef(segment_id):
                return self.segment(segment_id, positive, f"{path}.segment.id")
        raise TypeError("not a rule")  # pragma: no cover

    # -- references ---------------------------------------------------------------

    def segment(self, segment_id: uuid.UUID, positive: bool, path: str) -> ColumnElement[bool]:
        if segment_id in self.stack:
            raise SegmentCycle(path, f"segment {segment_id} refers back to itself")
        target = self.resolve(segment_id) if self.resolve is not None else None
        if target is None:
            raise RuleError(path, f"no segment {segment_id}")
        self.stack.append(segment_id)
        try:
            return self.condition(target, positive, f"{path}({segment_id})")
        finally:
            self.stack.pop()

    # -- behaviour ------------------------------------------------------------------

    def _filters(self, rule: Behaviour) -> list[ColumnElement[bool]]:
        parts = [window_clause(rule.window, self.now)]
        if rule.types:
            # A probe filters the type as an expression (``type || ''``), which no index
            # can seek: both planners then seek the customer's own interactions
            # (customer_id, occurred_at) instead of every interaction of the type in the
            # window (ix_interactions_segment_scan, which SQLite prefers as covering).
            kind = _I.type.concat("") if self.probe else _I.type
            parts.append(kind.in_([t.value for t in rule.types]))
        if rule.channels:
            parts.append(_I.channel.in_([c.value for c in rule.channels]))
        if rule.aggregate in AGGREGATES_ON_AMOUNT:
            parts += [_I.currency == rule.currency, _I.amount_minor.is_not(None)]
        return parts

    @staticmethod
    def _aggregate(rule: Behaviour) -> Any:  # noqa: ANN401
        return _AGGREGATES[rule.aggregate]()

    def _test(self, rule: Behaviour, value: Any) -> ColumnElement[bool]:  # noqa: ANN401
        if rule.aggregate in (Aggregate.FIRST, Aggregate.LAST):
            return _ago(value, rule.op, rule.value, self.now)
        if rule.aggregate in (Aggregate.COUNT, Aggregate.SUM):  # never NULL here
            return _compare(value, rule.op, rule.value)
        return _present(value, rule.op, rule.value)

    def probed(self, rule: Behaviour) -> ColumnElement[bool]:
        """The batch shape: the outer customer's own interactions, probed by its id."""
        own = [_I.customer_id == _C.c.id, *self._filters(rule)]
        if rule.aggregate is Aggregate.COUNT:
            occurs = _occurrence(rule.op, int(rule.value))
            if occurs is not None:
                found = _found(_I, *own)
                return found if occurs else not_(found)
        value: Any = select(self._aggregate(rule)).where(*own).scalar_subquery()
        if rule.aggregate in (Aggregate.COUNT, Aggregate.SUM):
            value = func.coalesce(value, 0)
        return self._test(rule, value)

    def behaviour(self, rule: Behaviour, positive: bool) -> ColumnElement[bool]:
        if self.probe:
            return self.probed(rule)
        filters = self._filters(rule)
        zero_counts = rule.aggregate in (Aggregate.COUNT, Aggregate.SUM)
        if rule.aggregate is Aggregate.COUNT:
            occurs = _occurrence(rule.op, int(rule.value))
            if occurs and positive:  # a semi-join either side may drive (SQLite too)
                return _C.c.id.in_(select(_I.customer_id).where(*filters))
            if occurs is not None:
                found = exists().where(_I.customer_id == _C.c.id, *filters)
                return found if occurs else ~found
        zero_ok = zero_counts and _PY_OPS[rule.op](0, rule.value)
        aggregate = self._aggregate(rule)
        if positive and not zero_ok:
            matching = (
                select(_I.customer_id)
                .where(*filters)
                .group_by(_I.customer_id)
                .having(self._test(rule, aggregate))
            )
            return _C.c.id.in_(matching)
        name = f"b{len(self.joins)}"
        grouped = (
            select(_I.customer_id.label("customer_id"), aggregate.label("v"))
            .where(*filters)
            .group_by(_I.customer_id)
            .subquery(name)
        )
        self.joins.append((grouped, grouped.c.customer_id == _C.c.id))
        value = func.coalesce(grouped.c.v, 0) if zero_counts else grouped.c.v
        return self._test(rule, value)

    def sequence(self, rule: EventSequence, positive: bool) -> ColumnElement[bool]:
        """Customers with a row that starts the sequence (:mod:`vault.segments.sequences`):
        a semi-join, an ``EXISTS`` under a ``not``, a probe in the batch shape."""
        first, where = sequence_rows(rule, self.now, self.dialect, probe=self.probe)
        if self.probe:
            return _found(first, first.customer_id == _C.c.id, *where)
        if positive:
            return _C.c.id.in_(select(first.customer_id).where(*where))
        return exists().where(first.customer_id == _C.c.id, *where)

    # -- metrics --------------------------------------------------------------------

    def metric(self, rule: Metric) -> ColumnElement[bool]:
        if not self.metrics_joined:
            self.metrics_joined = True
            self.joins.append((_M, _M.c.customer_id == _C.c.id))
        if rule.name is MetricName.RECENCY_DAYS:
            return _ago(_M.c.last_purchase_at, rule.op, rule.value, self.now)
        if rule.name is MetricName.DAYS_SINCE_LAST_INTERACTION:
            return _ago(_M.c.last_interaction_at, rule.op, rule.value, self.now)
        return _present(_M.c[_METRIC_COLUMNS[rule.name]], rule.op, rule.value)

    # -- attributes -------------------------------------------------------------------

    def attribute(self, rule: Attribute) -> ColumnElement[bool]:
        match rule.field:
            case AttributeField.TIER | AttributeField.LOCALE:
                column = _C.c[rule.field.value]
                return _plain(column, rule)
            case AttributeField.CREATED_AT:
                return _compare(_C.c.created_at, rule.op, rule.value)
            case AttributeField.TAGS:
                return self.tag(str(rule.value))
        return self.custom(rule)

    def tag(self, tag: str) -> ColumnElement[bool]:
        return json_array_has(_C.c.tags, tag, self.dialect)

    def custom(self, rule: Attribute) -> ColumnElement[bool]:
        assert rule.key is not None  # noqa: S101 - the parser requires it for custom
        kind_of, raw = self._json_parts(rule.key)
        if rule.op is Op.EXISTS:
            return and_(kind_of.is_not(None), kind_of != "null")
        values = rule.value if isinstance(rule.value, tuple) else (rule.value,)
        sample = values[0]
        if isinstance(sample, bool):
            typed: Any = case((kind_of.in_(_BOOL_KINDS[self.dialect]), raw))
            wanted: tuple[Any, ...] = tuple("true" if v else "false" for v in values)
            if self.dialect == "sqlite":  # json_type names the boolean itself
                typed = case((kind_of.in_(_BOOL_KINDS["sqlite"]), kind_of))
        elif isinstance(sample, str):
            typed = case((kind_of == _TEXT_KIND[self.dialect], raw))
            wanted = values
        else:
            numeric = raw if self.dialect == "sqlite" else cast(raw, Numeric)
            typed = case((kind_of.in_(_NUMBER_KINDS[self.dialect]), numeric))
            wanted = values
        if rule.op is Op.IN:
            return and_(typed.is_not(None), typed.in_(wanted))
        if rule.op is Op.NE:
            return not_(_present(typed, Op.EQ, wanted[0]))
        return _present(typed, rule.op, wanted[0])

    def _json_parts(self, key: str) -> tuple[Any, Any]:
        """(the JSON type name of attribute ``key``, its value as SQL) for this dialect."""
        column = _C.c.attributes
        if self.dialect == "postgresql":
            node = type_coerce(column, JSONB).op("->")(key)
            return func.jsonb_typeof(node), type_coerce(column, JSONB).op("->>")(key)
        path = f'$."{key}"'  # key is [A-Za-z0-9_]{1,64}, checked by the parser
        return func.json_type(column, path), func.json_extract(column, path)


_AGGREGATES: dict[Aggregate, Callable[[], Any]] = {
    Aggregate.COUNT: func.count,
    Aggregate.SUM: lambda: func.sum(_I.amount_minor),
    Aggregate.AVG: lambda: func.avg(_I.amount_minor),
    Aggregate.MIN: lambda: func.min(_I.amount_minor),
    Aggregate.MAX: lambda: func.max(_I.amount_minor),
    Aggregate.FIRST: lambda: func.min(_I.occurred_at),
    Aggregate.LAST: lambda: func.max(_I.occurred_at),
}

_BOOL_KINDS = {"sqlite": ("true", "false"), "postgresql": ("boolean",)}
_TEXT_KIND = {"sqlite": "text", "postgresql": "string"}
_NUMBER_KINDS = {"sqlite": ("integer", "real"), "postgresql": ("number",)}

_METRIC_COLUMNS = {
    MetricName.FREQUENCY: "frequency",
    MetricName.MONETARY: "monetary_minor",
    MetricName.RFM_R: "r_score",
    MetricName.RFM_F: "f_score",
    MetricName.RFM_M: "m_score",
    MetricName.LIFETIME_VALUE: "lifetime_value_minor",
    MetricName.PURCHASE_COUNT: "purchase_count",
    MetricName.ENGAGEMENT_SCORE: "engagement_score",
}


def _plain(column: Any, rule: Attribute) -> ColumnElement[bool]:  # noqa: ANN401
    if rule.op is Op.EXISTS:
        return column.is_not(None)  # type: ignore[no-any-return]
    if rule.op is Op.IN:
        assert isinstance(rule.value, tuple)  # noqa: S101 - the parser builds a tuple for in
        return and_(column.is_not(None), column.in_(rule.value))
    if rule.op is Op.NE:
        return not_(_present(column, Op.EQ, rule.value))
    return _present(column, rule.op, rule.value)


def _found(entity: Any, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:  # noqa: ANN401 - a mapped class
    """Whether a row of ``entity`` meets ``conditions``: ``(SELECT 1 ... LIMIT 1) IS NOT
    NULL``, a scalar subquery that PostgreSQL runs per outer row (an ``EXISTS`` it would
    pull up into a semi-join and order as the estimates say)."""
    first = select(literal(1)).select_from(entity).where(*conditions).limit(1)
    return first.scalar_subquery().is_not(None)


def _occurrence(op: Op, value: int) -> bool | None:
    """True when ``count op value`` just means "occurred", False for "did not occur",
    None for a real count."""
    if (op, value) in ((Op.GTE, 1), (Op.GT, 0), (Op.NE, 0)):
        return True
    if (op, value) in ((Op.EQ, 0), (Op.LT, 1), (Op.LTE, 0)):
        return False
    return None


def compile_rule(
    rule: Rule,
    *,
    now: datetime,
    dialect: str,
    resolve: Resolver | None = None,
    among: Sequence[uuid.UUID] | None = None,
) -> Select[tuple[uuid.UUID]]:
    """The ids of the active customers that match ``rule`` at ``now``, as one statement;
    of the customers ``among`` only, in the batch shape, when given."""
    compiler = _Compiler(now, dialect, resolve, probe=among is not None)
    condition = compiler.condition(rule, True, "rule")
    stmt = (
        select(_C.c.id)
        .select_from(compiler.from_clause())
        .where(_C.c.status == CustomerStatus.ACTIVE.value, condition)
    )
    if among is not None:
        stmt = stmt.where(id_in(CustomerRow.id, among, dialect))
    return stmt


def uses_metrics(rule: Rule, resolve: Resolver | None = None) -> bool:
    """Whether the rule (with the segments it refers to) reads the metrics rollup."""
    return any_node(rule, lambda node: isinstance(node, Metric), resolve)
