"""The detector: reads the ordered audit log from its high-water mark, counts per
principal and hour in SQL, and raises each alert once per (kind, principal, hour).

It reads the log in its order (``audit_log.position``), not by entry id: the sequencer
gives positions only to committed entries, in the order it finds them, so an entry that
commits late still comes after the mark and is never skipped (ids from the database
sequence become visible out of order). A scan orders pending entries first. Only the
(principal, hour) pairs that new entries touch are counted again, over the whole hour.

An alert is a row in ``access_alerts`` (unique per kind, principal and hour: repeated
scans raise it once), a ``security.alert`` audit entry written in the same transaction
(actor ``system:alerts``; detail: kind, principal, hour, count, threshold, baseline, the
alert's id; never a customer id) and one count of ``cvault_access_alerts_total{kind}``
once committed. ``delivery`` then sends it to the security endpoint.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Integer, func, literal_column, select, true
from sqlalchemy.orm import Session

from audit.entries import AuditAction, Outcome
from vault import telemetry
from vault.alerts.delivery import AlertDelivery, DeliveryReport
from vault.alerts.rules import (
    EXPORT_ACTIONS,
    READ_ACTIONS,
    REFUSAL_ACTIONS,
    SYSTEM_PREFIX,
    AlertKind,
    Thresholds,
    baseline_of,
)
from vault.audit_trail.log import AuditBuffer, AuditLog
from vault.authorization.context import AccessContext
from vault.logs import get_logger
from vault.storage.db import Database
from vault.storage.models import AccessAlertRow, AlertScanRow, AuditEntryRow, AuditLogRow

__all__ = ["AccessAlerts", "Alert", "ScanReport"]

log = get_logger("vault.alerts")
_SCAN = "access"  # the high-water mark's row
_HOUR = 3600
_BASELINE_DAYS = 7
_WATCHED = READ_ACTIONS | REFUSAL_ACTIONS | EXPORT_ACTIONS
_CONTEXT = AccessContext.system("alerts", purpose="compliance")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: no customer id, no PII (a principal is a token subject or system actor)."""

    id: uuid.UUID
    kind: AlertKind
    principal: str
    hour: datetime
    count: int
    threshold: int
    baseline: int
    raised_at: datetime
    delivered_at: datetime | None = None
    attempts: int = 0

    def facts(self) -> dict[str, str | int]:
        """What the audit entry and the webhook payload say."""
        return {
            "alert": str(self.id),
            "kind": self.kind.value,
            "principal": self.principal,
            "hour": self.hour.isoformat(),
            "count": self.count,
            "threshold": self.threshold,
            "baseline": self.baseline,
        }


@dataclass(frozen=True, slots=True)
class ScanReport:
    scanned: int  # log positions read
    raised: list[Alert] = field(default_factory=list)
    delivery: DeliveryReport | None = None


def _hour_expr(dialect: str) -> ColumnElement[int]:
    """The UTC hour of an entry as whole hours since the epoch."""
    if dialect == "postgresql":
        sql = "CAST(floor(extract(epoch FROM audit_entries.recorded_at) / 3600) AS BIGINT)"
    else:
        sql = "(CAST(strftime('%s', audit_entries.recorded_at) AS INTEGER) / 3600)"
    return literal_column(sql, Integer)


def _at(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * _HOUR, UTC)


class AccessAlerts:
    """Scans the audit trail for access anomalies and raises alerts."""

    def __init__(
        self,
        thresholds: Thresholds,
        audit: AuditLog,
        delivery: AlertDelivery,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.thresholds = thresholds
        self._audit = audit
        self.delivery = delivery
        self._clock = clock

    def __repr__(self) -> str:
        return f"AccessAlerts({self.thresholds!r})"

    def run(self, db: Database) -> ScanReport:
        """One scan, then every due delivery (the ``anomaly_scan`` job)."""
        report = self.scan(db)
        return ScanReport(report.scanned, report.raised, self.delivery.deliver(db))

    def scan(self, db: Database) -> ScanReport:
        """Read the log past the high-water mark; raise what it shows, once each."""
        self._audit.sequence(db)
        now = self._clock()
        with db.transaction() as session:
            state = session.get(AlertScanRow, _SCAN)
            if state is None:
                state = AlertScanRow(name=_SCAN, last_position=-1, scanned_at=now)
                session.add(state)
            mark = state.last_position
            top = session.scalar(select(func.max(AuditLogRow.position)))
            state.scanned_at = now
            if top is None or top <= mark:
                return ScanReport(scanned=0)
            hour = _hour_expr(db.dialect)
            in_range = (AuditLogRow.position > mark, AuditLogRow.position <= top)
            # The entries' id range too: with no index on action, it keeps the scan to the
            # new part of the log (the plan in docs/audit-verification.md "Indexes").
            # (``+ 0``: read through the position range, not the whole entry_pk index.)
            pk = AuditLogRow.entry_pk + 0
            low, high = session.execute(select(func.min(pk), func.max(pk)).where(*in_range)).one()
            touched = session.execute(
                select(AuditEntryRow.actor, hour, AuditEntryRow.action)
                .join(AuditLogRow, AuditLogRow.entry_pk == AuditEntryRow.id)
                .where(*in_range, AuditEntryRow.id.between(low, high))
                .where(AuditEntryRow.action.in_(_WATCHED))
                .group_by(AuditEntryRow.actor, hour, AuditEntryRow.action)
            ).all()
            pairs: dict[AlertKind, set[tuple[str, int]]] = defaultdict(set)
            for actor, at, action in touched:
                staff = not actor.startswith(SYSTEM_PREFIX)
                if action in READ_ACTIONS and staff:
                    pairs[AlertKind.DISTINCT_CUSTOMERS].add((actor, int(at)))
                if action in REFUSAL_ACTIONS and staff:
                    pairs[AlertKind.REFUSALS].add((actor, int(at)))
                if action in EXPORT_ACTIONS:
                    pairs[AlertKind.EXPORT_OFF_HOURS].add((actor, int(at)))
            found = [
                *self._distinct(session, hour, pairs[AlertKind.DISTINCT_CUSTOMERS]),
                *self._refusals(session, hour, pairs[AlertKind.REFUSALS]),
                *self._exports(session, pairs[AlertKind.EXPORT_OFF_HOURS]),
            ]
            raised = self._raise(session, found, now)
            state.last_position = int(top)
        for alert in raised:
            telemetry.alert_raised(alert.kind.value)
            log.warning("access alert raised", alert=str(alert.id), kind=alert.kind.value,
                        hour=alert.hour.isoformat(), count=alert.count,
                        threshold=alert.threshold)  # fmt: skip
        return ScanReport(scanned=int(top) - mark, raised=raised)

    # -- the three kinds --------------------------------------------------------------

    @staticmethod
    def _window(pairs: Collection[tuple[str, int]]) -> tuple[list[str], datetime, datetime]:
        hours = [h for _, h in pairs]
        return sorted({a for a, _ in pairs}), _at(min(hours)), _at(max(hours) + 1)

    def _distinct(
        self, session: Session, hour: ColumnElement[int], pairs: set[tuple[str, int]]
    ) -> Iterable[tuple[AlertKind, str, int, int, int, int]]:
        if not pairs:
            return
        actors, since, until = self._window(pairs)
        e = AuditEntryRow
        customers = func.count(e.customer_id.distinct())
        rows = session.execute(
            select(e.actor, hour, customers)
            .where(e.actor.in_(actors), e.recorded_at >= since, e.recorded_at < until)
            .where(e.action.in_(READ_ACTIONS), e.customer_id.is_not(None))
            .group_by(e.actor, hour)
            .having(customers > self.thresholds.distinct_floor)
        ).all()
        for actor, at, count in rows:
            if (actor, int(at)) not in pairs:
                continue
            baseline = self._baseline(session, hour, actor, int(at))
            limit = self.thresholds.distinct_limit(baseline)
            if count > limit:
                yield AlertKind.DISTINCT_CUSTOMERS, actor, int(at), int(count), limit, baseline

    def _baseline(self, session: Session, hour: ColumnElement[int], actor: str, at: int) -> int:
        """The principal's median distinct customers per active hour, 7 days before ``at``."""
        e = AuditEntryRow
        start = _at(at)
        counts = session.scalars(
            select(func.count(e.customer_id.distinct()))
            .where(e.actor == actor, e.action.in_(READ_ACTIONS), e.customer_id.is_not(None))
            .where(e.recorded_at >= start - timedelta(days=_BASELINE_DAYS), e.recorded_at < start)
            .group_by(hour)
        ).all()
        return baseline_of(int(c) for c in counts)

    def _refusals(
        self, session: Session, hour: ColumnElement[int], pairs: set[tuple[str, int]]
    ) -> Iterable[tuple[AlertKind, str, int, int, int, int]]:
        if not pairs:
            return
        actors, since, until = self._window(pairs)
        e = AuditEntryRow
        limit = self.thresholds.refusals
        rows = session.execute(
            select(e.actor, hour, func.count())
            .where(e.actor.in_(actors), e.recorded_at >= since, e.recorded_at < until)
            .where(e.action.in_(REFUSAL_ACTIONS))
            .group_by(e.actor, hour)
            .having(func.count() > limit)
        ).all()
        for actor, at, count in rows:
            if (actor, int(at)) in pairs:
                yield AlertKind.REFUSALS, actor, int(at), int(count), limit, 0

    def _exports(
        self, session: Session, pairs: set[tuple[str, int]]
    ) -> Iterable[tuple[AlertKind, str, int, int, int, int]]:
        if not pairs or self.thresholds.export_hours is None:
            return
        actors, since, until = self._window(pairs)
        e = AuditEntryRow
        off: dict[tuple[str, int], int] = defaultdict(int)
        for actor, moment in session.execute(
            select(e.actor, e.recorded_at)
            .where(e.actor.in_(actors), e.recorded_at >= since, e.recorded_at < until)
            .where(e.action.in_(EXPORT_ACTIONS))
        ):
            key = (actor, int(moment.timestamp()) // _HOUR)
            if key in pairs and self.thresholds.off_hours(moment):
                off[key] += 1
        for (actor, at), count in sorted(off.items()):
            yield AlertKind.EXPORT_OFF_HOURS, actor, at, count, 0, 0

    # -- raising ----------------------------------------------------------------------

    def _raise(
        self,
        session: Session,
        found: list[tuple[AlertKind, str, int, int, int, int]],
        now: datetime,
    ) -> list[Alert]:
        if not found:
            return []
        hours = [_at(at) for _, _, at, *_ in found]
        known = {
            (kind, principal, moment.astimezone(UTC))
            for kind, principal, moment in session.execute(
                select(AccessAlertRow.kind, AccessAlertRow.principal, AccessAlertRow.hour).where(
                    AccessAlertRow.hour >= min(hours), AccessAlertRow.hour <= max(hours), true()
                )
            )
        }
        buffer = AuditBuffer(_CONTEXT, self._clock)
        raised: list[Alert] = []
        for kind, principal, at, count, threshold, baseline in found:
            if (kind.value, principal, _at(at)) in known:
                continue
            alert = Alert(uuid.uuid4(), kind, principal, _at(at), count, threshold, baseline, now)
            session.add(
                AccessAlertRow(
                    id=alert.id, kind=kind.value, principal=principal, hour=alert.hour,
                    count=count, threshold=threshold, baseline=baseline, raised_at=now,
                    delivered_at=None, attempts=0, next_attempt_at=now, last_error=None,
                )
            )  # fmt: skip
            raised.append(alert)
        entries = [
            buffer.entry(AuditAction.SECURITY_ALERT, None, None, Outcome.SUCCESS, a.facts())
            for a in raised
        ]
        session.flush()
        self._audit.write(session, entries)
        return raised

    def recent(self, db: Database, *, limit: int = 50) -> list[Alert]:
        """The newest alerts first, with their delivery state."""
        with db.transaction() as session:
            rows = session.scalars(
                select(AccessAlertRow)
                .order_by(AccessAlertRow.raised_at.desc(), AccessAlertRow.hour.desc())
                .limit(limit)
            ).all()
            return [
                Alert(
                    r.id,
                    AlertKind(r.kind),
                    r.principal,
                    r.hour,
                    r.count,
                    r.threshold,
                    r.baseline,
                    r.raised_at,
                    r.delivered_at,
                    r.attempts,
                )
                for r in rows
            ]
