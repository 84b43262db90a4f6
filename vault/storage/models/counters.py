"""The rate limits' counters when PostgreSQL holds them (``vault.storage.counters``)."""

from __future__ import annotations

from sqlalchemy import Double, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base

__all__ = ["RateLimitCounterRow"]


class RateLimitCounterRow(Base):
    """Hits of one rate limit key in one window. ``key`` names the limit, a keyed digest
    of who is counted (never a token, an address or a contact) and the window's number;
    ``expires_at`` (seconds since the epoch) is when the row stops counting. Operational,
    no customer's data: expired rows are deleted as they are met."""

    __tablename__ = "rate_limit_counters"
    _repr_columns = ("key",)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[float] = mapped_column(Double)
