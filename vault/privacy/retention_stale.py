"""Retention of what goes stale: inactive customers and superseded consent events.

Two steps of a retention run (:mod:`vault.privacy.retention` runs them after the
others), each off by default (``0`` keeps forever):

* ``inactive_customers = N``: a customer is inactive when it is live (active or
  restricted, not erased or merged), was created more than N days ago and has no
  interaction with ``occurred_at >= now - N days`` (a new customer without interactions
  is not inactive). Each one is erased through the erasure path
  (:meth:`ErasureService.erase` with reason ``retention``): its key is shredded, its
  sessions, codes and segment stays are forgotten, its interactions purged after the
  commit, and the erasure is audited as any other, by ``system:retention``. Candidates are
  read in pages of ``batch_size`` ids; each erasure is its own unit of work, which checks
  again, with the customer locked, that it is still inactive, so a run that is cut off
  resumes where it stopped and a customer active in the meantime is left alone. A
  customer under an active legal hold is counted as held (also when the hold arrives
  between the page and its erasure: the erasure refuses). A dry run lists the ids (the
  pseudonymous customer ids, no PII) and changes nothing.
* ``consent_events = N``: a consent event is proof of the consent it recorded while that
  consent is in force and for N days after it ended: it ends when a later event of the
  same customer and purpose supersedes it, or, for a grant with an expiry, when it
  expired. An event is deleted once it is superseded and either its successor or its
  expiry is more than N days old. The latest event of each customer and purpose is never
  deleted, so the current consent state (and its proof) is untouched; the database
  enforces that too (see :mod:`vault.storage.models.append_only`): the ledger refuses a
  DELETE outside retention's unlocked transaction, and refuses deleting a latest event
  always. Events of a customer under a legal hold are counted as held. Batches of
  ``batch_size`` events, each its own transaction.

Also here: :func:`delete_tombstone`, the deletion of an erased customer's tombstone with
what still points at it (step 4 of a run).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from vault.authorization.context import AccessContext
from vault.errors import LegalHoldActive
from vault.logs import get_logger
from vault.privacy.erasure import ErasureReason, ErasureService
from vault.storage.db import Database
from vault.storage.models import (
    ConsentEventRow,
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerMetricsRow,
    CustomerRow,
    DataKeyRow,
    DsrEventRow,
    DsrRequestRow,
    InteractionRow,
    LegalHoldRow,
    ObjectionRow,
    SegmentMembershipRow,
    WebhookDeliveryRow,
    retention_unlocked,
)
from vault.types import CustomerStatus

__all__ = [
    "Units",
    "delete_tombstone",
    "expired_consent_events",
    "inactive",
    "inactive_customers",
]

# Vault.unit: one unit of work for a caller (its audit entries commit with it).
Units = Callable[[AccessContext], AbstractContextManager[Session]]
_LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
_C, _I, _CE = CustomerRow, InteractionRow, ConsentEventRow
_DR, _DE = DsrRequestRow, DsrEventRow
log = get_logger("vault.privacy.retention")


def _on_hold(column: InstrumentedAttribute[uuid.UUID]) -> ColumnElement[bool]:
    active = select(LegalHoldRow.customer_id).where(LegalHoldRow.lifted_at.is_(None))
    return column.in_(active)


def inactive(cutoff: datetime) -> ColumnElement[bool]:
    """A live customer created before ``cutoff`` without an interaction since then."""
    recent = select(_I.id).where(_I.customer_id == _C.id, _I.occurred_at >= cutoff).exists()
    return and_(_C.status.in_(_LIVE), _C.created_at < cutoff, ~recent)


def _count(db: Database, *where: ColumnElement[bool], table: type = _C) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(table).where(*where)) or 0)


def inactive_customers(
    db: Database,
    units: Units,
    erasure: ErasureService,
    cutoff: datetime,
    *,
    dry_run: bool,
    batch_size: int,
) -> tuple[list[uuid.UUID], int]:
    """Erase (dry run: list) the customers inactive since ``cutoff``; returns the ids
    erased (would be) and how many inactive customers a legal hold keeps."""
    stale = inactive(cutoff)
    held = _count(db, stale, _on_hold(_C.id))
    context = AccessContext.system("retention")
    erased: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        stmt = select(_C.id).where(stale, ~_on_hold(_C.id)).order_by(_C.id).limit(batch_size)
        if after is not None:
            stmt = stmt.where(_C.id > after)
        with db.transaction() as session:
            ids = list(session.scalars(stmt))
        for customer_id in ids:
            if dry_run:
                erased.append(customer_id)
                continue
            try:
                with units(context) as session:
                    still = select(_C.id).where(_C.id == customer_id, stale).with_for_update()
                    if session.scalar(still) is None:
                        continue  # active again (or erased) since the page was read
                    erasure.erase(session, customer_id, reason=ErasureReason.RETENTION)
                    erasure.schedule_purge(session, db, customer_id)
            except LegalHoldActive:
                held += 1
                continue
            erased.append(customer_id)
        if len(ids) < batch_size:
            return erased, held
        after = ids[-1]


def _expired_events(cutoff: datetime) -> ColumnElement[bool]:
    """Consent events superseded by a later event of the same customer and purpose, the
    successor (or the event's own expiry) older than ``cutoff``."""
    later = aliased(ConsentEventRow)
    superseded = and_(
        later.customer_id == _CE.customer_id,
        later.purpose == _CE.purpose,
        or_(
            later.occurred_at > _CE.occurred_at,
            and_(later.occurred_at == _CE.occurred_at, later.seq > _CE.seq),
        ),
    )
    ended = or_(later.occurred_at < cutoff, _CE.expires_at < cutoff)
    return exists().where(superseded, ended)


def expired_consent_events(
    db: Database, cutoff: datetime, *, dry_run: bool, batch_size: int
) -> tuple[int, int]:
    """Delete (dry run: count) the consent events past their keeping period; returns
    (deleted, held)."""
    expired = _expired_events(cutoff)
    held_by = _on_hold(_CE.customer_id)
    held = _count(db, expired, held_by, table=_CE)
    if dry_run:
        return _count(db, expired, ~held_by, table=_CE), held
    done = 0
    after: int | None = None
    while True:
        stmt = select(_CE.seq).where(expired, ~held_by).order_by(_CE.seq).limit(batch_size)
        if after is not None:
            stmt = stmt.where(_CE.seq > after)
        with db.transaction() as session:
            conn = session.connection()
            seqs = list(conn.scalars(stmt))
            if seqs:
                with retention_unlocked(conn):
                    gone = conn.execute(delete(_CE).where(_CE.seq.in_(seqs)))
                done += gone.rowcount
        if len(seqs) < batch_size:
            return done, held
        after = seqs[-1]


def delete_tombstone(session: Session, customer_id: uuid.UUID) -> bool:
    """Delete an erased customer's tombstone and every row left pointing at it, in a
    savepoint; False (and nothing deleted) when a row the database protects refers to it."""
    requests = select(_DR.id).where(_DR.customer_id == customer_id)
    statements = [
        delete(_I).where(_I.customer_id == customer_id),
        delete(DataKeyRow).where(DataKeyRow.customer_id == customer_id),
        delete(CustomerExternalIdRow).where(CustomerExternalIdRow.customer_id == customer_id),
        delete(ConsentStateRow).where(ConsentStateRow.customer_id == customer_id),
        delete(ObjectionRow).where(ObjectionRow.customer_id == customer_id),
        delete(LegalHoldRow).where(LegalHoldRow.customer_id == customer_id),
        delete(_DE).where(_DE.request_id.in_(requests)),
        delete(_DR).where(_DR.customer_id == customer_id),
        # Derived rows without a foreign key (indexed by customer): history of its stays in
        # segments, its metrics, deliveries about it.
        delete(SegmentMembershipRow).where(SegmentMembershipRow.customer_id == customer_id),
        delete(CustomerMetricsRow).where(CustomerMetricsRow.customer_id == customer_id),
        delete(WebhookDeliveryRow).where(WebhookDeliveryRow.customer_id == customer_id),
        delete(_C).where(_C.id == customer_id, _C.status == CustomerStatus.ERASED.value),
    ]
    try:
        with session.begin_nested():
            conn = session.connection()
            for statement in statements:
                conn.execute(statement)
    except IntegrityError:  # a table added later still refers to it; keep the tombstone
        log.warning("retention.tombstone_kept", customer_id=str(customer_id))
        return False
    return True
