"""Sequence conditions in SQL, and the time windows they share with behaviour conditions.

A sequence ``{"steps": [A, B, C], "within": D, "window": W}`` holds for a customer who
has interactions a, b and c (three different rows) where a matches step A and lies
inside W, b matches B and ``a.occurred_at <= b.occurred_at <= a.occurred_at + D``, c
matches C and follows b the same way, and none is later than ``now``. A step matches an
interaction of one of its ``types`` on one of its ``channels`` (an empty list: any).

A last step marked ``absent`` turns "then C" into "then no C within D": there are a and
b as above, the whole D after b has passed (``b.occurred_at + D <= now``), and no
interaction matching C, other than a and b, has ``b.occurred_at <= occurred_at <=
b.occurred_at + D``. So "an abandoned cart with no purchase within 2 days after it"
holds from the moment two days have passed without a purchase, not before (a cart
abandoned an hour ago has had no chance to be bought yet), and a purchase that came
later than those two days does not undo it.

The edges, the same for every step:

* exactly D after the previous step is within D; one microsecond more is not;
* the same instant as the previous step counts as after it (time cannot order them);
* an interaction before the previous step never follows it;
* the window (``within_days``, ``between_days``, ``since``, ``ever``; see
  :func:`window_clause`) selects the *first* step; the later steps are bound by D and
  ``now`` only, so a sequence that starts inside ``between_days [7, 30]`` may end less
  than 7 days ago.

One statement on both backends: the first step's interactions are the anchors, and each
later step is an ``EXISTS`` (``NOT EXISTS`` when absent) nested in the previous step's,
correlated on the customer and bounded in time by the previous step's ``occurred_at``,
so that each one is a range probe of ``ix_interactions_customer_timeline``
(``customer_id, occurred_at``). Each later step also states, as constants, the range it
inherits from the window (from its start to its end plus i x D, and ``now``): implied,
so no answer changes, but when PostgreSQL hashes a step's interactions rather than
probing per anchor it reads only that range of ``ix_interactions_segment_scan``
(docs/benchmarks.md). Rows must differ only between steps that one interaction
could match both of (overlapping types and channels); otherwise the condition is left
out, which spares the anchors a heap read for their id on PostgreSQL. ``D`` is added in
SQL: an interval on PostgreSQL; on SQLite, which stores these times as
``YYYY-MM-DD HH:MM:SS.ffffff`` text and whose date functions keep milliseconds at most,
the whole seconds are shifted with ``datetime()`` and the fraction is kept as it was, so
both backends compare to the microsecond.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, and_, bindparam, exists, func
from sqlalchemy.orm import aliased

from vault.segments.rules import BetweenDays, EventSequence, Gap, Since, Step, Window, WithinDays
from vault.storage.models import InteractionRow

__all__ = ["after", "sequence_rows", "window_clause"]

_I = InteractionRow


def window_clause(window: Window, now: datetime, at: Any = _I.occurred_at) -> ColumnElement[bool]:  # noqa: ANN401 - a time column
    """The interactions whose ``at`` lies inside ``window``: ``within_days N`` is ``now -
    N days <= at <= now``; ``between_days [N, M]`` is ``now - M days <= at < now - N
    days``; ``since T`` is ``T <= at <= now``; ``ever`` is ``at <= now``."""
    if isinstance(window, WithinDays):
        return and_(at >= now - timedelta(days=window.days), at <= now)
    if isinstance(window, BetweenDays):
        far, near = timedelta(days=window.far), timedelta(days=window.near)
        return and_(at >= now - far, at < now - near)
    if isinstance(window, Since):
        return and_(at >= window.at, at <= now)
    return at <= now  # type: ignore[no-any-return]


def after(at: Any, gap: Gap, dialect: str) -> ColumnElement[Any]:  # noqa: ANN401 - a time column
    """``at + gap``, exact to the microsecond on both backends (see the module docstring)."""
    if dialect == "postgresql":
        return at + bindparam(None, gap.delta, type_=Interval())  # type: ignore[no-any-return]
    whole = func.datetime(func.substr(at, 1, 19), f"+{gap.seconds} seconds")
    return whole.concat(func.substr(at, 20))


def _filters(step: Step, row: Any, *, probe: bool) -> list[ColumnElement[bool]]:  # noqa: ANN401 - an aliased InteractionRow
    parts = []
    if step.types:
        # In the batch shape the first step is probed by the outer customer's id: its
        # type as an expression keeps both planners off the (type, occurred_at) index.
        kind = row.type.concat("") if probe else row.type
        parts.append(kind.in_([t.value for t in step.types]))
    if step.channels:
        parts.append(row.channel.in_([c.value for c in step.channels]))
    return parts


def _edges(window: Window, now: datetime) -> tuple[datetime | None, datetime]:
    """(the earliest time inside ``window``, or None; a time no later than its end)."""
    if isinstance(window, WithinDays):
        return now - timedelta(days=window.days), now
    if isinstance(window, BetweenDays):
        return now - timedelta(days=window.far), now - timedelta(days=window.near)
    if isinstance(window, Since):
        return window.at, now
    return None, now


def sequence_rows(
    rule: EventSequence, now: datetime, dialect: str, *, probe: bool = False
) -> tuple[Any, list[ColumnElement[bool]]]:
    """The anchors of ``rule``: (an alias of the interactions, the conditions under which
    one of its rows starts a sequence that holds). The caller correlates the alias's
    ``customer_id`` with the customer: ``IN``, ``EXISTS`` or a probe."""
    steps = rule.steps
    rows = [aliased(_I, name=f"seq{i}") for i in range(len(steps))]
    absent = steps[-1].absent
    last_present = len(steps) - (2 if absent else 1)
    # The last present step must be old enough for its whole D to have passed when the
    # absent step follows it; every present step is at or before now.
    bounds = [
        now - rule.within.delta if absent and i == last_present else now for i in range(len(steps))
    ]
    # Implied, not required: step i lies between the window's start and its end + i x D
    # (and now). Stated as constants they let the planner read only that range of a
    # step's interactions (an index range of ix_interactions_segment_scan) when it joins
    # them whole rather than probing per anchor.
    start, end = _edges(rule.window, now)
    nested: ColumnElement[bool] | None = None
    for i in range(len(steps) - 1, 0, -1):
        row, prev = rows[i], rows[i - 1]
        where = [
            row.customer_id == prev.customer_id,
            row.occurred_at >= prev.occurred_at,
            row.occurred_at <= after(prev.occurred_at, rule.within, dialect),
            row.occurred_at <= min(bounds[i], end + i * rule.within.delta),
            *_filters(steps[i], row, probe=False),
        ]
        if start is not None:
            where.append(row.occurred_at >= start)
        where += [row.id != rows[k].id for k in range(i) if steps[k].may_be(steps[i])]
        if nested is not None:
            where.append(nested)
        found = exists().where(*where)
        nested = ~found if steps[i].absent else found
    first = rows[0]
    where = [
        window_clause(rule.window, now, first.occurred_at),
        *_filters(steps[0], first, probe=probe),
    ]
    if last_present == 0 and absent:
        where.append(first.occurred_at <= bounds[0])
    if nested is not None:
        where.append(nested)
    return first, where
