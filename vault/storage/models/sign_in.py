"""The pages' sign-in tables: one-time sign-in codes (digests only) and page sessions
(a digest of each session token; sign-out and erasure revoke them here)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, UTCDateTime

__all__ = ["PageSessionRow", "SignInCodeRow"]


class SignInCodeRow(Base):
    """A one-time sign-in code sent to a customer's email or phone on record.

    ``code_digest`` is a keyed MAC of the code and the row id, never the code;
    ``browser_digest`` ties the code to the browser that asked for it. A code is spent
    (``used_at``), or invalidated (``invalidated_at``: a newer code, too many wrong
    tries, erasure), or expires at ``expires_at``."""

    __tablename__ = "sign_in_codes"
    __table_args__ = (
        CheckConstraint("channel IN ('email', 'phone')", name="channel"),
        Index("ix_sign_in_codes_browser_digest", "browser_digest", "created_at"),
    )
    _repr_columns = ("id", "customer_id")

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    browser_digest: Mapped[str] = mapped_column(String(64))
    code_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    invalidated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PageSessionRow(Base):
    """A signed-in browser session of the pages. ``kind`` is ``privacy`` (a customer,
    ``customer_id`` set) or ``console`` (staff: ``subject`` and ``role``). The browser
    holds the token; the database its keyed digest. A session ends when idle longer than
    its kind allows, at ``expires_at``, or when revoked (sign-out, erasure)."""

    __tablename__ = "page_sessions"
    __table_args__ = (CheckConstraint("kind IN ('privacy', 'console')", name="kind"),)
    _repr_columns = ("id", "kind")

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    token_digest: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customers.id"), index=True
    )
    subject: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
