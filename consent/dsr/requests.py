"""Data subject requests: the vocabulary the desk (:mod:`consent.dsr.desk`), its helpers
and the export bundle (:mod:`consent.dsr.export`) share: inputs, views, errors, the
due-date rule and the listing of requests (its filters and its order).

Views carry ids, times, enum words and the desk's own notes (reasons written by
a compliance officer). What a request asks for (the new values of a
rectification) is sealed in the database and never part of a view.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import Select, and_, not_, select

from vault.errors import InvalidInput, VaultError
from vault.keyset import KeyPart, Listing
from vault.storage.models import DsrEventRow, DsrRequestRow, LegalHoldRow
from vault.text import check_text, check_word
from vault.types import DsrStatus, DsrType

__all__ = [
    "CLOSED",
    "MAX_VERIFICATION_ATTEMPTS",
    "REQUESTS",
    "DsrEvent",
    "DsrInput",
    "DsrView",
    "HoldView",
    "RequestNotFound",
    "RequestStateError",
    "VerificationFailed",
    "add_months",
    "awaits_approval",
    "hold_view",
    "listed_requests",
    "reason_text",
    "request_view",
]

MAX_VERIFICATION_ATTEMPTS = 5
MAX_REASON = 1000  # characters of a rejection, extension or hold reason
CLOSED = frozenset({DsrStatus.COMPLETED, DsrStatus.REJECTED})
# Requests by due date, most urgent first, ties broken by id.
REQUESTS: Final = Listing("dsr_requests", (KeyPart.TIME, KeyPart.UUID))


class RequestNotFound(VaultError):
    code = "NOT_FOUND"

    def __init__(self, request_id: uuid.UUID | str, what: str = "data subject request") -> None:
        super().__init__(f"{what} {request_id} not found")
        self.request_id = request_id


class RequestStateError(VaultError):
    """The step does not fit where the request stands (names the id, the status, the rule)."""

    code = "INVALID_STATE"

    def __init__(self, request_id: uuid.UUID, status: str, rule: str) -> None:
        super().__init__(f"request {request_id} is {status}: {rule}")
        self.request_id = request_id
        self.status = status


class VerificationFailed(VaultError):
    """The one-time token is wrong, expired, or too many wrong ones were tried."""

    code = "VERIFICATION_FAILED"

    def __init__(self, request_id: uuid.UUID, rule: str) -> None:
        super().__init__(f"request {request_id}: {rule}")
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class DsrInput:
    """A request to file. ``details``: for a rectification ``{field: new value}`` (PII and
    profile fields; ``None`` clears one), for an objection ``{"scope": ...}``
    (``direct_marketing`` or an objectable purpose); no details for the other types."""

    type: str
    customer_id: uuid.UUID
    details: Mapping[str, Any] | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DsrEvent:
    """One step in a request's history."""

    at: datetime
    status: DsrStatus
    actor: str
    note: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class DsrView:
    """A request as the desk reports it. ``completed_at`` is when it was closed
    (completed or rejected); ``result`` holds counts, field names, the objection's scope
    and the signed erasure receipt, never a PII value."""

    id: uuid.UUID
    customer_id: uuid.UUID
    type: DsrType
    status: DsrStatus
    received_at: datetime
    due_at: datetime
    overdue: bool
    extended_at: datetime | None = field(repr=False)
    extension_reason: str | None = field(repr=False)
    verified_at: datetime | None = field(repr=False)
    completed_at: datetime | None = field(repr=False)
    rejection_reason: str | None = field(repr=False)
    requested_by: str = field(repr=False)
    verification_expires_at: datetime | None = field(repr=False)
    verification_attempts_left: int = field(repr=False)
    result: dict[str, Any] = field(repr=False)
    history: list[DsrEvent] = field(repr=False)


@dataclass(frozen=True, slots=True)
class HoldView:
    """A legal hold; while ``active`` the customer cannot be erased."""

    id: uuid.UUID
    customer_id: uuid.UUID
    reason: str = field(repr=False)
    placed_by: str = field(repr=False)
    placed_at: datetime = field(repr=False)
    lifted_by: str | None = field(repr=False)
    lifted_at: datetime | None = field(repr=False)

    @property
    def active(self) -> bool:
        return self.lifted_at is None


def add_months(when: datetime, months: int) -> datetime:
    """The same time ``months`` calendar months later; a day the month lacks becomes its
    last day (31 January + 1 month = 28 or 29 February)."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def request_view(row: DsrRequestRow, events: list[DsrEventRow], now: datetime) -> DsrView:
    status = DsrStatus(row.status)
    left = MAX_VERIFICATION_ATTEMPTS - (row.verification_attempts or 0)
    return DsrView(
        id=row.id,
        customer_id=row.customer_id,
        type=DsrType(row.type),
        status=status,
        received_at=row.received_at,
        due_at=row.due_at,
        overdue=status not in CLOSED and row.due_at < now,
        extended_at=row.extended_at,
        extension_reason=row.extension_reason,
        verified_at=row.verified_at,
        completed_at=row.completed_at,
        rejection_reason=row.rejection_reason,
        requested_by=row.requested_by,
        verification_expires_at=row.verification_expires_at,
        verification_attempts_left=max(left, 0),
        result=dict(row.result or {}),
        history=[DsrEvent(e.at, DsrStatus(e.status), e.actor, e.note) for e in events],
    )


def hold_view(row: LegalHoldRow) -> HoldView:
    return HoldView(
        id=row.id,
        customer_id=row.customer_id,
        reason=row.reason,
        placed_by=row.placed_by,
        placed_at=row.placed_at,
        lifted_by=row.lifted_by,
        lifted_at=row.lifted_at,
    )


def listed_requests(
    *,
    owner: uuid.UUID | None,
    status: str | None,
    overdue: bool | None,
    request_type: str | None,
    now: datetime,
) -> Select[Any]:
    """The requests under the filters (``owner``: only that customer's), unordered; a
    status or type outside the vocabulary raises :class:`~vault.errors.InvalidInput`."""
    r = DsrRequestRow
    stmt = select(r)
    if owner is not None:
        stmt = stmt.where(r.customer_id == owner)
    if status is not None:
        stmt = stmt.where(r.status == check_word(DsrStatus, status, field="status").value)
    if request_type is not None:
        stmt = stmt.where(r.type == check_word(DsrType, request_type, field="type").value)
    if overdue is not None:
        late = and_(r.status.not_in([s.value for s in CLOSED]), r.due_at < now)
        stmt = stmt.where(late if overdue else not_(late))
    return stmt


def awaits_approval(row: DsrRequestRow) -> bool:
    """Whether an erasure filed on the privacy page still waits for the desk's approval."""
    return (row.result or {}).get("approval") == "pending"


def reason_text(value: str) -> str:
    """A desk action's reason, checked (required, text, at most ``MAX_REASON``)."""
    if not isinstance(value, str):
        raise InvalidInput("reason", "is required")
    return check_text(value, field="reason", max_length=MAX_REASON).strip()
