"""The audit trail's tables (append-only): entries, the sequencer's queue, the log order
with its leaf hashes, and the signed checkpoints."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.append_only import append_only
from vault.storage.models.base import Base, BigId, UTCDateTime

__all__ = ["AuditCheckpointRow", "AuditEntryRow", "AuditLogRow", "AuditPendingRow"]


@append_only
class AuditEntryRow(Base):
    """An audit entry: its canonical bytes, plus a few columns to filter on."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)

    # Each index costs on every append: only those a query of ours uses (migration 0018,
    # docs/audit-verification.md "Indexes"): access history and search by customer,
    # newest first; the alert detector's hour windows per actor.
    __table_args__ = (
        Index("ix_audit_entries_customer", "customer_id", "id"),
        Index("ix_audit_entries_actor_time", "actor", "recorded_at"),
    )


class AuditPendingRow(Base):
    """Entries written but not yet given a log position (the sequencer's queue)."""

    __tablename__ = "audit_pending"
    _repr_columns = ("entry_pk",)

    # No foreign key (it was checked row by row on every append): the only writer inserts
    # the ids the entry insert returned, in the same statement (PostgreSQL) or transaction
    # (SQLite); entries are append-only, never deleted; the sequencer refuses a queue row
    # that names no entry (AuditQueueBroken).
    entry_pk: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)


@append_only
class AuditLogRow(Base):
    """Log order: position n holds one entry and its RFC 6962 leaf hash."""

    __tablename__ = "audit_log"
    _repr_columns = ("position",)

    position: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    entry_pk: Mapped[int] = mapped_column(BigId, ForeignKey("audit_entries.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)


@append_only
class AuditCheckpointRow(Base):
    """A signed tree head (C2SP signed note) and the tree's right edge to extend it."""

    __tablename__ = "audit_checkpoints"
    _repr_columns = ("tree_size",)

    tree_size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
