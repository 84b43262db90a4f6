"""Aggregates across customers without exposing individuals: channel analytics and
funnels under a minimum group size k (``CVAULT_ANALYTICS_MIN_GROUP``, default 10).

The rules (docs/segments.md, "Funnels and k-anonymity"):

* Refusal: when the population of a query (customers with any interaction in
  ``[since, until)`` for channel analytics; customers reaching step 1 for a funnel) is
  at least 1 and under k, the query is refused (:class:`GroupTooSmall`); nothing about
  the population's size beyond "under k" is said. An empty population is answered
  (all zeros): it isolates nobody.
* Cells: a cell whose distinct-customer count is 1 to k-1 is returned as ``None`` with
  ``suppressed``; a channel row under k hides all its figures; a row shown whose
  converting customers are 1 to k-1 hides its conversion figures and revenue; a funnel
  step under k hides its count, its rates and its median. A zero is shown.
* Complements: the customers of a breakdown's cells add up to (at most) its population,
  which another query may show (a funnel whose one step is any interaction), so when
  exactly one channel row is suppressed the next smallest row is suppressed too.
  Funnel steps are nested, not a partition: the step counts are the cells.

Only counts, rates and medians leave this module; no customer id is read out of SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from audit.entries import AuditAction
from policies.purposes import Resource
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import buffer_of
from vault.errors import InvalidInput
from vault.privacy.processing import ProcessingGate
from vault.segments.funnels import funnel_counts, population
from vault.segments.metrics import ChannelStats, MetricsRollup
from vault.segments.parse import MAX_STEPS
from vault.segments.rules import Gap, Step
from vault.types import Channel

__all__ = ["Analytics", "ChannelReport", "FunnelReport", "FunnelStepReport", "GroupTooSmall"]

DEFAULT_MIN_GROUP = 10
_RESOURCE = Resource.SEGMENTS.value


class GroupTooSmall(InvalidInput):
    """The query's population is under k: answering would isolate individuals."""

    def __init__(self, k: int) -> None:
        super().__init__(
            "since/until",
            f"the query covers fewer than {k} customers (the analytics minimum group); "
            "widen the window or loosen the filters",
        )
        self.k = k


@dataclass(frozen=True, slots=True)
class ChannelReport:
    """One channel's figures, ``None`` where suppressed (see the module docstring)."""

    channel: Channel
    suppressed: bool
    interactions: int | None
    customers: int | None
    conversions_suppressed: bool
    conversions: int | None
    converting_customers: int | None
    conversion_rate: float | None
    revenue_minor: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class FunnelStepReport:
    """Step ``index`` (from 1): customers reaching it, the share of the previous step's
    and of step 1's, the median seconds from the previous step; ``None`` when suppressed."""

    index: int
    suppressed: bool
    customers: int | None
    conversion_from_previous: float | None
    conversion_from_start: float | None
    median_seconds_from_previous: float | None


@dataclass(frozen=True, slots=True)
class FunnelReport:
    population: int  # customers reaching step 1: 0 or at least k
    steps: list[FunnelStepReport]


def _hidden(count: int, k: int) -> bool:
    return 0 < count < k


def suppress_channels(stats: Sequence[ChannelStats], k: int) -> list[ChannelReport]:
    """The rows with every cell under k hidden, and the complement rule applied."""
    hidden = {s.channel for s in stats if _hidden(s.customers, k)}
    if len(hidden) == 1:
        shown = sorted((s for s in stats if s.channel not in hidden), key=lambda s: s.customers)
        if shown:
            hidden.add(shown[0].channel)
    out = []
    for s in stats:
        if s.channel in hidden:
            out.append(ChannelReport(s.channel, True, None, None, True, None, None, None, None))
            continue
        bought = _hidden(s.converting_customers, k)
        out.append(
            ChannelReport(
                channel=s.channel,
                suppressed=False,
                interactions=s.interactions,
                customers=s.customers,
                conversions_suppressed=bought,
                conversions=None if bought else s.conversions,
                converting_customers=None if bought else s.converting_customers,
                conversion_rate=None if bought else s.conversion_rate,
                revenue_minor=None if bought else s.revenue_minor,
            )
        )
    return out


def suppress_funnel(counts: Sequence[tuple[int, float | None]], k: int) -> FunnelReport:
    """The step reports with every step under k hidden, with the rates and medians that
    derive from it."""
    start = counts[0][0]
    steps = []
    for i, (n, median) in enumerate(counts):
        prev = counts[i - 1][0] if i else n
        hide = _hidden(n, k) or _hidden(prev, k)
        steps.append(
            FunnelStepReport(
                index=i + 1,
                suppressed=_hidden(n, k),
                customers=None if _hidden(n, k) else n,
                conversion_from_previous=None if hide else (n / prev if prev else 0.0),
                conversion_from_start=None if hide else (n / start if start else 0.0),
                median_seconds_from_previous=None if hide else median,
            )
        )
    return FunnelReport(population=start, steps=steps)


class Analytics:
    """Channel analytics and funnels, behind the ``segments`` read grant (the same as
    channel analytics always had) and the consent gate; audited as ``insights.read``
    with counts only."""

    def __init__(
        self,
        authz: Authorizer,
        gate: ProcessingGate,
        rollup: MetricsRollup,
        clock: Callable[[], datetime],
        min_group: int = DEFAULT_MIN_GROUP,
    ) -> None:
        if min_group < 1:
            raise ValueError("min_group must be at least 1")
        self._authz = authz
        self._gate = gate
        self._rollup = rollup
        self._clock = clock
        self.min_group = min_group

    def __repr__(self) -> str:
        return f"Analytics(min_group={self.min_group})"

    def _may_read(self, session: Session, since: datetime, until: datetime) -> None:
        self._authz.check_listing(session)
        self._authz.check_reads(session, _RESOURCE)
        if since.tzinfo is None or until.tzinfo is None or since >= until:
            raise InvalidInput("since", "must be an aware time before until")

    def channel_analytics(
        self, session: Session, since: datetime, until: datetime
    ) -> list[ChannelReport]:
        """Counts and revenue per channel over customers the purpose may process."""
        self._may_read(session, since, until)
        allowed = self._gate.clause(session)
        if _hidden(population(session, since, until, allowed), self.min_group):
            raise GroupTooSmall(self.min_group)
        stats = self._rollup.channel_analytics(session, since, until, allowed)
        rows = suppress_channels(stats, self.min_group)
        detail = {"channels": len(rows), "suppressed": sum(r.suppressed for r in rows)}
        buffer_of(session).add(AuditAction.INSIGHTS_READ, customer_id=None, detail=detail)
        return rows

    def funnel(
        self,
        session: Session,
        steps: Sequence[Step],
        window: Gap,
        *,
        since: datetime,
        until: datetime,
        channel: Channel | None = None,
    ) -> FunnelReport:
        """Customers reaching each step, conversion rates and median gaps (module doc)."""
        self._may_read(session, since, until)
        if not 1 <= len(steps) <= MAX_STEPS:
            raise InvalidInput("steps", f"must be a list of 1-{MAX_STEPS} steps")
        if any(s.absent for s in steps):
            raise InvalidInput("steps", "a funnel step cannot be absent")
        if window.amount < 1:
            raise InvalidInput("window", "must be a positive time")
        allowed = self._gate.clause(session)
        first = population(session, since, until, allowed, step=steps[0], channel=channel)
        if _hidden(first, self.min_group):
            raise GroupTooSmall(self.min_group)
        counts = funnel_counts(
            session, steps, window, since=since, until=until, allowed=allowed, channel=channel
        )
        report = suppress_funnel(counts, self.min_group)
        detail = {"funnel_steps": len(steps), "suppressed": sum(s.suppressed for s in report.steps)}
        buffer_of(session).add(AuditAction.INSIGHTS_READ, customer_id=None, detail=detail)
        return report
