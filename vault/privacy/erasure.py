"""Erasure by crypto-shredding: one short transaction makes a customer unreadable.

``ErasureService.erase`` runs inside the caller's unit of work and, in one
transaction: puts the customer id on the keyring's shred list (fsynced before it
returns) and destroys the wrapped data key, so every token of the customer is
dead in every process, in every replica and in every database backup; nulls the
encrypted fields and blind indexes and clears the profile (locale, tier, tags,
attributes); deletes external ids, current consents and objections; ends the
customer's segment stays and drops its metrics rollup (the ``forget`` ports); leaves a
tombstone (status ``erased``, ``erased_at``, ``erasure_request_id``) so the id
still resolves. The consent event log (append-only proof, ids only), data subject
requests (their sealed details are nulled) and the audit trail stay. Every
statement touches a bounded number of rows, whatever the customer's history.

Interactions are left to :meth:`ErasureService.purge` after the commit: their
payloads are sealed under the destroyed key and so already unreadable, and
deleting 100,000 rows inline would hold the erasure's transaction for seconds.
The purge also clears the profile of records merged into the erased one (they
are keyless already; finding them scans ``customers``, which has no index on
``merged_into_id``).
The DSR desk registers the purge to run after its commit with
:meth:`ErasureService.schedule_purge`; :meth:`ErasureService.purge_pending`
finishes any purge that did not complete.

Erasing a customer that is already erased is not an error: it returns the
tombstone's time and request id with zero counts, re-applies the shred (a
repair if the keyring was restored from a backup older than the erasure) and is
audited with ``already_erased``. An active legal hold refuses the erasure with
:class:`LegalHoldActive` (audited as a refusal).

If the unit of work fails after ``erase`` returned, the shred list already names
the customer: the record stays as it was but cannot be decrypted any more.
Erasure fails closed; run it again to complete the tombstone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from audit.entries import AuditAction
from policies.purposes import Resource
from vault import faults
from vault.audit_trail.log import AuditLog
from vault.authorization.authorizer import Authorizer
from vault.authorization.context import AccessContext, buffer_of
from vault.errors import CustomerNotFound, InvalidInput, LegalHoldActive
from vault.keys import REAPPLY, DataKeys
from vault.logs import get_logger
from vault.storage.db import Database
from vault.storage.models import (
    ConsentStateRow,
    CustomerExternalIdRow,
    CustomerRow,
    DsrRequestRow,
    InteractionRow,
    LegalHoldRow,
    ObjectionRow,
    UTCDateTime,
)
from vault.types import CustomerStatus, PiiField

__all__ = [
    "AFTER_COMMIT",
    "PENDING_COUNT_LIMIT",
    "ErasureReason",
    "ErasureResult",
    "ErasureService",
    "Forgetter",
]

# Vault.unit runs the callables under this session.info key after its commit.
AFTER_COMMIT = "cvault.after_commit"
_ERASED = CustomerStatus.ERASED.value
_MERGED = CustomerStatus.MERGED.value
_LIVE = (CustomerStatus.ACTIVE.value, CustomerStatus.RESTRICTED.value)
# erase() counts pending interactions up to this many (bounded work); purge() counts all.
PENDING_COUNT_LIMIT = 10_000
_ERASED_FIELDS = {f.value: "erased" for f in PiiField}
log = get_logger("vault.privacy.erasure")


class ErasureReason(StrEnum):
    """Why a customer was erased, when it was not a data subject request."""

    RETENTION = "retention"  # inactive for the retention policy's period


@dataclass(frozen=True, slots=True)
class ErasureResult:
    """What an erasure did: ids, a time and counts only."""

    customer_id: uuid.UUID
    erased_at: datetime
    request_id: uuid.UUID | None
    external_ids_deleted: int
    consent_states_deleted: int
    objections_deleted: int
    # Left for purge(): exact up to PENDING_COUNT_LIMIT; beyond it, the limit and exact False.
    interactions_pending: int
    interactions_pending_exact: bool = True
    # The PII the record held when it was erased, by field name (``email``, ...,
    # ``attr:<name>`` for a PII custom attribute); never a value. Empty when already erased.
    pii_fields: tuple[str, ...] = ()


class Forgetter(Protocol):
    """Derived data of a customer kept elsewhere in the vault (segment stays, metrics),
    dropped in the erasure's transaction."""

    def forget_customer(self, session: Session, customer_id: uuid.UUID) -> None: ...


def _count(result: Any) -> int:  # noqa: ANN401 - a CursorResult of an UPDATE or DELETE
    return int(getattr(result, "rowcount", 0) or 0)


class ErasureService:
    def __init__(
        self,
        keys: DataKeys,
        authz: Authorizer,
        *,
        clock: Callable[[], datetime],
        audit: AuditLog | None = None,
        forget: Sequence[Forgetter] = (),
    ) -> None:
        self._keys = keys
        self._authz = authz
        self._clock = clock
        self._audit = audit  # records purges, which run outside any unit of work
        self._forget = tuple(forget)

    def __repr__(self) -> str:
        return "ErasureService()"

    # -- erase ----------------------------------------------------------------

    def erase(
        self,
        session: Session,
        customer_id: uuid.UUID,
        *,
        request_id: uuid.UUID | None = None,
        reason: ErasureReason | None = None,
    ) -> ErasureResult:
        """Crypto-shred and tombstone one customer in the caller's unit of work; ``reason``
        (when given) goes into the audit entry's detail (``retention``: the policy erased
        an inactive customer).

        Raises :class:`CustomerNotFound` for an unknown id, :class:`InvalidInput` for a
        record merged into another (erase the surviving record), :class:`LegalHoldActive`
        while a legal hold is in force, and ``AccessDenied`` without a write grant on
        data requests (a data subject may erase its own record only)."""
        audit = buffer_of(session)
        self._authz.check_writes(session, [Resource.DATA_REQUESTS.value], customer_id)
        self._authz.check_owner(session, customer_id)
        row = session.scalar(_LOCK_CUSTOMER, {"cid": customer_id})
        if row is None:
            raise CustomerNotFound(customer_id)
        if row.status == _MERGED:
            raise InvalidInput("customerId", "customer was merged into another; erase that one")
        if row.status == _ERASED:
            return self._already_erased(session, row)
        conn = session.connection()
        holds = conn.scalar(_ACTIVE_HOLDS, {"cid": customer_id})
        if holds:
            raise self._authz.denied(session, LegalHoldActive(customer_id, holds), customer_id)

        now = self._clock()
        held = _held_fields(row)
        self._keys.shred(session, customer_id, now)
        faults.reach("erasure.shredded")
        for name in PiiField:
            setattr(row, f"{name}_ct", None)
        row.email_bidx = None
        row.phone_bidx = None
        row.locale = None
        row.tier = None
        row.tags = []
        row.attributes = {}
        row.sealed_attributes = None
        row.status = _ERASED
        row.erased_at = now
        row.erasure_request_id = request_id
        row.updated_at = now
        session.flush()
        params = {"cid": customer_id}
        external_ids, consents, objections = (_count(conn.execute(d, params)) for d in _DELETES)
        # Request details are sealed under the destroyed key: dead ciphertext, dropped.
        conn.execute(_DROP_DSR_DETAILS, params)
        for other in self._forget:  # segment stays end, the metrics rollup row goes
            other.forget_customer(session, customer_id)
        pending, exact = self._pending(session, customer_id)
        result = ErasureResult(
            customer_id=customer_id,
            erased_at=now,
            request_id=request_id,
            external_ids_deleted=external_ids,
            consent_states_deleted=consents,
            objections_deleted=objections,
            interactions_pending=pending,
            interactions_pending_exact=exact,
            pii_fields=held,
        )
        detail = _detail(result)
        if reason is not None:
            detail["reason"] = reason.value
        audit.add(
            AuditAction.CUSTOMER_ERASE, customer_id=customer_id, fields=_erased_fields(held),
            detail=detail,
        )  # fmt: skip
        log.info("customer.erased", customer_id=str(customer_id), **detail)
        return result

    def _already_erased(self, session: Session, row: CustomerRow) -> ErasureResult:
        """Idempotent: the tombstone as it stands; the shred is applied again."""
        now = self._clock()
        self._keys.shred(session, row.id, now)
        pending, exact = self._pending(session, row.id)
        result = ErasureResult(
            customer_id=row.id,
            erased_at=row.erased_at or now,
            request_id=row.erasure_request_id,
            external_ids_deleted=0,
            consent_states_deleted=0,
            objections_deleted=0,
            interactions_pending=pending,
            interactions_pending_exact=exact,
        )
        buffer_of(session).add(
            AuditAction.CUSTOMER_ERASE, customer_id=row.id, fields=_ERASED_FIELDS,
            detail={**_detail(result), "already_erased": True},
        )  # fmt: skip
        return result

    @staticmethod
    def _pending(session: Session, customer_id: uuid.UUID) -> tuple[int, bool]:
        """Interactions left, counted up to PENDING_COUNT_LIMIT: a full count of 100,000
        rows would cost more than the rest of the erasure together."""
        found = int(session.connection().scalar(_PENDING, {"cid": customer_id}) or 0)
        return min(found, PENDING_COUNT_LIMIT), found <= PENDING_COUNT_LIMIT

    # -- purge ----------------------------------------------------------------

    def schedule_purge(self, session: Session, db: Database, customer_id: uuid.UUID) -> None:
        """Run :meth:`purge` after the unit of work commits. A failing purge does not fail
        the committed erasure: it is logged and :meth:`purge_pending` finishes it later."""

        def run() -> None:
            try:
                self.purge(db, customer_id)
            except Exception as exc:  # noqa: BLE001 - the erasure has committed; retried later
                log.warning(
                    "erasure.purge_deferred", customer_id=str(customer_id), error=type(exc).__name__
                )

        session.info.setdefault(AFTER_COMMIT, []).append(run)

    def purge(self, db: Database, customer_id: uuid.UUID, *, batch_size: int = 10_000) -> int:
        """Delete an erased customer's interactions, ``batch_size`` rows per transaction, so
        an interrupted purge resumes where it stopped, after clearing the profile of the
        records merged into it. Returns how many interactions it deleted."""
        if batch_size < 1:
            raise InvalidInput("batch_size", "must be at least 1")
        faults.reach("erasure.purge")
        with db.transaction() as session:
            status = session.scalar(select(CustomerRow.status).where(CustomerRow.id == customer_id))
            if status is None:
                raise CustomerNotFound(customer_id)
            if status != _ERASED:
                raise InvalidInput("customerId", "only an erased customer's data is purged")
            merged = _count(
                session.execute(
                    update(CustomerRow)
                    .where(CustomerRow.merged_into_id == customer_id, _uncleared(CustomerRow))
                    .values(
                        locale=None,
                        tier=None,
                        tags=[],
                        attributes={},
                        sealed_attributes=None,
                        updated_at=self._clock(),
                        version=CustomerRow.version + 1,
                    )
                    .execution_options(synchronize_session=False)
                )
            )
        done = 0
        after: dict[str, Any] = {"cid": customer_id, "at": _START[0], "id": _START[1]}
        while True:
            with db.transaction() as session:
                conn = session.connection()
                edge = conn.execute(_PURGE_EDGE, {**after, "skip": batch_size - 1}).first()
                if edge is None:  # the last, short batch
                    done += _count(conn.execute(_PURGE_REST, after))
                    break
                done += _count(
                    conn.execute(_PURGE_UPTO, {**after, "to_at": edge[0], "to_id": edge[1]})
                )
            after = {"cid": customer_id, "at": edge[0], "id": edge[1]}
        if done or merged:
            detail = {"step": "purge", "interactions_deleted": done, "merged_records": merged}
            log.info("customer.purged", customer_id=str(customer_id), **detail)
            if self._audit is not None:
                self._audit.record_now(
                    db,
                    AccessContext.system("erasure"),
                    AuditAction.CUSTOMER_ERASE,
                    customer_id=customer_id,
                    detail=detail,
                )
        return done

    def restored(self, db: Database, *, batch_size: int = 1000) -> list[uuid.UUID]:
        """Customers live in the database but on the keyring's shred list: erasures that a
        restored database backup undid. Their data cannot be read; erase each again (in a
        unit of work) to restore the tombstone, then purge (docs/erasure.md)."""
        found: list[uuid.UUID] = []
        after: uuid.UUID | None = None
        while True:
            with db.transaction() as session:
                stmt = select(CustomerRow.id).where(CustomerRow.status.in_(_LIVE))
                if after is not None:
                    stmt = stmt.where(CustomerRow.id > after)
                ids = session.scalars(stmt.order_by(CustomerRow.id).limit(batch_size)).all()
            if not ids:
                return sorted(found)
            found += self._keys.keyring.shredded(ids)
            after = ids[-1]

    def scan_restored(self, db: Database) -> int:
        """At start-up: find the erasures a restored backup undid (:meth:`restored`), note
        them for :meth:`awaiting_reapply` and log one warning naming the repair."""
        found = self.restored(db, batch_size=10_000)
        self._keys.note_restored(found, quiet=True)
        if found:
            log.warning(
                "erasure.restored_customers",
                customers=len(found),
                detail="a restored backup brought erased customers back; they read as erased",
                run=REAPPLY,
            )
        return len(found)

    def awaiting_reapply(self, db: Database) -> int:
        """How many customers wait for ``cvault erasure reapply``: those the start-up scan
        found or readers met since that are still live (one statement per 1,000 noted; none
        when nothing was noted)."""
        noted = sorted(self._keys.restored_met)
        live: set[uuid.UUID] = set()
        for start in range(0, len(noted), 1000):
            chunk = noted[start : start + 1000]
            with db.transaction() as session:
                live.update(
                    session.scalars(
                        select(CustomerRow.id).where(
                            CustomerRow.id.in_(chunk), CustomerRow.status.in_(_LIVE)
                        )
                    )
                )
        self._keys.settled(set(noted) - live)
        return len(live)

    def purge_pending(self, db: Database) -> int:
        """Purge every erased customer that still has interactions (or merged records with
        a profile); returns how many interactions were deleted."""
        merged = aliased(CustomerRow)
        with db.transaction() as session:
            leftovers = session.scalars(
                select(CustomerRow.id)
                .where(CustomerRow.status == _ERASED)
                .where(
                    or_(
                        exists().where(InteractionRow.customer_id == CustomerRow.id),
                        exists().where(merged.merged_into_id == CustomerRow.id, _uncleared(merged)),
                    )
                )
                .order_by(CustomerRow.id)
            ).all()
        return sum(self.purge(db, cid) for cid in leftovers)


# erase() runs these prepared statements (built once: no per-call construction or
# cache-key work) on the unit's connection; the customer row itself goes through the
# ORM so that the session's copy of it stays true.
def _by_customer(table: Table) -> ColumnElement[bool]:
    return table.c.customer_id == bindparam("cid", type_=Uuid())


_LOCK_CUSTOMER = (
    select(CustomerRow).where(CustomerRow.id == bindparam("cid", type_=Uuid())).with_for_update()
)
_holds = cast("Table", LegalHoldRow.__table__)
_ACTIVE_HOLDS = (
    select(func.count())
    .select_from(_holds)
    .where(_by_customer(_holds), _holds.c.lifted_at.is_(None))
)
_DELETES = tuple(
    delete(table).where(_by_customer(table))
    for table in (
        cast("Table", CustomerExternalIdRow.__table__),
        cast("Table", ConsentStateRow.__table__),
        cast("Table", ObjectionRow.__table__),
    )
)
_dsr = cast("Table", DsrRequestRow.__table__)
_DROP_DSR_DETAILS = (
    update(_dsr).where(_by_customer(_dsr), _dsr.c.details_ct.is_not(None)).values(details_ct=None)
)
_interactions = cast("Table", InteractionRow.__table__)
_PENDING = select(func.count()).select_from(
    select(_interactions.c.id)
    .where(_by_customer(_interactions))
    .limit(PENDING_COUNT_LIMIT + 1)
    .subquery()
)


# A purge walks the customer's part of the timeline index (customer_id, occurred_at, id)
# in key order: each batch ends at the key ``batch_size`` rows on and the next starts
# after it, so no batch wades through the index entries the previous ones deleted (they
# stay until VACUUM). ``id IN (SELECT id ... LIMIT n)`` hash-joined the whole table on
# every batch on PostgreSQL; deleting by ctid still re-read the dead entries each time.
_key = tuple_(_interactions.c.occurred_at, _interactions.c.id)
_after = _key > tuple_(bindparam("at", type_=UTCDateTime()), bindparam("id", type_=Uuid()))
_START = (datetime(1, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
_PURGE_EDGE = (
    select(_interactions.c.occurred_at, _interactions.c.id)
    .where(_by_customer(_interactions), _after)
    .order_by(_interactions.c.occurred_at, _interactions.c.id)
    .offset(bindparam("skip"))
    .limit(1)
)
_PURGE_REST = delete(_interactions).where(_by_customer(_interactions), _after)
_PURGE_UPTO = delete(_interactions).where(
    _by_customer(_interactions),
    _after,
    _key <= tuple_(bindparam("to_at", type_=UTCDateTime()), bindparam("to_id", type_=Uuid())),
)


def _uncleared(row: type[CustomerRow]) -> ColumnElement[bool]:
    """A record that still has something in its clear profile columns."""
    return or_(
        row.locale.is_not(None),
        row.tier.is_not(None),
        row.tags != [],
        row.attributes != {},
        row.sealed_attributes.is_not(None),
    )


def _held_fields(row: CustomerRow) -> tuple[str, ...]:
    """The names of the PII fields and PII custom attributes the record holds a value in."""
    fields = [f.value for f in PiiField if getattr(row, f"{f.value}_ct") is not None]
    return (*fields, *(f"attr:{name}" for name in sorted(row.sealed_attributes or {})))


def _erased_fields(held: tuple[str, ...]) -> dict[str, str]:
    """The erase entry's ``fields``: every PII field ``erased`` (each is unreadable from
    now on, held or empty) and each PII custom attribute the record held, ``attr:<name>``,
    too; so every name the erasure receipt lists (``pii_fields``) is in the entry."""
    return {**_ERASED_FIELDS, **{name: "erased" for name in held if name.startswith("attr:")}}


def _detail(result: ErasureResult) -> dict[str, Any]:
    return {
        "external_ids": result.external_ids_deleted,
        "consent_states": result.consent_states_deleted,
        "objections": result.objections_deleted,
        "interactions_pending": result.interactions_pending,
        "interactions_pending_exact": result.interactions_pending_exact,
        "request": None if result.request_id is None else str(result.request_id),
    }
