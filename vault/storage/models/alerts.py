"""The access anomaly detector's tables: the alerts it raised (one per kind, principal
and hour, with the state of their delivery to the security endpoint) and how far into
the ordered audit log it has read. No customer id, no PII: a principal is a token
subject or a system actor."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, UTCDateTime

__all__ = ["AccessAlertRow", "AlertScanRow"]


class AccessAlertRow(Base):
    """One alert: raised once per (kind, principal, hour), whatever the scans that see it."""

    __tablename__ = "access_alerts"
    __table_args__ = (
        UniqueConstraint("kind", "principal", "hour"),
        CheckConstraint(
            "kind IN ('distinct_customers', 'refusals', 'export_off_hours')", name="kind"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    principal: Mapped[str] = mapped_column(String(128))
    hour: Mapped[datetime] = mapped_column(UTCDateTime)  # the UTC hour the count covers
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
    baseline: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Delivery to CVAULT_SECURITY_WEBHOOK_URL: at least once, retried with backoff.
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(64))


class AlertScanRow(Base):
    """The detector's high-water mark: the last audit log position it has scanned."""

    __tablename__ = "alert_scans"
    _repr_columns = ("name",)

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_position: Mapped[int] = mapped_column(BigInteger)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime)
