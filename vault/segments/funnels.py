"""Funnels in SQL: how many customers reach each step, and the time between steps.

A funnel ``steps = [S1, ..., Sn]`` with a ``window`` D over ``[since, until)``: a customer
reaches step 1 with an interaction matching S1 in ``since <= occurred_at < until``; they
reach step i with interactions a1, ..., ai (different rows where one interaction could
match two steps) where aj matches Sj, ``a(j-1) <= aj <= a(j-1) + D`` (exactly D is
within D; the same instant counts as after) and every one is before ``until``. A step
matches as in :mod:`vault.segments.sequences` (its types, its channels, empty: any), and
a ``channel`` given to the funnel is required of every step on top.

The time between step i-1 and step i of one customer is the shortest ``ai - a(i-1)``
over every chain that reaches step i; the median is over the customers reaching step i
(PostgreSQL: ``percentile_cont(0.5)`` in SQL; SQLite has no percentile, so the
per-customer gaps come back as numbers, never with an id, and the median is taken in
Python: the same value, the mean of the two middle gaps for an even count).

Each step is one statement: step 1 counts the customers with an anchor; step i joins
the step-(i-1) interactions that end a chain (nested ``EXISTS``, each correlated on the
customer and bounded by the next step's ``occurred_at``, as sequences are) to the
step-i interactions within D of them, grouped per customer. The time shift ``+ D`` is
:func:`vault.segments.sequences.after` (exact to the microsecond on both backends).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import REAL, ColumnElement, Integer, cast, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from vault.segments.rules import Gap, Step
from vault.segments.sequences import after
from vault.storage.models import CustomerRow, InteractionRow
from vault.types import Channel, CustomerStatus

__all__ = ["StepCount", "funnel_counts", "population"]

_I = InteractionRow
_C = CustomerRow
_GONE = (CustomerStatus.ERASED.value, CustomerStatus.MERGED.value)

StepCount = tuple[int, float | None]  # (customers reaching the step, median seconds or None)


def _filters(step: Step, row: Any, channel: Channel | None) -> list[ColumnElement[bool]]:  # noqa: ANN401 - an aliased InteractionRow
    parts: list[ColumnElement[bool]] = []
    if step.types:
        parts.append(row.type.in_([t.value for t in step.types]))
    if step.channels:
        parts.append(row.channel.in_([c.value for c in step.channels]))
    if channel is not None:
        parts.append(row.channel == channel.value)
    return parts


def _seconds(earlier: Any, later: Any, dialect: str) -> ColumnElement[Any]:  # noqa: ANN401 - time columns
    """``later - earlier`` in seconds (a number) on both backends."""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier)

    # SQLite stores ``YYYY-MM-DD HH:MM:SS.ffffff``: whole seconds by strftime('%s'), the
    # fraction as it is written.
    def whole(at: Any) -> ColumnElement[Any]:  # noqa: ANN401
        return cast(func.strftime("%s", func.substr(at, 1, 19)), Integer)

    def fraction(at: Any) -> ColumnElement[Any]:  # noqa: ANN401
        return cast(literal("0").concat(func.substr(at, 20)), REAL)

    return (whole(later) - whole(earlier)) + (fraction(later) - fraction(earlier))


class _Chain:
    """The SQL of one funnel: aliases of the interactions, one per step."""

    def __init__(
        self,
        steps: Sequence[Step],
        within: Gap,
        since: datetime,
        until: datetime,
        *,
        channel: Channel | None,
        dialect: str,
    ) -> None:
        self.steps = list(steps)
        self.within = within
        self.since = since
        self.until = until
        self.channel = channel
        self.dialect = dialect
        self.rows = [aliased(_I, name=f"fun{i}") for i in range(len(steps))]

    def ends(self, i: int, top: int) -> list[ColumnElement[bool]]:
        """The conditions under which ``rows[i]`` ends a chain reaching step i; the rows
        up to ``top`` (outer aliases) must differ from the chain's where they could match
        the same step."""
        row = self.rows[i]
        where = [
            *_filters(self.steps[i], row, self.channel),
            row.occurred_at >= self.since,  # implied for i > 0: bounds the index range
            row.occurred_at < self.until,
        ]
        if i > 0:
            prev = self.rows[i - 1]
            inner = [
                prev.customer_id == row.customer_id,
                prev.occurred_at <= row.occurred_at,
                row.occurred_at <= after(prev.occurred_at, self.within, self.dialect),
                *(
                    prev.id != self.rows[m].id
                    for m in range(i, top + 1)
                    if self.steps[i - 1].may_be(self.steps[m])
                ),
                *self.ends(i - 1, top),
            ]
            where.append(exists().where(*inner))
        return where


def _allowed(row: Any, allowed: ColumnElement[bool]) -> list[ColumnElement[bool]]:  # noqa: ANN401
    return [_C.id == row.customer_id, _C.status.not_in(_GONE), allowed]


def population(
    session: Session,
    since: datetime,
    until: datetime,
    allowed: ColumnElement[bool],
    *,
    step: Step | None = None,
    channel: Channel | None = None,
) -> int:
    """Distinct customers ``allowed`` keeps with an interaction in ``[since, until)``
    (matching ``step`` and ``channel`` when given)."""
    where = [_I.occurred_at >= since, _I.occurred_at < until, _C.id == _I.customer_id]
    where += [_C.status.not_in(_GONE), allowed]
    if step is not None or channel is not None:
        where += _filters(step or Step(), _I, channel)
    stmt = select(func.count(func.distinct(_I.customer_id))).select_from(_I, _C).where(*where)
    return int(session.scalar(stmt) or 0)


def funnel_counts(
    session: Session,
    steps: Sequence[Step],
    within: Gap,
    *,
    since: datetime,
    until: datetime,
    allowed: ColumnElement[bool],
    channel: Channel | None = None,
) -> list[StepCount]:
    """Per step: the customers ``allowed`` keeps who reach it, and (after the first) the
    median seconds from the previous step; raw, before any suppression."""
    dialect = session.get_bind().dialect.name
    chain = _Chain(steps, within, since, until, channel=channel, dialect=dialect)
    first = chain.rows[0]
    counted = (
        select(func.count(func.distinct(first.customer_id)))
        .select_from(first, _C)
        .where(*chain.ends(0, 0), *_allowed(first, allowed))
    )
    out: list[StepCount] = [(int(session.scalar(counted) or 0), None)]
    for i in range(1, len(steps)):
        prev, row = chain.rows[i - 1], chain.rows[i]
        where = [
            row.customer_id == prev.customer_id,
            row.occurred_at >= prev.occurred_at,
            row.occurred_at <= after(prev.occurred_at, within, dialect),
            row.occurred_at < until,
            *_filters(steps[i], row, channel),
            *chain.ends(i - 1, i),
            *_allowed(prev, allowed),
        ]
        if steps[i - 1].may_be(steps[i]):
            where.append(row.id != prev.id)
        gaps = (
            select(func.min(_seconds(prev.occurred_at, row.occurred_at, dialect)).label("gap"))
            .select_from(prev, row, _C)
            .where(*where)
            .group_by(prev.customer_id)
            .subquery("gaps")
        )
        if dialect == "postgresql":
            n, median = session.execute(
                select(func.count(), func.percentile_cont(0.5).within_group(gaps.c.gap))
            ).one()
            out.append((int(n), None if median is None else _number(median)))
        else:
            values = [_number(g) for g in session.scalars(select(gaps.c.gap))]
            out.append((len(values), statistics.median(values) if values else None))
    return out


def _number(value: float | Decimal | int) -> float:
    """Seconds rounded to the microsecond (the stored precision)."""
    return round(float(value), 6)
