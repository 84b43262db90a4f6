"""The interactions table: one row per touch point, its payload a field token."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, UTCDateTime, in_enum
from vault.types import Channel

__all__ = ["InteractionRow"]


class InteractionRow(Base):
    """One touch point. ``amount_minor`` is in the currency's minor unit (cents)."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(in_enum("channel", Channel), name="channel"),
        CheckConstraint("(amount_minor IS NULL) = (currency IS NULL)", name="amount_currency"),
        Index("ix_interactions_customer_timeline", "customer_id", "occurred_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"))
    channel: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3))
    external_id: Mapped[str | None] = mapped_column(String(200), unique=True)
    payload_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


# Segment rules read interactions by type and time with the customer and the amount
# (``vault.segments.compile``): with every column they need in one index, PostgreSQL
# answers them with index-only scans instead of a random heap read per interaction.
# Its (type, occurred_at) prefix also serves retention, so no narrower index is kept:
# every index is paid for on each ingested row.
Index(
    "ix_interactions_segment_scan",
    InteractionRow.type,
    InteractionRow.occurred_at,
    InteractionRow.customer_id,
    InteractionRow.channel,
    InteractionRow.currency,
    InteractionRow.amount_minor,
)
