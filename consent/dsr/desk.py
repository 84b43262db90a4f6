"""The data subject request desk (GDPR Art. 12, 15-21): file, verify, extend, reject, process.

A request moves ``received -> verified -> in_progress -> completed`` or ends
``rejected``. It is due one calendar month after receipt (a day the month lacks
becomes its last day) and may be extended once, by one or two months counted
from receipt, with a recorded reason (Art. 12(3)).

Nothing is released or changed before the requester proves who they are: filing
hands out a one-time token (shown once, stored as a SHA-256 digest, valid for 24
hours); five wrong tokens and the request can no longer be verified. A wrong
token is counted after the unit of work ends, so a refused call that rolls back
still uses up an attempt.

What a request asks for is checked and sealed by :mod:`consent.dsr.details`;
processing runs in the caller's unit of work and is carried out by type in
:mod:`consent.dsr.fulfilment` (after an erasure the desk schedules the purge of
interactions, once nothing else can fail the unit).

Who may do what follows the ``data_requests`` policy resource: a data subject files,
verifies, follows and processes its own requests; compliance officers (and the
operator's CLI) handle every request, and alone extend, reject, lift a restriction
and place or lift legal holds. Every step is a ``dsr_events`` row and an audit entry
(:mod:`consent.dsr.history`).
"""

from __future__ import annotations

import builtins
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from audit.entries import AuditAction
from consent.dsr.details import check_details, seal_details
from consent.dsr.export import ExportBundle
from consent.dsr.fulfilment import LIVE, Fulfilment, customer_for_update
from consent.dsr.history import RequestHistory
from consent.dsr.requests import (
    CLOSED,
    MAX_VERIFICATION_ATTEMPTS,
    REQUESTS,
    DsrEvent,
    DsrInput,
    DsrView,
    HoldView,
    RequestNotFound,
    RequestStateError,
    VerificationFailed,
    add_months,
    awaits_approval,
    hold_view,
    listed_requests,
    reason_text,
    request_view,
)
from consent.ledger import ConsentLedger
from policies import AccessDenied, Action, Resource, Role
from vault.authorization.context import access_of, buffer_of
from vault.crypto.tokens import TokenMismatch, new_verification_token, verification_matches
from vault.errors import CustomerErased, CustomerNotFound, InvalidInput
from vault.keyset import keyset_rows
from vault.pagination import Page, Window
from vault.runtime import Vault
from vault.storage.models import CustomerRow, DsrEventRow, DsrRequestRow, LegalHoldRow
from vault.text import check_word
from vault.types import CustomerStatus, DsrStatus, DsrType

__all__ = [
    "DsrDesk",
    "DsrEvent",
    "DsrInput",
    "DsrView",
    "FiledRequest",
    "HoldView",
    "ProcessOutcome",
    "RequestNotFound",
    "RequestStateError",
    "VerificationFailed",
    "add_months",
]

TOKEN_LIFETIME = timedelta(hours=24)
_REQUESTS = Resource.DATA_REQUESTS.value
_RESTRICTED = CustomerStatus.RESTRICTED.value
_EXPORTS = (DsrType.ACCESS, DsrType.PORTABILITY)


@dataclass(frozen=True, slots=True)
class FiledRequest:
    """A new request and its one-time verification token (shown this once, never stored)."""

    request: DsrView
    verification_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """A processed request; ``bundle`` for access and portability, ``receipt`` (signed,
    ids and counts only) for erasure."""

    request: DsrView
    bundle: ExportBundle | None = field(default=None, repr=False)
    receipt: dict[str, Any] | None = field(default=None, repr=False)


class DsrDesk:
    """Files, verifies, decides on and processes data subject requests; places legal holds."""

    def __init__(self, vault: Vault, ledger: ConsentLedger) -> None:
        self._vault = vault
        self._history = RequestHistory(vault)
        self._fulfilment = Fulfilment(vault, ledger, self._history)

    def __repr__(self) -> str:
        return "DsrDesk()"

    # -- filing and verification ----------------------------------------------------

    def create(self, session: Session, data: DsrInput) -> FiledRequest:
        """File a request (status received, due in one month) and hand out its token."""
        row, token = self._file(session, data)
        return FiledRequest(request=self._history.view(session, row), verification_token=token)

    def file_verified(self, session: Session, data: DsrInput) -> DsrView:
        """File a request for the data subject whose session already proved who they are
        (the privacy page's one-time code): verified on filing, no token handed out. An
        erasure then waits for the desk's approval (``result["approval"] == "pending"``)
        unless ``CVAULT_ERASURE_APPROVAL=automatic``."""
        ctx = access_of(session)
        if ctx.actor.role != Role.DATA_SUBJECT.value or ctx.actor.customer_id != data.customer_id:
            error = AccessDenied(ctx.actor.role, ctx.purpose, _REQUESTS, Action.WRITE)
            raise self._vault.authz.denied(session, error, data.customer_id)
        row, _token = self._file(session, data)
        row.verification_hash = None
        row.verification_expires_at = None
        row.verified_at = self._vault.clock()
        waits = (
            row.type == DsrType.ERASURE.value and self._vault.settings.erasure_approval == "desk"
        )
        if waits:
            row.result = {**(row.result or {}), "approval": "pending"}
        self._history.step(
            session, row, DsrStatus.VERIFIED, note="verified by a signed-in session",
            detail={"step": "verified_by_session", "approval": "pending" if waits else None},
        )  # fmt: skip
        return self._history.view(session, row)

    def _file(self, session: Session, data: DsrInput) -> tuple[DsrRequestRow, str]:
        authz = self._vault.authz
        kind = check_word(DsrType, data.type, field="type")
        authz.check_writes(session, [_REQUESTS], data.customer_id)
        authz.check_owner(session, data.customer_id)
        customer = session.scalar(select(CustomerRow).where(CustomerRow.id == data.customer_id))
        if customer is None or customer.status not in LIVE:
            raise CustomerNotFound(data.customer_id)
        details, summary = check_details(self._vault.customers, kind, data.details)
        now = self._vault.clock()
        request_id = uuid.uuid4()
        token, digest = new_verification_token()
        sealed = None
        if details is not None:
            sealed = seal_details(self._vault.keys.get(session, customer.id), request_id, details)
        row = DsrRequestRow(
            id=request_id,
            customer_id=customer.id,
            type=kind.value,
            status=DsrStatus.RECEIVED.value,
            received_at=now,
            due_at=add_months(now, 1),
            verification_hash=digest,
            verification_expires_at=now + TOKEN_LIFETIME,
            verification_attempts=0,
            requested_by=access_of(session).actor.subject,
            details_ct=sealed,
            result=summary,
        )
        session.add(row)
        session.flush()  # the request row before its first history row (no ORM relationship)
        self._history.step(session, row, DsrStatus.RECEIVED)
        return row, token

    def verify(self, session: Session, request_id: uuid.UUID, token: str) -> DsrView:
        """Check the one-time token; the request becomes verified and the token is spent."""
        row = self._load(session, request_id, write=True)
        if row.status != DsrStatus.RECEIVED.value:
            raise RequestStateError(row.id, row.status, "only a received request is verified")
        now = self._vault.clock()
        if (row.verification_attempts or 0) >= MAX_VERIFICATION_ATTEMPTS:
            raise self._refused(session, row, "too many wrong tokens; file a new request")
        expires = row.verification_expires_at
        if row.verification_hash is None or expires is None or now >= expires:
            raise self._refused(session, row, "the token has expired; file a new request")
        try:
            verification_matches(token, row.verification_hash)
        except TokenMismatch:
            self._count_failed_attempt(session, row.id)
            raise self._refused(session, row, "the token does not match") from None
        row.verification_hash = None
        row.verified_at = now
        self._history.step(session, row, DsrStatus.VERIFIED)
        return self._history.view(session, row)

    # -- decisions (compliance) -----------------------------------------------------

    def extend(
        self, session: Session, request_id: uuid.UUID, *, months: int, reason: str
    ) -> DsrView:
        """Extend the deadline once, by one or two months counted from receipt."""
        self._require_desk(session)
        row = self._load(session, request_id, write=True)
        if DsrStatus(row.status) in CLOSED:
            raise RequestStateError(row.id, row.status, "a closed request is not extended")
        if row.extended_at is not None:
            raise RequestStateError(row.id, row.status, "a request is extended once only")
        if isinstance(months, bool) or not isinstance(months, int) or not 1 <= months <= 2:
            raise InvalidInput("months", "must be 1 or 2")
        text = reason_text(reason)
        row.due_at = add_months(row.received_at, 1 + months)
        row.extended_at = self._vault.clock()
        row.extension_reason = text
        self._history.step(
            session, row, DsrStatus(row.status), note=f"extended by {months} month(s): {text}",
            detail={"step": "extended", "months": months},
        )  # fmt: skip
        return self._history.view(session, row)

    def approve(self, session: Session, request_id: uuid.UUID) -> DsrView:
        """Let an erasure filed on the privacy page go ahead: it may be processed now."""
        self._require_desk(session)
        row = self._load(session, request_id, write=True)
        if row.status != DsrStatus.VERIFIED.value or not awaits_approval(row):
            raise RequestStateError(
                row.id, row.status, "only a request awaiting approval is approved"
            )
        row.result = {**(row.result or {}), "approval": "approved"}
        self._history.step(
            session, row, DsrStatus.VERIFIED, note="approved", detail={"step": "approved"}
        )
        return self._history.view(session, row)

    def reject(self, session: Session, request_id: uuid.UUID, *, reason: str) -> DsrView:
        """Refuse a request that has not been processed (Art. 12(4): with a reason)."""
        self._require_desk(session)
        row = self._load(session, request_id, write=True)
        if row.status not in (DsrStatus.RECEIVED.value, DsrStatus.VERIFIED.value):
            raise RequestStateError(row.id, row.status, "only an open request is rejected")
        text = reason_text(reason)
        row.rejection_reason = text
        row.verification_hash = None
        row.completed_at = self._vault.clock()
        self._history.step(session, row, DsrStatus.REJECTED, note=text)
        return self._history.view(session, row)

    # -- processing -----------------------------------------------------------------

    def process(self, session: Session, request_id: uuid.UUID) -> ProcessOutcome:
        """Carry out a verified request; in_progress then completed in this unit of work."""
        row = self._load(session, request_id, write=True)
        if row.status != DsrStatus.VERIFIED.value:
            raise RequestStateError(row.id, row.status, "only a verified request is processed")
        if awaits_approval(row):
            raise RequestStateError(row.id, row.status, "it awaits the desk's approval")
        kind = DsrType(row.type)
        if kind is not DsrType.ERASURE:
            status = session.scalar(
                select(CustomerRow.status).where(CustomerRow.id == row.customer_id)
            )
            if status not in LIVE:
                raise CustomerNotFound(row.customer_id)
            if self._vault.keyring.shredded([row.customer_id]):  # erasure undone by a restore
                raise CustomerErased(row.customer_id, restored=True)
        self._history.step(session, row, DsrStatus.IN_PROGRESS)
        done = self._fulfilment.carry_out(session, row)
        row.result = {**(row.result or {}), **done.result}
        row.completed_at = self._vault.clock()
        self._history.step(session, row, DsrStatus.COMPLETED, detail={"effect": done.effect})
        if kind is DsrType.ERASURE:  # last: nothing after it can fail the unit and leave a purge
            self._vault.erasure.schedule_purge(session, self._vault.db, row.customer_id)
        view = self._history.view(session, row)
        return ProcessOutcome(request=view, bundle=done.bundle, receipt=done.receipt)

    def bundle(self, session: Session, request_id: uuid.UUID) -> ExportBundle:
        """The bundle of a completed access or portability request, built afresh, for the
        data subject it belongs to only (the desk processes, the data subject downloads)."""
        row = self._load(session, request_id, write=False)
        ctx = access_of(session)
        if ctx.actor.role not in (Role.DATA_SUBJECT.value, "system"):
            error = AccessDenied(ctx.actor.role, ctx.purpose, _REQUESTS, Action.READ)
            raise self._vault.authz.denied(session, error, row.customer_id)
        kind = DsrType(row.type)
        if row.status != DsrStatus.COMPLETED.value or kind not in _EXPORTS:
            raise RequestStateError(
                row.id, row.status, "only a completed access or portability request has one"
            )
        return self._fulfilment.export(session, row, kind)

    # -- restriction and legal holds (compliance) ------------------------------------

    def lift_restriction(self, session: Session, customer_id: uuid.UUID) -> None:
        """Processing may go on again (Art. 18(3)); audited."""
        self._require_desk(session, customer_id)
        customer = customer_for_update(session, customer_id)
        if customer.status != _RESTRICTED:
            raise InvalidInput("customerId", "customer is not restricted")
        customer.status = CustomerStatus.ACTIVE.value
        customer.updated_at = self._vault.clock()
        buffer_of(session).add(
            AuditAction.CUSTOMER_UPDATE, customer_id=customer.id, fields={"status": "written"},
            detail={"status": CustomerStatus.ACTIVE.value, "change": "restriction_lifted"},
        )  # fmt: skip

    def place_hold(self, session: Session, customer_id: uuid.UUID, reason: str) -> HoldView:
        """Block erasure of the customer until the hold is lifted; the reason is recorded."""
        self._require_desk(session, customer_id)
        text = reason_text(reason)
        customer = customer_for_update(session, customer_id)
        row = LegalHoldRow(
            id=uuid.uuid4(),
            customer_id=customer.id,
            reason=text,
            placed_by=access_of(session).actor.subject,
            placed_at=self._vault.clock(),
        )
        session.add(row)
        session.flush()
        buffer_of(session).add(
            AuditAction.LEGAL_HOLD, customer_id=customer.id, fields={_REQUESTS: "written"},
            detail={"hold": str(row.id), "change": "placed"},
        )  # fmt: skip
        return hold_view(row)

    def lift_hold(self, session: Session, hold_id: uuid.UUID) -> HoldView:
        self._require_desk(session)
        row = session.scalar(
            select(LegalHoldRow).where(LegalHoldRow.id == hold_id).with_for_update()
        )
        if row is None:
            raise RequestNotFound(hold_id, "legal hold")
        if row.lifted_at is not None:
            raise InvalidInput("holdId", "the legal hold is lifted already")
        row.lifted_at = self._vault.clock()
        row.lifted_by = access_of(session).actor.subject
        session.flush()
        buffer_of(session).add(
            AuditAction.LEGAL_HOLD, customer_id=row.customer_id, fields={_REQUESTS: "written"},
            detail={"hold": str(row.id), "change": "lifted"},
        )  # fmt: skip
        return hold_view(row)

    def holds(self, session: Session, customer_id: uuid.UUID) -> builtins.list[HoldView]:
        """Every legal hold of the customer, active and lifted, oldest first."""
        self._require_desk(session, customer_id)
        self._vault.authz.check_reads(session, _REQUESTS, customer_id)
        rows = session.scalars(
            select(LegalHoldRow)
            .where(LegalHoldRow.customer_id == customer_id)
            .order_by(LegalHoldRow.placed_at, LegalHoldRow.id)
        ).all()
        buffer_of(session).read(customer_id, {_REQUESTS: "clear"})
        return [hold_view(r) for r in rows]

    # -- reads ----------------------------------------------------------------------

    def get(self, session: Session, request_id: uuid.UUID) -> DsrView:
        """One request with its history and whether it is overdue."""
        row = self._load(session, request_id, write=False)
        buffer_of(session).read(row.customer_id, {_REQUESTS: "clear"})
        return self._history.view(session, row)

    def list(
        self,
        session: Session,
        *,
        status: str | None = None,
        overdue: bool | None = None,
        request_type: str | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Page[DsrView]:
        """Requests by due date, most urgent first, in either direction (20 by default):
        every request for compliance, a data subject's own for a data subject."""
        self._vault.authz.check_reads(session, _REQUESTS)
        window = Window.of(first=first, after=after, last=last, before=before, default=20)
        stmt = self._listed(session, status, overdue, request_type)
        r = DsrRequestRow
        rows = keyset_rows(
            session, stmt, (r.due_at, r.id), listing=REQUESTS, handles=self._vault.handles,
            window=window, key=lambda row: (row[0].due_at, row[0].id),
        )  # fmt: skip
        shown = [row[0] for row in rows.items]
        events = self._history.events(session, [row.id for row in shown])
        now = self._vault.clock()
        items = [request_view(row, events.get(row.id, []), now) for row in shown]
        for customer_id in dict.fromkeys(row.customer_id for row in shown):
            buffer_of(session).read(customer_id, {_REQUESTS: "clear"})
        return rows.with_items(items)

    def count(
        self,
        session: Session,
        *,
        status: str | None = None,
        overdue: bool | None = None,
        request_type: str | None = None,
    ) -> int:
        """How many requests :meth:`list` holds under these filters for the caller,
        without reading any: audited as one ``dsr.count`` entry with the number."""
        self._vault.authz.check_reads(session, _REQUESTS)
        stmt = self._listed(session, status, overdue, request_type).subquery()
        found = int(session.scalar(select(func.count()).select_from(stmt)) or 0)
        buffer_of(session).add(AuditAction.DSR_COUNT, detail={"count": found})
        return found

    def _listed(
        self, session: Session, status: str | None, overdue: bool | None, request_type: str | None
    ) -> Select[Any]:
        """The requests the caller may list under the filters, unordered."""
        actor = access_of(session).actor
        if actor.role == Role.DATA_SUBJECT.value and actor.customer_id is None:
            raise self._vault.authz.denied(
                session,
                AccessDenied(actor.role, access_of(session).purpose, _REQUESTS, Action.READ),
            )
        owner = actor.customer_id if actor.role == Role.DATA_SUBJECT.value else None
        return listed_requests(
            owner=owner, status=status, overdue=overdue, request_type=request_type,
            now=self._vault.clock(),
        )  # fmt: skip

    def overdue_count(self, session: Session) -> int:
        """How many open requests are past their due date: a count, no request read (the
        ``cvault_dsr_requests_overdue`` metric)."""
        self._vault.authz.check_reads(session, _REQUESTS)
        r = DsrRequestRow
        late = and_(r.status.not_in([s.value for s in CLOSED]), r.due_at < self._vault.clock())
        return int(session.scalar(select(func.count()).select_from(r).where(late)) or 0)

    # -- helpers --------------------------------------------------------------------

    def _load(self, session: Session, request_id: uuid.UUID, *, write: bool) -> DsrRequestRow:
        """The request, after the caller's policy grant and ownership are checked."""
        authz = self._vault.authz
        if write:
            authz.check_writes(session, [_REQUESTS])
        else:
            authz.check_reads(session, _REQUESTS)
        stmt = select(DsrRequestRow).where(DsrRequestRow.id == request_id)
        row = session.scalar(stmt.with_for_update() if write else stmt)
        if row is None:
            raise RequestNotFound(request_id)
        authz.check_owner(session, row.customer_id)
        return row

    def _require_desk(self, session: Session, customer_id: uuid.UUID | None = None) -> None:
        """Compliance steps: a write grant on data requests, and not the data subject."""
        authz = self._vault.authz
        authz.check_writes(session, [_REQUESTS], customer_id)
        ctx = access_of(session)
        if ctx.actor.role == Role.DATA_SUBJECT.value:
            error = AccessDenied(ctx.actor.role, ctx.purpose, _REQUESTS, Action.WRITE)
            raise authz.denied(session, error, customer_id)

    def _refused(self, session: Session, row: DsrRequestRow, rule: str) -> VerificationFailed:
        return self._vault.authz.denied(session, VerificationFailed(row.id, rule), row.customer_id)

    def _count_failed_attempt(self, session: Session, request_id: uuid.UUID) -> None:
        """Count a wrong token once the unit has ended, even though the unit rolls back."""
        actor = access_of(session).actor.subject
        db, clock = self._vault.db, self._vault.clock

        def count() -> None:
            with db.transaction() as own:
                row = own.scalar(
                    select(DsrRequestRow).where(DsrRequestRow.id == request_id).with_for_update()
                )
                if row is None or row.status != DsrStatus.RECEIVED.value:
                    return
                row.verification_attempts = (row.verification_attempts or 0) + 1
                tries = f"{row.verification_attempts} of {MAX_VERIFICATION_ATTEMPTS}"
                own.add(
                    DsrEventRow(
                        request_id=request_id, at=clock(), status=row.status, actor=actor,
                        note=f"wrong verification token ({tries})",
                    )
                )  # fmt: skip

        session.info["cvault.after_unit"].append(count)
