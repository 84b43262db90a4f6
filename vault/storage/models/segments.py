"""The segments' tables: customer metrics, segment definitions, memberships, the
enter/leave outbox, and the webhooks that hear of those events with their deliveries.

No foreign key to ``customers`` here: these rows are derived data that a refresh
rebuilds, and erasure or retention must never be blocked by them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, BigId, JsonType, UTCDateTime

__all__ = [
    "CustomerMetricsRow",
    "SegmentMembershipRow",
    "SegmentOutboxRow",
    "SegmentRow",
    "WebhookDeliveryRow",
    "WebhookRow",
]


class CustomerMetricsRow(Base):
    """A customer's behaviour rollup as of ``computed_at`` (``vault.segments.metrics``):
    what makes history rules index lookups instead of scans. Amounts are minor units of
    ``currency``."""

    __tablename__ = "customer_metrics"
    _repr_columns = ("customer_id",)

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    currency: Mapped[str] = mapped_column(String(3))
    first_interaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_interaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_purchase_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    purchase_count: Mapped[int] = mapped_column(Integer)
    lifetime_value_minor: Mapped[int] = mapped_column(BigInteger)
    frequency: Mapped[int] = mapped_column(Integer)
    monetary_minor: Mapped[int] = mapped_column(BigInteger)
    engagement_score: Mapped[int] = mapped_column(Integer)
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)


class SegmentRow(Base):
    """A segment definition: ``definition`` is the rule document (``vault.segments.rules``).
    A deleted segment keeps its row (``deleted_at``) so its membership history stays."""

    __tablename__ = "segments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    definition: Mapped[dict[str, Any]] = mapped_column(JsonType)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentMembershipRow(Base):
    """One stay of a customer in a segment: a new row per entry, ``left_at`` set on leave."""

    __tablename__ = "segment_memberships"
    __table_args__ = (
        Index("ix_segment_memberships_open", "segment_id", "left_at", "customer_id"),
        Index("ix_segment_memberships_customer", "customer_id", "left_at"),
    )
    _repr_columns = ("segment_id", "customer_id")

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("segments.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SegmentOutboxRow(Base):
    """An enter/leave event, written in the transaction that changed the membership;
    a deliverer sets ``delivered_at``. ``id`` orders events."""

    __tablename__ = "segment_outbox"
    __table_args__ = (
        CheckConstraint("event IN ('entered', 'left')", name="event"),
        Index("ix_segment_outbox_pending", "delivered_at", "id"),
    )
    _repr_columns = ("id", "segment_id")

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("segments.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- webhooks: enter/leave events to signed endpoints (issue 6) -----------------------
# The signing secret is never stored: ``vault.crypto.webhooks`` derives it from the
# keyring, the webhook id and ``secret_version``.


class WebhookRow(Base):
    """An endpoint that hears when customers enter or leave the segments it names, for one
    purpose (it only ever hears of customers that purpose may process)."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(64))
    segment_ids: Mapped[list[str]] = mapped_column(JsonType)
    secret_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(128))
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDeliveryRow(Base):
    """One event for one webhook. ``id`` is the idempotency key the receiver sees on every
    attempt. ``state`` is pending until delivered (2xx), failed (gave up after the last
    attempt) or skipped (the purpose may no longer process the customer, or the webhook
    was disabled). ``last_error`` is a short error class, never a response body."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "outbox_id"),
        CheckConstraint("event IN ('entered', 'left')", name="event"),
        CheckConstraint("state IN ('pending', 'delivered', 'failed', 'skipped')", name="state"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_customer", "customer_id"),
    )
    _repr_columns = ("id", "webhook_id")

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("webhooks.id"))
    outbox_id: Mapped[int] = mapped_column(BigId)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    skipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(64))
