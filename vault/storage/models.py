"""SQLAlchemy models. PII columns hold field tokens (``*_ct``) and blind indexes only.

Every table carries the customer id, so a customer's rows can live together on
a sharded cluster. ``__repr__`` shows ids only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Connection,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vault.types import Channel, CustomerStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: type[Channel] | type[CustomerStatus]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={getattr(self, 'id', '?')})"


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(_in("status", CustomerStatus), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.ACTIVE.value)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customers.id"), nullable=True, index=True
    )
    locale: Mapped[str | None] = mapped_column(String(35))
    tier: Mapped[str | None] = mapped_column(String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_bidx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    phone_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    first_name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    birth_date_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A tombstone after erasure: when, and by which data subject request.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erasure_request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class CustomerExternalIdRow(Base):
    """An id the customer has in a source system (shop, CRM, POS)."""

    __tablename__ = "customer_external_ids"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)

    def __repr__(self) -> str:
        return f"CustomerExternalIdRow(source={self.source!r}, customer_id={self.customer_id})"


class DataKeyRow(Base):
    """A customer's wrapped data key. Destroying it (crypto-shredding) nulls the blob."""

    __tablename__ = "data_keys"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    key_id: Mapped[int] = mapped_column(Integer)
    kek_version: Mapped[int | None] = mapped_column(Integer, index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"DataKeyRow(customer_id={self.customer_id}, kek_version={self.kek_version})"


class InteractionRow(Base):
    """One touch point. ``amount_minor`` is in the currency's minor unit (cents)."""

    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(_in("channel", Channel), name="channel"),
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


# -- audit trail (append-only) ------------------------------------------------------

BigId = BigInteger().with_variant(Integer, "sqlite")


class AuditEntryRow(Base):
    """An audit entry: its canonical bytes, plus a few columns to filter on."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)


class AuditPendingRow(Base):
    """Entries written but not yet given a log position (the sequencer's queue)."""

    __tablename__ = "audit_pending"

    entry_pk: Mapped[int] = mapped_column(
        BigId, ForeignKey("audit_entries.id"), primary_key=True, autoincrement=False
    )

    def __repr__(self) -> str:
        return f"AuditPendingRow(entry_pk={self.entry_pk})"


class AuditLogRow(Base):
    """Log order: position n holds one entry and its RFC 6962 leaf hash."""

    __tablename__ = "audit_log"

    position: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    entry_pk: Mapped[int] = mapped_column(BigId, ForeignKey("audit_entries.id"), unique=True)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary)

    def __repr__(self) -> str:
        return f"AuditLogRow(position={self.position})"


class AuditCheckpointRow(Base):
    """A signed tree head (C2SP signed note) and the tree's right edge to extend it."""

    __tablename__ = "audit_checkpoints"

    tree_size: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    frontier: Mapped[bytes] = mapped_column(LargeBinary)
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"AuditCheckpointRow(tree_size={self.tree_size})"


# -- consent ledger and data subject rights ----------------------------------------


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

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid)

    def __repr__(self) -> str:
        return f"ConsentStateRow(customer_id={self.customer_id}, purpose={self.purpose!r})"


class ObjectionRow(Base):
    """An objection (Art. 21): to direct marketing as a whole, or to one purpose."""

    __tablename__ = "objections"

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    objected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    def __repr__(self) -> str:
        return f"ObjectionRow(customer_id={self.customer_id}, scope={self.scope!r})"


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


APPEND_ONLY_TABLES = ("audit_entries", "audit_log", "audit_checkpoints", "consent_events")


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """Statements that make ``table`` refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL).

    On PostgreSQL the triggers are ``ENABLE ALWAYS``, so ``session_replication_role =
    replica`` does not switch them off. Kept in step with migration 0002.
    """
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]
    return [
        "CREATE OR REPLACE FUNCTION cvault_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION cvault_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION cvault_refuse_change()",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
    ]


def _install_append_only(target: Table, connection: Connection, **_: Any) -> None:  # noqa: ANN401
    for statement in append_only_ddl(connection.dialect.name, target.name):
        connection.exec_driver_sql(statement)


for _name in APPEND_ONLY_TABLES:
    event.listen(Base.metadata.tables[_name], "after_create", _install_append_only)


class PolicyVersionRow(Base):
    """Every version of the access policy, whole; the newest one is in force."""

    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    lines: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"PolicyVersionRow(version={self.version})"


# -- segments and customer metrics (issue 6) ----------------------------------------
# No foreign key to ``customers`` here: these rows are derived data that a refresh
# rebuilds, and erasure or retention must never be blocked by them.


class CustomerMetricsRow(Base):
    """A customer's behaviour rollup as of ``computed_at`` (``vault.segments.metrics``):
    what makes history rules index lookups instead of scans. Amounts are minor units of
    ``currency``."""

    __tablename__ = "customer_metrics"

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

    def __repr__(self) -> str:
        return f"CustomerMetricsRow(customer_id={self.customer_id})"


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

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("segments.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        ids = f"segment_id={self.segment_id}, customer_id={self.customer_id}"
        return f"SegmentMembershipRow({ids})"


class SegmentOutboxRow(Base):
    """An enter/leave event, written in the transaction that changed the membership;
    a deliverer sets ``delivered_at``. ``id`` orders events."""

    __tablename__ = "segment_outbox"
    __table_args__ = (
        CheckConstraint("event IN ('entered', 'left')", name="event"),
        Index("ix_segment_outbox_pending", "delivered_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("segments.id"))
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"SegmentOutboxRow(id={self.id}, segment_id={self.segment_id})"


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

    def __repr__(self) -> str:
        return f"WebhookDeliveryRow(id={self.id}, webhook_id={self.webhook_id})"


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
