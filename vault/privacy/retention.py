"""Retention: delete what has outlived its period, audit it, or (dry run) count it.

One run, in this order (each step in batches, each batch its own transaction, so a
large backlog never holds a long lock and an interrupted run simply resumes):

1. interactions of each type older than the type's period are deleted, found by
   ``(type, occurred_at < cutoff)`` on the (type, occurred_at) prefix of
   ``ix_interactions_segment_scan``;
2. payloads (free text) older than the ``interaction_payload`` period are dropped
   (``payload_ct = NULL``) on the interactions that remain; the rows stay;
3. closed data subject requests (completed or rejected) whose closing is older than
   the ``dsr_requests`` period are deleted with their history (``dsr_events``);
4. tombstones of erased customers older than the ``tombstones`` period (0, the
   default, keeps them forever) are deleted with what still points at them, except
   where append-only records refer to them (consent events are proof of consent and
   the database refuses to delete them; customers merged into them): those are kept
   and counted as ``kept``. Segment stays, metrics and webhook deliveries of the
   customer go with the tombstone; the segment outbox (an event log of ids, with no
   index by customer) is left as it is;
5. sign-in leftovers: one-time codes and page sessions a day past their expiry (or a day
   after a session was signed out) are deleted, whatever the policy: they prove nothing
   once dead (the audit trail holds every sign-in step), and a session ended by its
   customer's erasure has said so by then;
6. inactive customers (no interaction for the ``inactive_customers`` period) are erased
   through the erasure path, reason ``retention`` (the report lists their ids);
7. consent events past the ``consent_events`` period (superseded, the latest always
   kept) are deleted: both in :mod:`vault.privacy.retention_stale`.

A customer under an active legal hold keeps everything: its expired records are
counted as ``held``. A dry run counts exactly what a run would do and changes
nothing. Either way one audit entry (``retention.run``) carries the counts: ints
and flags only, keys like ``deleted.page_view``; a run that fails part-way is
audited as failed with what it had done so far.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from sqlalchemy import (
    ColumnElement,
    Executable,
    Select,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import InstrumentedAttribute, aliased

from audit.entries import AuditAction, Outcome
from vault.audit_trail.log import AuditLog
from vault.authorization.context import AccessContext
from vault.config import Settings
from vault.logs import get_logger
from vault.privacy.erasure import ErasureService
from vault.privacy.retention_policy import (
    BUILT_IN,
    KEEP_FOREVER,
    MAX_DAYS,
    RetentionCategory,
    RetentionConfigError,
    RetentionPolicy,
    load_policy,
    parse_policy,
    policy_path,
)
from vault.privacy.retention_stale import (
    Units,
    delete_tombstone,
    expired_consent_events,
    inactive_customers,
)
from vault.storage.db import Database
from vault.storage.models import (
    Base,
    ConsentEventRow,
    CustomerRow,
    DsrEventRow,
    DsrRequestRow,
    InteractionRow,
    LegalHoldRow,
    PageSessionRow,
    SignInCodeRow,
)
from vault.storage.sql import id_in
from vault.types import CustomerStatus, DsrStatus, InteractionType

__all__ = [
    "BUILT_IN",
    "KEEP_FOREVER",
    "MAX_DAYS",
    "RetentionCategory",
    "RetentionConfigError",
    "RetentionOutcome",
    "RetentionPolicy",
    "RetentionReport",
    "RetentionService",
    "load_policy",
    "parse_policy",
    "policy_path",
]

log = get_logger("vault.privacy.retention")

DSR_EVENTS = "dsr_events"  # counted beside dsr_requests: the history deleted with them
SIGN_IN_CODES, PAGE_SESSIONS = "sign_in_codes", "page_sessions"
SIGN_IN_GRACE: Final = timedelta(days=1)  # how long a dead code or session is kept
_CLOSED = (DsrStatus.COMPLETED.value, DsrStatus.REJECTED.value)
_I, _R, _E, _C = InteractionRow, DsrRequestRow, DsrEventRow, CustomerRow


class RetentionOutcome(StrEnum):
    """What happened to expired records (the first word of a count's key)."""

    DELETED = "deleted"  # rows deleted (in a dry run: would be)
    DROPPED = "dropped"  # payloads dropped, the rows kept
    HELD = "held"  # expired, kept: the customer is under an active legal hold
    KEPT = "kept"  # expired, kept: append-only records refer to it


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """The counts of one run, keyed ``"<outcome>.<subject>"``; zero counts are left out.
    Subjects are interaction types, categories and ``dsr_events``."""

    dry_run: bool
    ran_at: datetime
    counts: Mapping[str, int]
    policy: RetentionPolicy = field(repr=False)
    customers: tuple[uuid.UUID, ...] = ()  # inactive customers erased (dry run: would be)

    def count(self, outcome: RetentionOutcome, subject: str) -> int:
        return self.counts.get(f"{outcome.value}.{subject}", 0)

    def total(self, outcome: RetentionOutcome) -> int:
        prefix = f"{outcome.value}."
        return sum(n for key, n in self.counts.items() if key.startswith(prefix))

    def detail(self) -> dict[str, int | bool]:
        """The audit entry's detail: the dry-run flag and every non-zero count."""
        return {"dry_run": self.dry_run, **dict(sorted(self.counts.items()))}

    def subjects(self) -> Iterator[tuple[str, int | None]]:
        """Every subject with its period in days (None: counted with another subject), in
        the order a run handles them: interaction types, then the categories."""
        for kind in InteractionType:
            yield kind.value, self.policy.days_for(kind)
        for category in RetentionCategory:
            yield category.value, self.policy.days_of(category)
            if category is RetentionCategory.DSR_REQUESTS:
                yield DSR_EVENTS, None
        yield SIGN_IN_CODES, SIGN_IN_GRACE.days
        yield PAGE_SESSIONS, SIGN_IN_GRACE.days


class _Tally:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.customers: list[uuid.UUID] = []

    def report(self, dry_run: bool, now: datetime, policy: RetentionPolicy) -> RetentionReport:
        return RetentionReport(dry_run, now, dict(self.counts), policy, tuple(self.customers))

    def add(self, outcome: RetentionOutcome, subject: str, n: int) -> None:
        if n:
            key = f"{outcome.value}.{subject}"
            self.counts[key] = self.counts.get(key, 0) + n


def _on_hold(column: InstrumentedAttribute[uuid.UUID]) -> ColumnElement[bool]:
    """The customer in ``column`` is under an active legal hold."""
    active = select(LegalHoldRow.customer_id).where(LegalHoldRow.lifted_at.is_(None))
    return column.in_(active)


def _delete_interactions(window: ColumnElement[bool]) -> Executable:
    return delete(_I).where(window, ~_on_hold(_I.customer_id))


def _drop_payloads(window: ColumnElement[bool]) -> Executable:
    return (
        update(_I)
        .where(window, ~_on_hold(_I.customer_id), _I.payload_ct.is_not(None))
        .values(payload_ct=None)
    )


class RetentionService:
    """Applies the retention policy in force (re-read at every run, so edits apply)."""

    def __init__(self, settings: Settings, audit: AuditLog, *, batch_size: int = 1_000) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._settings = settings
        self._audit = audit
        self.batch_size = batch_size
        self._eraser: tuple[Units, ErasureService] | None = None

    def connect(self, units: Units, erasure: ErasureService) -> None:
        """Wire the erasure path in (the vault's units of work): inactive customers are
        erased through it. A run with an ``inactive_customers`` period refuses without."""
        self._eraser = (units, erasure)

    def __repr__(self) -> str:
        return f"RetentionService(batch_size={self.batch_size})"

    def policy(self) -> RetentionPolicy:
        """The policy in force; raises :class:`RetentionConfigError` naming a bad key."""
        return load_policy(policy_path(self._settings))

    @property
    def steps(self) -> int:
        """How many steps a run takes (a progress bar's total)."""
        return len(self._steps())

    def _steps(
        self,
    ) -> tuple[Callable[[Database, RetentionPolicy, datetime, bool, _Tally], None], ...]:
        return (
            self._interactions,
            self._payloads,
            self._requests,
            self._tombstones,
            self._sign_in,
            self._inactive,
            self._consent_events,
        )

    def run(
        self,
        db: Database,
        *,
        dry_run: bool,
        now: datetime,
        policy: RetentionPolicy | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> RetentionReport:
        """Delete (or, in a dry run, count) everything expired at ``now``; one audit entry.
        ``progress`` hears of each of the :attr:`steps` done."""
        rules = policy if policy is not None else self.policy()
        if now.tzinfo is None:
            raise ValueError("retention needs a time-zone-aware now")
        tally = _Tally()
        context = AccessContext.system("retention")
        try:
            for step in self._steps():
                step(db, rules, now, dry_run, tally)
                if progress is not None:
                    progress(1)
        except BaseException:
            report = tally.report(dry_run, now, rules)
            self._audit.record_now(
                db, context, AuditAction.RETENTION_RUN, outcome=Outcome.FAILED,
                detail=report.detail(),
            )  # fmt: skip
            log.warning("retention.failed", **report.detail())
            raise
        report = tally.report(dry_run, now, rules)
        self._audit.record_now(db, context, AuditAction.RETENTION_RUN, detail=report.detail())
        log.info("retention.run", **report.detail())
        return report

    # -- 1. interactions by type -----------------------------------------------

    def _interactions(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        for kind in InteractionType:
            cutoff = rules.cutoff(now, rules.days_for(kind))
            if cutoff is None:
                continue
            expired = and_(_I.type == kind.value, _I.occurred_at < cutoff)
            held = _on_hold(_I.customer_id)
            tally.add(RetentionOutcome.HELD, kind.value, self._count(db, _I, expired, held))
            if dry_run:
                done = self._count(db, _I, expired, ~held)
            else:
                done = self._batches(db, expired, _delete_interactions)
            tally.add(RetentionOutcome.DELETED, kind.value, done)

    # -- 2. payloads -------------------------------------------------------------

    def _payloads(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        subject = RetentionCategory.INTERACTION_PAYLOAD
        payload_cutoff = rules.cutoff(now, rules.days_of(subject))
        if payload_cutoff is None:
            return
        for kind in InteractionType:
            # Rows past the type's own period are step 1's (deleted, or held whole).
            row_cutoff = rules.cutoff(now, rules.days_for(kind))
            if row_cutoff is not None and row_cutoff >= payload_cutoff:
                continue
            expired = and_(
                _I.type == kind.value,
                _I.occurred_at < payload_cutoff,
                _I.payload_ct.is_not(None),
                *([] if row_cutoff is None else [_I.occurred_at >= row_cutoff]),
            )
            held = _on_hold(_I.customer_id)
            tally.add(RetentionOutcome.HELD, subject.value, self._count(db, _I, expired, held))
            if dry_run:
                done = self._count(db, _I, expired, ~held)
            else:
                done = self._batches(db, expired, _drop_payloads)
            tally.add(RetentionOutcome.DROPPED, subject.value, done)

    def _batches(
        self,
        db: Database,
        expired: ColumnElement[bool],
        change: Callable[[ColumnElement[bool]], Executable],
    ) -> int:
        """Apply ``change`` to the expired interactions, a time window per transaction,
        oldest first. Each window ends at the ``batch_size``-th expired row of a customer
        not on hold (rows sharing that instant go with it), found on
        the (type, occurred_at) prefix of ``ix_interactions_segment_scan``; the change then
        reads the same index range, so
        no row is looked up by id and rows left in place (held) are passed only once."""
        done = 0
        lower: datetime | None = None
        while True:
            with db.transaction() as session:
                conn = session.connection()  # Core: no ORM bookkeeping for bulk rows
                upper = conn.scalar(self.batch_query(expired, lower))
                window = [expired]
                if lower is not None:
                    window.append(_I.occurred_at > lower)
                if upper is not None:
                    window.append(_I.occurred_at <= upper)
                done += conn.execute(change(and_(*window))).rowcount
            if upper is None:
                return done
            lower = upper

    def batch_query(
        self, expired: ColumnElement[bool], lower: datetime | None = None
    ) -> Select[datetime]:
        """Where the next window ends: the ``occurred_at`` of the ``batch_size``-th expired
        interaction after ``lower`` of a customer not on hold (no row: the rest fits)."""
        stmt = (
            select(_I.occurred_at)
            .where(expired, ~_on_hold(_I.customer_id))
            .order_by(_I.occurred_at)
            .offset(self.batch_size - 1)
            .limit(1)
        )
        return stmt if lower is None else stmt.where(_I.occurred_at > lower)

    @staticmethod
    def _count(db: Database, table: type[Base], *where: ColumnElement[bool]) -> int:
        with db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    # -- 3. closed data subject requests ------------------------------------------

    def _requests(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        subject = RetentionCategory.DSR_REQUESTS.value
        cutoff = rules.cutoff(now, rules.days_of(RetentionCategory.DSR_REQUESTS))
        if cutoff is None:
            return
        last_step = select(func.max(_E.at)).where(_E.request_id == _R.id).scalar_subquery()
        closed_at = func.coalesce(_R.completed_at, last_step, _R.received_at)
        expired = and_(_R.status.in_(_CLOSED), closed_at < cutoff)
        held = _on_hold(_R.customer_id)
        tally.add(RetentionOutcome.HELD, subject, self._count(db, _R, expired, held))
        if dry_run:
            free = select(_R.id).where(expired, ~held)
            tally.add(RetentionOutcome.DELETED, subject, self._count(db, _R, expired, ~held))
            history = self._count(db, _E, _E.request_id.in_(free))
            tally.add(RetentionOutcome.DELETED, DSR_EVENTS, history)
            return
        after: uuid.UUID | None = None
        while True:
            with db.transaction() as session:
                conn = session.connection()
                stmt = select(_R.id).where(expired, ~held).order_by(_R.id).limit(self.batch_size)
                if after is not None:
                    stmt = stmt.where(_R.id > after)
                ids = list(conn.scalars(stmt))
                if not ids:
                    return
                free_ids = select(_R.id).where(id_in(_R.id, ids, db.dialect), ~held)
                events = conn.execute(delete(_E).where(_E.request_id.in_(free_ids)))
                requests = conn.execute(delete(_R).where(id_in(_R.id, ids, db.dialect), ~held))
                tally.add(RetentionOutcome.DELETED, DSR_EVENTS, events.rowcount)
                tally.add(RetentionOutcome.DELETED, subject, requests.rowcount)
            if len(ids) < self.batch_size:
                return
            after = ids[-1]

    # -- 4. tombstones -------------------------------------------------------------

    def _tombstones(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        subject = RetentionCategory.TOMBSTONES.value
        cutoff = rules.cutoff(now, rules.days_of(RetentionCategory.TOMBSTONES))
        if cutoff is None:
            return
        merged = aliased(CustomerRow)
        expired = and_(_C.status == CustomerStatus.ERASED.value, _C.erased_at < cutoff)
        held = _on_hold(_C.id)
        referenced = or_(
            select(ConsentEventRow.id).where(ConsentEventRow.customer_id == _C.id).exists(),
            select(merged.id).where(merged.merged_into_id == _C.id).exists(),
        )
        tally.add(RetentionOutcome.HELD, subject, self._count(db, _C, expired, held))
        tally.add(RetentionOutcome.KEPT, subject, self._count(db, _C, expired, ~held, referenced))
        if dry_run:
            free = self._count(db, _C, expired, ~held, ~referenced)
            tally.add(RetentionOutcome.DELETED, subject, free)
            return
        after: uuid.UUID | None = None
        while True:
            with db.transaction() as session:
                stmt = (
                    select(_C.id)
                    .where(expired, ~held, ~referenced)
                    .order_by(_C.id)
                    .limit(self.batch_size)
                )
                if after is not None:
                    stmt = stmt.where(_C.id > after)
                ids = list(session.connection().scalars(stmt))
                for customer_id in ids:
                    gone = delete_tombstone(session, customer_id)
                    tally.add(RetentionOutcome.DELETED if gone else RetentionOutcome.KEPT,
                              subject, 1)  # fmt: skip
            if len(ids) < self.batch_size:
                return
            after = ids[-1]

    # -- 5. sign-in leftovers ----------------------------------------------------

    def _sign_in(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        del rules  # a fixed grace: dead codes and sessions are no one's records
        dead = now - SIGN_IN_GRACE
        sessions = or_(PageSessionRow.expires_at < dead, PageSessionRow.revoked_at < dead)
        for subject, table, where in (
            (SIGN_IN_CODES, SignInCodeRow, SignInCodeRow.expires_at < dead),
            (PAGE_SESSIONS, PageSessionRow, sessions),
        ):
            if dry_run:
                done = self._count(db, table, where)
            else:
                with db.transaction() as session:
                    done = session.connection().execute(delete(table).where(where)).rowcount
            tally.add(RetentionOutcome.DELETED, subject, done)

    # -- 6. inactive customers, 7. consent events (vault.privacy.retention_stale) ------

    def _inactive(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        subject = RetentionCategory.INACTIVE_CUSTOMERS
        cutoff = rules.cutoff(now, rules.days_of(subject))
        if cutoff is None:
            return
        if self._eraser is None:
            raise RuntimeError("retention of inactive customers needs the erasure path")
        units, erasure = self._eraser
        ids, held = inactive_customers(
            db, units, erasure, cutoff, dry_run=dry_run, batch_size=self.batch_size
        )
        tally.customers += ids
        tally.add(RetentionOutcome.DELETED, subject.value, len(ids))
        tally.add(RetentionOutcome.HELD, subject.value, held)

    def _consent_events(
        self, db: Database, rules: RetentionPolicy, now: datetime, dry_run: bool, tally: _Tally
    ) -> None:
        subject = RetentionCategory.CONSENT_EVENTS
        cutoff = rules.cutoff(now, rules.days_of(subject))
        if cutoff is None:
            return
        done, held = expired_consent_events(db, cutoff, dry_run=dry_run, batch_size=self.batch_size)
        tally.add(RetentionOutcome.DELETED, subject.value, done)
        tally.add(RetentionOutcome.HELD, subject.value, held)
