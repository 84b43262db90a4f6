"""The customer tables: the customer record (PII as field tokens and blind indexes), the
ids it has in source systems, and its wrapped data key (crypto-shredding nulls it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base, JsonType, UTCDateTime, in_enum
from vault.types import CustomerStatus

__all__ = ["CustomerExternalIdRow", "CustomerRow", "DataKeyRow"]

# JSON where Python's None is SQL NULL (not the JSON value null).
_NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class CustomerRow(Base):
    __tablename__ = "customers"
    __table_args__ = (CheckConstraint(in_enum("status", CustomerStatus), name="status"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=CustomerStatus.ACTIVE.value)
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("customers.id"), nullable=True, index=True
    )
    locale: Mapped[str | None] = mapped_column(String(35))
    tier: Mapped[str | None] = mapped_column(String(64), index=True)
    tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # The PII custom attributes: name -> field token (base64), each sealed under the
    # customer's data key for the field "attr:<name>". Null when there are none.
    sealed_attributes: Mapped[dict[str, str] | None] = mapped_column(_NullableJson, nullable=True)
    email_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_bidx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    phone_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    first_name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    last_name_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    birth_date_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_ct: Mapped[bytes | None] = mapped_column(LargeBinary)
    # A blind index of the normalised full name and birth date together: duplicate
    # candidates (see ``vault.customers.duplicates``). Null unless all three are known.
    match_bidx: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # A tombstone after erasure: when, and by which data subject request.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    erasure_request_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Grows by one with every change of the row (update, merge, erasure, rectification,
    # restriction, attribute sealing): the ORM writes it as a compare-and-set, ``UPDATE
    # ... WHERE id = :id AND version = :seen``, so a write based on a stale read fails
    # (StaleDataError) instead of overwriting. Bulk statements bump it themselves.
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class CustomerExternalIdRow(Base):
    """An id the customer has in a source system (shop, CRM, POS)."""

    __tablename__ = "customer_external_ids"
    _repr_columns = ("source", "customer_id")

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customers.id"), index=True)


class DataKeyRow(Base):
    """A customer's wrapped data key. Destroying it (crypto-shredding) nulls the blob."""

    __tablename__ = "data_keys"
    _repr_columns = ("customer_id", "kek_version")

    customer_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("customers.id"), primary_key=True
    )
    key_id: Mapped[int] = mapped_column(Integer)
    kek_version: Mapped[int | None] = mapped_column(Integer, index=True)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rewrapped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
