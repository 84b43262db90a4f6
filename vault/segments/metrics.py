"""Per-customer metrics in SQL, kept in the ``customer_metrics`` rollup, and channel
analytics across customers. Nothing here reads a PII column.

Definitions (``now`` is passed in; interactions stamped after it never count;
amounts are integer minor units of the rollup's one ``currency``, amounts in
other currencies are left out):

* ``first_interaction_at`` / ``last_interaction_at``: earliest / latest interaction.
* ``days_since_last_interaction``, ``recency_days``: whole days (floored) from the
  last interaction / the last purchase to ``now``; none without one. (Rule
  conditions on them compare the exact elapsed time, see ``compile``.)
* ``purchase_count``: purchases ever. ``lifetime_value``: purchases minus refunds, ever.
* ``frequency``: purchases in the last 365 days (``occurred_at >= now - 365 days``);
  ``monetary``: purchases minus refunds in those 365 days.
* RFM scores 1-5 by quintile over every active customer in the rollup:
  ``score = 1 + floor(5 * below / n)`` where ``below`` counts customers with a
  strictly worse value (an earlier last purchase, never counts as the worst; a lower
  frequency; a lower monetary value) and ``n`` the customers. Equal values share a
  score, so the result does not depend on row order (``NTILE`` would split ties
  arbitrarily); the top score holds the best fifth or fewer.
* ``engagement_score``: weighted count of the last 90 days' interactions,
  :data:`ENGAGEMENT_WEIGHTS` (a purchase 5, a store visit or a click 3, a chat or a
  cart addition 2, a page view or an open 1, bounces and abandoned carts 0).

``refresh_all`` rebuilds the rollup in two statements (a delete and one
``INSERT ... SELECT`` that groups every interaction and ranks with window
functions). ``refresh_customers`` recomputes a few customers when their
interactions land: their raw values exactly, their scores against the current
quintile edges (the lowest value of each score), so the others' scores wait for
the next full refresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    select,
)
from sqlalchemy.orm import Session

from vault.storage.models import CustomerMetricsRow, CustomerRow, InteractionRow, UTCDateTime
from vault.storage.sql import id_in
from vault.types import Channel, CustomerStatus, InteractionType

__all__ = [
    "ENGAGEMENT_WEIGHTS",
    "ChannelStats",
    "CustomerMetrics",
    "MetricsRollup",
]

FREQUENCY_DAYS = 365
ENGAGEMENT_DAYS = 90
ENGAGEMENT_WEIGHTS: dict[InteractionType, int] = {
    InteractionType.PURCHASE: 5,
    InteractionType.STORE_VISIT: 3,
    InteractionType.EMAIL_CLICK: 3,
    InteractionType.SMS_CLICK: 3,
    InteractionType.SURVEY_RESPONSE: 3,
    InteractionType.SOCIAL_SHARE: 2,
    InteractionType.CHAT_MESSAGE: 2,
    InteractionType.CALL: 2,
    InteractionType.CART_ADD: 2,
    InteractionType.PAGE_VIEW: 1,
    InteractionType.EMAIL_OPEN: 1,
    InteractionType.PUSH_OPEN: 1,
    InteractionType.APP_OPEN: 1,
    InteractionType.SOCIAL_LIKE: 1,
}
_PURCHASE = InteractionType.PURCHASE.value
_REFUND = InteractionType.REFUND.value
_M = CustomerMetricsRow
_I = InteractionRow
_C = CustomerRow
# Score columns, the raw value each ranks, and whether a missing value is the worst.
_SCORES = (("r_score", "last_purchase_at"), ("f_score", "frequency"), ("m_score", "monetary_minor"))


@dataclass(frozen=True, slots=True)
class CustomerMetrics:
    customer_id: uuid.UUID
    computed_at: datetime
    currency: str
    first_interaction_at: datetime | None
    last_interaction_at: datetime | None
    last_purchase_at: datetime | None
    recency_days: int | None
    days_since_last_interaction: int | None
    frequency: int
    monetary_minor: int
    lifetime_value_minor: int
    purchase_count: int
    engagement_score: int
    r_score: int
    f_score: int
    m_score: int


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """One channel over a time range. ``conversion_rate`` = converting customers /
    customers seen; ``revenue_minor`` = purchases minus refunds, per currency."""

    channel: Channel
    interactions: int
    customers: int
    conversions: int
    converting_customers: int
    conversion_rate: float
    revenue_minor: dict[str, int]


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else (now - then) // timedelta(days=1)


class MetricsRollup:
    """The ``customer_metrics`` table: refresh it, read it."""

    def __init__(self, currency: str = "EUR") -> None:
        self.currency = currency

    def __repr__(self) -> str:
        return f"MetricsRollup(currency={self.currency!r})"

    # -- the raw values -------------------------------------------------------------

    def raw_select(
        self, now: datetime, customer_ids: Sequence[uuid.UUID] | None, dialect: str
    ) -> Select[Any]:
        """Every active customer's raw values at ``now`` (grouped in one pass)."""
        is_purchase = _I.type == _PURCHASE
        signed = case(
            (and_(is_purchase, _I.currency == self.currency), _I.amount_minor),
            (and_(_I.type == _REFUND, _I.currency == self.currency), -_I.amount_minor),
            else_=0,
        )
        recent = _I.occurred_at >= now - timedelta(days=FREQUENCY_DAYS)
        weight = case(
            *((_I.type == kind.value, w) for kind, w in ENGAGEMENT_WEIGHTS.items()), else_=0
        )
        engaged = _I.occurred_at >= now - timedelta(days=ENGAGEMENT_DAYS)
        zero = literal(0, Integer)
        stmt = (
            select(
                _C.id.label("customer_id"),
                func.min(_I.occurred_at).label("first_interaction_at"),
                func.max(_I.occurred_at).label("last_interaction_at"),
                func.max(case((is_purchase, _I.occurred_at))).label("last_purchase_at"),
                func.count(case((is_purchase, 1))).label("purchase_count"),
                func.coalesce(func.sum(signed), zero).label("lifetime_value_minor"),
                func.count(case((and_(is_purchase, recent), 1))).label("frequency"),
                func.coalesce(func.sum(case((recent, signed), else_=0)), zero).label(
                    "monetary_minor"
                ),
                func.coalesce(func.sum(case((engaged, weight), else_=0)), zero).label(
                    "engagement_score"
                ),
            )
            .select_from(
                _C.__table__.outerjoin(
                    _I.__table__, and_(_I.customer_id == _C.id, _I.occurred_at <= now)
                )
            )
            .where(_C.status == CustomerStatus.ACTIVE.value)
            .group_by(_C.id)
        )
        if customer_ids is not None:
            stmt = stmt.where(id_in(_C.id, customer_ids, dialect))
        return stmt

    def _columns(self, now: datetime) -> list[Any]:
        return [
            literal(now, UTCDateTime()).label("computed_at"),
            literal(self.currency, String(3)).label("currency"),
        ]

    # -- refresh --------------------------------------------------------------------

    def refresh_all(self, session: Session, now: datetime) -> int:
        """Rebuild the rollup for every active customer; returns the rows written."""
        dialect = session.get_bind().dialect.name
        raw = self.raw_select(now, None, dialect).subquery("raw")
        n = func.count().over()
        scores = []
        for score, source in _SCORES:
            order = raw.c[source].asc().nulls_first()
            scores.append((1 + (5 * (func.rank().over(order_by=order) - 1)) // n).label(score))
        names = [c.name for c in raw.c]
        body = select(*raw.c, *self._columns(now), *scores)
        session.execute(delete(_M))
        session.execute(
            insert(_M).from_select(
                [*names, "computed_at", "currency", *(s for s, _ in _SCORES)], body
            )
        )
        return int(session.scalar(select(func.count()).select_from(_M)) or 0)

    def _edges(self, session: Session) -> dict[str, list[tuple[int, Any]]]:
        """For each score, (score, lowest value holding it), best score first."""
        edges: dict[str, list[tuple[int, Any]]] = {}
        for score, source in _SCORES:
            rows = session.execute(
                select(_M.__table__.c[score], func.min(_M.__table__.c[source]))
                .group_by(_M.__table__.c[score])
                .order_by(_M.__table__.c[score].desc())
            ).all()
            edges[score] = [(int(s), low) for s, low in rows if low is not None]
        return edges

    def refresh_customers(
        self, session: Session, now: datetime, customer_ids: Sequence[uuid.UUID]
    ) -> int:
        """Recompute the rows of these customers (gone when they are no longer active)."""
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return 0
        dialect = session.get_bind().dialect.name
        edges = self._edges(session)
        session.execute(delete(_M).where(id_in(_M.customer_id, ids, dialect)))
        raw = self.raw_select(now, ids, dialect).subquery("raw")
        scores = [
            _score_case(raw.c[source], edges[score]).label(score) for score, source in _SCORES
        ]
        body = select(*raw.c, *self._columns(now), *scores)
        names = [c.name for c in raw.c]
        session.execute(
            insert(_M).from_select(
                [*names, "computed_at", "currency", *(s for s, _ in _SCORES)], body
            )
        )
        written = select(func.count()).where(id_in(_M.customer_id, ids, dialect))
        return int(session.scalar(written) or 0)

    def forget(self, session: Session, customer_ids: Sequence[uuid.UUID]) -> None:
        """Drop these customers' rows (erasure)."""
        dialect = session.get_bind().dialect.name
        session.execute(delete(_M).where(id_in(_M.customer_id, list(customer_ids), dialect)))

    # -- reading --------------------------------------------------------------------

    def get(
        self, session: Session, customer_id: uuid.UUID, now: datetime
    ) -> CustomerMetrics | None:
        row = session.get(CustomerMetricsRow, customer_id)
        if row is None:
            return None
        return CustomerMetrics(
            customer_id=row.customer_id,
            computed_at=row.computed_at,
            currency=row.currency,
            first_interaction_at=row.first_interaction_at,
            last_interaction_at=row.last_interaction_at,
            last_purchase_at=row.last_purchase_at,
            recency_days=_days(now, row.last_purchase_at),
            days_since_last_interaction=_days(now, row.last_interaction_at),
            frequency=row.frequency,
            monetary_minor=row.monetary_minor,
            lifetime_value_minor=row.lifetime_value_minor,
            purchase_count=row.purchase_count,
            engagement_score=row.engagement_score,
            r_score=row.r_score,
            f_score=row.f_score,
            m_score=row.m_score,
        )

    @staticmethod
    def channel_analytics(
        session: Session, since: datetime, until: datetime, allowed: ColumnElement[bool]
    ) -> list[ChannelStats]:
        """Per channel, interactions in ``since <= occurred_at < until`` of the customers
        ``allowed`` (a condition on ``customers``) keeps: counts and revenue, no ids."""
        # An erased customer's interactions wait for their purge: never counted again.
        window = and_(
            _I.occurred_at >= since,
            _I.occurred_at < until,
            _C.status.not_in((CustomerStatus.ERASED.value, CustomerStatus.MERGED.value)),
        )
        joined = _I.__table__.join(_C.__table__, _C.id == _I.customer_id)
        is_purchase = _I.type == _PURCHASE
        counts = session.execute(
            select(
                _I.channel,
                func.count(),
                func.count(func.distinct(_I.customer_id)),
                func.count(case((is_purchase, 1))),
                func.count(func.distinct(case((is_purchase, _I.customer_id)))),
            )
            .select_from(joined)
            .where(window, allowed)
            .group_by(_I.channel)
            .order_by(_I.channel)
        ).all()
        signed = case((_I.type == _REFUND, -_I.amount_minor), else_=_I.amount_minor)
        revenue: dict[str, dict[str, int]] = {}
        for channel, currency, total in session.execute(
            select(_I.channel, _I.currency, func.sum(signed))
            .select_from(joined)
            .where(window, allowed, _I.type.in_([_PURCHASE, _REFUND]), _I.currency.is_not(None))
            .group_by(_I.channel, _I.currency)
        ):
            revenue.setdefault(channel, {})[currency] = int(total)
        return [
            ChannelStats(
                channel=Channel(channel),
                interactions=int(n),
                customers=int(people),
                conversions=int(bought),
                converting_customers=int(buyers),
                conversion_rate=(buyers / people) if people else 0.0,
                revenue_minor=revenue.get(channel, {}),
            )
            for channel, n, people, bought, buyers in counts
        ]


def _score_case(value: Any, edges: list[tuple[int, Any]]) -> Any:  # noqa: ANN401
    """The score of ``value`` against the quintile edges of the current rollup."""
    if not edges:
        return literal(1, Integer)
    whens = [
        (and_(value.is_not(None), value >= low), literal(score, Integer)) for score, low in edges
    ]
    return case(*whens, else_=literal(1, Integer))
