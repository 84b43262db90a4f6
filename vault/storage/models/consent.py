"""The consent ledger's and the data subject rights' tables: consent events (append-only)
and the state derived from them, objections, legal holds, and data subject requests with
their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.append_only import append_only
from vault.storage.models.base import Base, BigId, JsonType, UTCDateTime

__all__ = [
    "ConsentEventRow",
    "ConsentStateRow",
    "DsrEventRow",
    "DsrRequestRow",
    "LegalHoldRow",
    "ObjectionRow",
]


@append_only
class ConsentEventRow(Base):
    """One change of a customer's consent to one purpose (append-only).

    Evidence is kept as keyed pseudonyms of the user agent and client address,
    never the values; ``receipt`` is the signed consent receipt (JSON). ``seq`` orders
    events recorded in the same instant."""

    __tablename__ = "consent_events"
    __table_args__ = (
        Index("ix_consent_events_customer_purpose", "customer_id", "purpose", "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_channel: Mapped[str] = mapped_column(String(16))
    notice_version: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    evidence_user_agent: Mapped[str | None] = mapped_column(String(64))
    evidence_address: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    request_id: Mapped[str] = mapped_column(String(64))
    receipt: Mapped[str] = mapped_column(Text)


class ConsentStateRow(Base):
    """The current consent of a customer to a purpose, derived from its latest event."""

    __tablename__ = "consent_state"
    __table_args__ = (Index("ix_consent_state_purpose_state", "purpose", "state", "customer_id"),)
    _repr_columns = ("customer_id", "purpose")

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class ObjectionRow(Base):
    """An objection (Art. 21): to direct marketing as a whole, or to one purpose."""

    __tablename__ = "objections"
    _repr_columns = ("customer_id", "scope")

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    objected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class LegalHoldRow(Base):
    """A legal hold: while one is active, the customer cannot be erased."""

    __tablename__ = "legal_holds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lifted_by: Mapped[str | None] = mapped_column(String(128))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DsrRequestRow(Base):
    """A data subject request and where it stands. ``details_ct`` (what to rectify, which
    objection) is sealed under the customer's data key; ``result`` holds counts and
    receipts, never a PII value."""

    __tablename__ = "dsr_requests"
    __table_args__ = (Index("ix_dsr_requests_status_due", "status", "due_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    verification_hash: Mapped[str | None] = mapped_column(String(64))
    verification_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verification_attempts: Mapped[int] = mapped_column(Integer, default=0)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(128))
    details_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    result: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class DsrEventRow(Base):
    """One step in a request's history (received, verified, extended, completed, ...)."""

    __tablename__ = "dsr_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    request_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("dsr_requests.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
