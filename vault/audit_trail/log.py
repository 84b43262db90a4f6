"""The audit trail's database side: buffer, append, sequence, checkpoint.

* A unit of work collects its entries in an :class:`AuditBuffer` (reads of one
  customer within a request merge into one entry) and writes them in the same
  transaction as its own writes: if the audit write fails, the request fails.
* Written entries wait in ``audit_pending``. One sequencer at a time (a
  PostgreSQL advisory lock; a process lock on SQLite) gives them consecutive log
  positions in the order it finds them, extends the RFC 6962 tree from the last
  checkpoint's right edge, and signs a new checkpoint. Ids from the database
  sequence are never taken as log order: they become visible out of commit order.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, delete, insert, select, text
from sqlalchemy.orm import Session

from audit.checkpoint import Checkpoint, Signer, sign_checkpoint, vkey
from audit.entries import AuditAction, AuditEntry, Outcome
from audit.merkle import Frontier, leaf_hash
from vault import telemetry
from vault.authorization.context import AccessContext
from vault.storage.db import Database
from vault.storage.models import (
    AuditCheckpointRow,
    AuditEntryRow,
    AuditLogRow,
    AuditPendingRow,
)

__all__ = ["AuditBuffer", "AuditFilter", "AuditLog", "AuditQueueBroken", "CheckpointInfo"]

_Stmt = TypeVar("_Stmt", bound=Select[*tuple[Any, ...]])

_ADVISORY_LOCK = 0x63766C74  # "cvlt"
_PG_APPEND = (
    "WITH e AS (INSERT INTO audit_entries "
    "(entry_id, recorded_at, actor, action, customer_id, canonical) "
    "SELECT * FROM unnest(%s::uuid[], %s::timestamptz[], %s::varchar[], %s::varchar[], "
    "%s::uuid[], %s::bytea[]) RETURNING id) "
    "INSERT INTO audit_pending (entry_pk) SELECT id FROM e"
)


def _pg_columns(entries: Sequence[AuditEntry]) -> tuple[list[Any], ...]:
    """The entries as the column arrays :data:`_PG_APPEND` takes."""
    return (
        [e.entry_id for e in entries],
        [e.time for e in entries],
        [e.actor for e in entries],
        [e.action.value for e in entries],
        [e.customer_id for e in entries],
        [e.canonical() for e in entries],
    )


_PG_LOG = (
    "INSERT INTO audit_log (position, entry_pk, leaf_hash) "
    "SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bytea[])"
)


class AuditQueueBroken(RuntimeError):
    """``audit_pending`` names an entry that does not exist (the sequencer stops)."""


class AuditBuffer:
    """The audit entries of one unit of work, written when it commits."""

    def __init__(self, context: AccessContext, clock: Callable[[], datetime]) -> None:
        self._context = context
        self._clock = clock
        self._reads: dict[uuid.UUID, dict[str, str]] = {}
        self._entries: list[AuditEntry] = []
        self.denials: list[AuditEntry] = []

    def __repr__(self) -> str:
        return f"AuditBuffer(entries={len(self._entries) + len(self._reads)})"

    def read(self, customer_id: uuid.UUID, fields: Mapping[str, str]) -> None:
        """Note that resources or fields of one customer were read and how each resolved;
        every read of one customer in the unit becomes one ``pii.access`` entry."""
        self._reads.setdefault(customer_id, {}).update(fields)

    def add(
        self,
        action: AuditAction,
        *,
        customer_id: uuid.UUID | None = None,
        fields: Mapping[str, str] | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        self._entries.append(self.entry(action, customer_id, fields, outcome, detail))

    def deny(self, customer_id: uuid.UUID | None, fields: Mapping[str, str]) -> None:
        """Note a refused access; it is written whether or not the unit of work commits."""
        self.denials.append(
            self.entry(AuditAction.ACCESS_DENIED, customer_id, fields, Outcome.DENIED, None)
        )

    def entry(
        self,
        action: AuditAction,
        customer_id: uuid.UUID | None,
        fields: Mapping[str, str] | None,
        outcome: Outcome,
        detail: Mapping[str, Any] | None,
    ) -> AuditEntry:
        ctx = self._context
        return AuditEntry(
            action=action,
            outcome=outcome,
            actor=ctx.actor.subject,
            role=ctx.actor.role,
            purpose=ctx.purpose,
            request_id=ctx.request_id,
            time=self._clock(),
            customer_id=customer_id,
            fields=dict(fields or {}),
            client=ctx.client,
            detail=dict(detail or {}),
        )

    def mark(self) -> tuple[int, dict[uuid.UUID, dict[str, str]]]:
        """Where the buffer stands, to go back to if a savepoint rolls back."""
        return len(self._entries), {cid: dict(fields) for cid, fields in self._reads.items()}

    def rollback_to(self, mark: tuple[int, dict[uuid.UUID, dict[str, str]]]) -> None:
        """Forget what was noted since ``mark`` (its writes were rolled back); refusals stay."""
        count, reads = mark
        del self._entries[count:]
        self._reads = reads

    def drain(self) -> list[AuditEntry]:
        """Every entry, reads merged per customer, and empty the buffer."""
        reads = [
            self.entry(AuditAction.PII_ACCESS, cid, fields, Outcome.SUCCESS, None)
            for cid, fields in self._reads.items()
        ]
        entries = [*self.denials, *self._entries, *reads]
        self._entries, self._reads, self.denials = [], {}, []
        return entries


@dataclass(frozen=True, slots=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    customer_id: uuid.UUID | None = None
    action: AuditAction | None = None

    @property
    def empty(self) -> bool:
        return all(
            v is None for v in (self.since, self.until, self.actor, self.customer_id, self.action)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "since": None if self.since is None else self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "actor": self.actor,
            "customer": None if self.customer_id is None else str(self.customer_id),
            "action": None if self.action is None else self.action.value,
        }

    def apply(self, stmt: _Stmt) -> _Stmt:
        e = AuditEntryRow
        if self.since is not None:
            stmt = stmt.where(e.recorded_at >= self.since)
        if self.until is not None:
            stmt = stmt.where(e.recorded_at < self.until)
        if self.actor is not None:
            stmt = stmt.where(e.actor == self.actor)
        if self.customer_id is not None:
            stmt = stmt.where(e.customer_id == self.customer_id)
        if self.action is not None:
            stmt = stmt.where(e.action == self.action.value)
        return stmt


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    tree_size: int
    root_hash: bytes
    note: str
    created_at: datetime


class AuditLog:
    """Writes entries and runs the sequencer that orders and signs them."""

    def __init__(self, signer: Signer, *, origin: str, clock: Callable[[], datetime]) -> None:
        self._signer = signer
        self.origin = origin
        self._clock = clock
        self._local = threading.Lock()

    def __repr__(self) -> str:
        return f"AuditLog(origin={self.origin!r})"

    @property
    def signer(self) -> Signer:
        """The vault's Ed25519 signing key (checkpoints, consent and erasure receipts)."""
        return self._signer

    @property
    def public_vkey(self) -> str:
        return vkey(self._signer.name, self._signer.public_key_bytes())

    def write(self, session: Session, entries: Sequence[AuditEntry]) -> None:
        """Insert entries (and their queue rows) in the session's transaction."""
        if not entries:
            return
        started = time.perf_counter()
        self._append(session, entries)
        telemetry.audit_appended(time.perf_counter() - started, len(entries))

    def _append(self, session: Session, entries: Sequence[AuditEntry]) -> None:
        conn = session.connection()
        if conn.dialect.name == "postgresql":
            # One short statement whatever the batch size: arrays in, the queue rows filled
            # from the RETURNING of the same statement (psycopg caches its plan).
            conn.exec_driver_sql(_PG_APPEND, _pg_columns(entries))
            return
        rows = [
            {
                "entry_id": e.entry_id,
                "recorded_at": e.time,
                "actor": e.actor,
                "action": e.action.value,
                "customer_id": e.customer_id,
                "canonical": e.canonical(),
            }
            for e in entries
        ]
        ids = conn.execute(insert(AuditEntryRow).returning(AuditEntryRow.id), rows).scalars()
        conn.execute(insert(AuditPendingRow), [{"entry_pk": i} for i in ids])

    def write_now(self, db: Database, entries: Sequence[AuditEntry]) -> None:
        """Write entries in a transaction of their own: for events whose request is
        refused and rolled back (a bad token, a denied access)."""
        if db.dialect == "postgresql" and entries:
            # The append is one statement: sent alone (autocommit) it is atomic as it is,
            # one round trip instead of three (BEGIN, the append, COMMIT).
            started = time.perf_counter()
            db.run_alone(_PG_APPEND, _pg_columns(entries))
            telemetry.audit_appended(time.perf_counter() - started, len(entries))
            return
        with db.transaction() as session:
            self.write(session, entries)

    def record_now(
        self,
        db: Database,
        context: AccessContext,
        action: AuditAction,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        customer_id: uuid.UUID | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """One entry for an event outside any unit of work, in its own transaction."""
        entry = AuditBuffer(context, self._clock).entry(action, customer_id, None, outcome, detail)
        self.write_now(db, [entry])

    def sequence(self, db: Database, *, batch_size: int = 10_000) -> int:
        """Give pending entries log positions and sign a checkpoint; returns how many."""
        with self._local:
            total = 0
            while True:
                done = self._sequence_batch(db, batch_size)
                total += done
                if done < batch_size:
                    return total

    def _sequence_batch(self, db: Database, batch_size: int) -> int:
        with db.transaction() as session:
            if db.dialect == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
            pending = session.execute(
                select(AuditPendingRow.entry_pk, AuditEntryRow.canonical)
                .outerjoin(AuditEntryRow, AuditEntryRow.id == AuditPendingRow.entry_pk)
                .order_by(AuditPendingRow.entry_pk)
                .limit(batch_size)
            ).all()
            if not pending:
                return 0
            if any(canonical is None for _, canonical in pending):
                # What the queue's foreign key once refused (migration 0018): nothing is
                # sequenced past it, and it is loud.
                raise AuditQueueBroken("an audit queue row names no entry")
            last = session.scalars(
                select(AuditCheckpointRow).order_by(AuditCheckpointRow.tree_size.desc()).limit(1)
            ).first()
            frontier = Frontier.from_bytes(last.frontier) if last is not None else Frontier()
            start = frontier.size
            log_rows = []
            for offset, (entry_pk, canonical) in enumerate(pending):
                digest = leaf_hash(canonical)
                frontier.append(digest)
                log_rows.append(
                    {"position": start + offset, "entry_pk": entry_pk, "leaf_hash": digest}
                )
            conn = session.connection()
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    _PG_LOG,
                    (
                        [r["position"] for r in log_rows],
                        [r["entry_pk"] for r in log_rows],
                        [r["leaf_hash"] for r in log_rows],
                    ),
                )
            else:
                conn.execute(insert(AuditLogRow), log_rows)
            root_hash = frontier.root()
            note = sign_checkpoint(Checkpoint(self.origin, frontier.size, root_hash), self._signer)
            conn.execute(
                insert(AuditCheckpointRow),
                [
                    {
                        "tree_size": frontier.size,
                        "root_hash": root_hash,
                        "frontier": frontier.to_bytes(),
                        "note": note,
                        "created_at": self._clock(),
                    }
                ],
            )
            sequenced = [row.entry_pk for row in pending]
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "DELETE FROM audit_pending WHERE entry_pk = ANY(%s::bigint[])", (sequenced,)
                )
            else:
                for chunk in range(0, len(sequenced), 500):
                    conn.execute(
                        delete(AuditPendingRow).where(
                            AuditPendingRow.entry_pk.in_(sequenced[chunk : chunk + 500])
                        )
                    )
            return len(pending)

    def latest_checkpoint(self, session: Session) -> CheckpointInfo | None:
        row = session.scalars(
            select(AuditCheckpointRow).order_by(AuditCheckpointRow.tree_size.desc()).limit(1)
        ).first()
        if row is None:
            return None
        return CheckpointInfo(row.tree_size, row.root_hash, row.note, row.created_at)

    def checkpoints(self, session: Session, *, every: int = 4_096) -> Iterator[CheckpointInfo]:
        """Checkpoints in size order, thinned to about one per ``every`` entries, plus the last."""
        rows = session.execute(
            select(
                AuditCheckpointRow.tree_size,
                AuditCheckpointRow.root_hash,
                AuditCheckpointRow.note,
                AuditCheckpointRow.created_at,
            ).order_by(AuditCheckpointRow.tree_size)
        ).all()
        next_mark = 0
        for i, (size, root_hash, note, created) in enumerate(rows):
            if size >= next_mark or i == len(rows) - 1:
                yield CheckpointInfo(size, root_hash, note, created)
                next_mark = (size // every + 1) * every
