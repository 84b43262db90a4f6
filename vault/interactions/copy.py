"""Storing a validated batch of interaction rows, skipping external ids already stored:
binary ``COPY`` into PostgreSQL (through a staging table with ``ON CONFLICT DO NOTHING``
when a concurrent writer got there first), ``INSERT ... ON CONFLICT DO NOTHING`` on
SQLite. The rows arrive ready: ids, owners and encrypted payloads are set by the
service, as tuples in :data:`COLUMNS` order (no dict per row on the hot path)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vault.storage.models import InteractionRow

__all__ = ["COLUMNS", "copy_insert_postgresql", "copy_rows_postgresql", "insert_rows"]

COLUMNS = (
    "id", "customer_id", "channel", "type", "occurred_at", "amount_minor", "currency",
    "external_id", "payload_ct", "recorded_at",
)  # fmt: skip
_EXTERNAL_ID = COLUMNS.index("external_id")
_COPY_TYPES = (
    "uuid", "uuid", "varchar", "varchar", "timestamptz", "int8", "varchar", "varchar",
    "bytea", "timestamptz",
)  # fmt: skip
_STAGE = "cvault_interactions_stage"
_LIST = ", ".join(COLUMNS)
# The external ids go as one binary text[] parameter (%b): psycopg's text-format list
# dumper cost more client CPU than the rest of the statement.
_STORED = "SELECT external_id FROM interactions WHERE external_id = ANY(%b)"
_COPY = f"COPY interactions ({_LIST}) FROM STDIN (FORMAT BINARY)"
_COPY_STAGE = f"COPY {_STAGE} ({_LIST}) FROM STDIN (FORMAT BINARY)"

Row = tuple[Any, ...]


def _write(copy: Any, rows: Sequence[Row]) -> None:  # noqa: ANN401 - a psycopg Copy
    copy.set_types(_COPY_TYPES)
    write = copy.write_row
    for row in rows:
        write(row)


def copy_rows_postgresql(conn: Any, rows: Sequence[Row]) -> int:  # noqa: ANN401
    """Insert a batch of :data:`COLUMNS` tuples with COPY on a psycopg connection; return
    how many rows landed.

    External ids already stored are looked up first (one statement) and left out, then
    the rest is copied straight into the table inside a savepoint. If a concurrent writer
    stored one of them in between, the savepoint is rolled back and the batch goes
    through a staging table with ``INSERT ... ON CONFLICT DO NOTHING``.
    """
    import psycopg  # noqa: PLC0415 - only the PostgreSQL path needs the driver

    with conn.cursor() as cur:
        wanted = [r[_EXTERNAL_ID] for r in rows if r[_EXTERNAL_ID] is not None]
        if wanted:
            cur.execute(_STORED, (wanted,))
            stored = {found for (found,) in cur.fetchall()}
            if stored:
                rows = [r for r in rows if r[_EXTERNAL_ID] not in stored]
        if not rows:
            return 0
        try:
            with conn.transaction(), cur.copy(_COPY) as copy:
                _write(copy, rows)
        except psycopg.errors.UniqueViolation:
            pass
        else:
            return len(rows)
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(LIKE interactions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608 - constant identifier
        with cur.copy(_COPY_STAGE) as copy:
            _write(copy, rows)
        cur.execute(
            f"INSERT INTO interactions ({_LIST}) SELECT {_LIST} FROM {_STAGE} "  # noqa: S608
            "ON CONFLICT (external_id) DO NOTHING"
        )
        inserted = int(cur.rowcount)
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608
    return inserted


def copy_insert_postgresql(conn: Any, rows: Sequence[Mapping[str, Any]]) -> int:  # noqa: ANN401
    """:func:`copy_rows_postgresql` for rows given as column -> value mappings."""
    return copy_rows_postgresql(conn, [tuple(r[c] for c in COLUMNS) for r in rows])


def insert_rows(session: Session, rows: Sequence[Row]) -> int:
    """Insert :data:`COLUMNS` tuples, skipping rows whose external id is stored; return
    how many landed."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return copy_rows_postgresql(connection.connection.driver_connection, rows)
    if dialect != "sqlite":  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    table = cast("Table", InteractionRow.__table__)
    stmt: Insert = sqlite_insert(table).on_conflict_do_nothing(index_elements=["external_id"])
    params = [dict(zip(COLUMNS, r, strict=True)) for r in rows]
    return int(connection.execute(stmt, params).rowcount)
