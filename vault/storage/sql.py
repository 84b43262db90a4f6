"""Small SQL helpers shared by the services, written once for both backends."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Uuid, any_, bindparam, exists, func, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["Prepared", "id_in", "id_in_param", "json_array_has", "new_ids"]


def id_in(
    column: InstrumentedAttribute[uuid.UUID], ids: Sequence[uuid.UUID], dialect: str
) -> ColumnElement[bool]:
    """``column IN ids``: one array parameter on PostgreSQL (``= ANY(:ids)``), which
    compiles and binds far faster than a thousand-item IN list."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(ids), type_=ARRAY(Uuid())))
    return column.in_(ids)


def id_in_param(column: InstrumentedAttribute[uuid.UUID], name: str) -> ColumnElement[bool]:
    """``column = ANY(:name)`` with a named uuid-array parameter, for a PostgreSQL
    :class:`Prepared` statement run with a list of ids."""
    return column == any_(bindparam(name, type_=ARRAY(Uuid())))


def json_array_has(column: Any, value: str, dialect: str) -> ColumnElement[bool]:  # noqa: ANN401 - a JSON column or expression
    """The JSON array in ``column`` holds the string ``value`` (e.g. a customer's tags):
    ``@>`` on PostgreSQL's JSONB, ``EXISTS (SELECT FROM json_each(...))`` on SQLite. A
    condition of the statement, so a filter on it runs before a page is cut."""
    if dialect == "postgresql":
        return type_coerce(column, JSONB).contains([value])
    each = func.json_each(column).table_valued("value")
    return exists().select_from(each).where(each.c.value == value)


def new_ids(count: int) -> list[uuid.UUID]:
    """Time-ordered random UUIDs (the UUIDv7 layout: 48-bit milliseconds, version,
    variant, 74 random bits). New rows land at the right edge of the primary-key
    index instead of at random pages."""
    millis = time.time_ns() // 1_000_000
    rand = os.urandom(10 * count)
    out = []
    for i in range(count):
        r = int.from_bytes(rand[10 * i : 10 * i + 10], "big")
        value = (millis << 80) | (0x7 << 76) | ((r >> 68) << 64) | (0b10 << 62) | (r & (2**62 - 1))
        out.append(uuid.UUID(int=value))
    return out


class Prepared:
    """A fixed SELECT on a hot path, with named ``bindparam`` values given at each run.

    On PostgreSQL it is compiled once to psycopg's SQL (IN lists expanded) and run with
    ``exec_driver_sql``: SQLAlchemy's per-execution work on a Core statement (walking it
    for its cache key, result processing) cost more than the round trip, and psycopg
    already returns the Python types of these columns (UUID, aware datetimes, bytes,
    parsed JSON). The rows keep the statement's labels as their attribute names. On
    SQLite the statement runs through the session as usual (UUIDs and datetimes need
    SQLAlchemy's result processing there).
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._postgresql: tuple[str, dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return "Prepared()"

    def rows(self, session: Session, params: dict[str, Any]) -> list[Row[*tuple[Any, ...]]]:
        conn = session.connection()
        if conn.dialect.name != "postgresql":
            return list(session.execute(self.statement, params).all())
        sql, fixed = self._postgresql or self._compile(conn.dialect)
        return list(conn.exec_driver_sql(sql, {**fixed, **params}).all())

    def _compile(self, dialect: Dialect) -> tuple[str, dict[str, Any]]:
        compiled = self.statement.compile(dialect=dialect)
        # The caller's parameters are the ones without a value in the statement; the
        # others are the statement's own literal values (e.g. an IN list, expanded).
        given = {b.key for b in compiled.binds.values() if b.required}
        expanded = compiled.construct_expanded_state(dict.fromkeys(given))
        fixed = {k: v for k, v in expanded.parameters.items() if k not in given}
        statement = expanded.statement
        # Array parameters (a batch's ids) go in binary: psycopg's text-format list
        # dumper costs ~1 us per element in Python, the binary one a fraction of it.
        for bind in compiled.binds.values():
            if bind.required and isinstance(bind.type, ARRAY):
                statement = statement.replace(f"%({bind.key})s", f"%({bind.key})b")
        self._postgresql = (statement, fixed)
        return self._postgresql
