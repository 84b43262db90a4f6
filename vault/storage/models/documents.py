"""The trusted documents' tables: each GraphQL document once, by its SHA-256, and the
events that register and revoke it. Both are append-only: a document is the record of
what clients were allowed to send, and its events say who allowed or revoked it when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.append_only import append_only
from vault.storage.models.base import Base, BigId, UTCDateTime

__all__ = ["TrustedDocumentEventRow", "TrustedDocumentRow"]


@append_only
class TrustedDocumentRow(Base):
    """A GraphQL document, whole, under the lower-case hex SHA-256 of its UTF-8 text.
    ``operation_type`` is ``query``, ``mutation``, ``subscription`` or ``mixed`` (a
    document of several operations of different types); ``operation_name`` is the name of
    its only operation (null when it has several, or none)."""

    __tablename__ = "trusted_documents"
    __table_args__ = (
        CheckConstraint(
            "operation_type IN ('query', 'mutation', 'subscription', 'mixed')",
            name="operation_type",
        ),
    )
    _repr_columns = ("sha256",)

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    operation_type: Mapped[str] = mapped_column(String(16))
    operation_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


@append_only
class TrustedDocumentEventRow(Base):
    """A document registered (under the id its manifest gave it, ``client_id``: a Relay
    MD5, a SHA-1 or the SHA-256 itself) or revoked, by whom and when. A document is
    trusted while its newest event is a registration. ``manifest`` is the SHA-256 of the
    sorted ids of the manifest that registered it (the audit entry names the same)."""

    __tablename__ = "trusted_document_events"
    __table_args__ = (CheckConstraint("action IN ('registered', 'revoked')", name="action"),)
    _repr_columns = ("id", "sha256")

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("trusted_documents.sha256"), index=True
    )
    action: Mapped[str] = mapped_column(String(16))
    client_id: Mapped[str | None] = mapped_column(String(80), index=True)
    manifest: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
