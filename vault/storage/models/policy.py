"""The access policy's table: every version, whole; the newest one is in force."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.append_only import append_only
from vault.storage.models.base import Base, UTCDateTime

__all__ = ["PolicyVersionRow"]


@append_only
class PolicyVersionRow(Base):
    """Every version of the access policy, whole; the newest one is in force. Append-only:
    a version, once stored, is the record of what was in force from then on."""

    __tablename__ = "policy_versions"
    _repr_columns = ("version",)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lines: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
