"""The declarative base every table hangs from, and the column types they share.

Owns the constraint naming convention (migrations name constraints the same way), the
UTC datetime type, the JSON type (JSONB on PostgreSQL), the big-integer id type, and
the row ``__repr__`` that shows ids only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

__all__ = ["NAMING_CONVENTION", "Base", "BigId", "JsonType", "UTCDateTime", "in_enum"]

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

# Autoincrementing ids: BIGINT, but INTEGER on SQLite (only INTEGER PRIMARY KEY is its rowid).
BigId = BigInteger().with_variant(Integer, "sqlite")


def in_enum(column: str, values: type[Enum]) -> str:
    """A CHECK expression: ``column`` holds one of the values of an enum."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    """The vault's tables. ``repr()`` of a row shows the columns in ``_repr_columns`` only,
    which are ids and names, never a PII column."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    _repr_columns: ClassVar[tuple[str, ...]] = ("id",)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={_shown(getattr(self, name))}" for name in self._repr_columns)
        return f"{type(self).__name__}({shown})"


def _shown(value: object) -> str:
    """Strings quoted, ids (UUIDs, integers) bare."""
    return repr(value) if isinstance(value, str) else str(value)
