"""Storing a validated batch of interaction rows, skipping external ids already stored:
binary ``COPY`` into PostgreSQL (through a staging table with ``ON CONFLICT DO NOTHING``
when a concurrent writer got there first), ``INSERT ... ON CONFLICT DO NOTHING`` on
SQLite. The rows arrive ready: ids, owners and encrypted payloads are set by the
service."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Insert, Table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from vault.storage.models import InteractionRow

__all__ = ["copy_insert_postgresql", "insert_rows"]

_COLUMNS = (
    "id", "customer_id", "channel", "type", "occurred_at", "amount_minor", "currency",
    "external_id", "payload_ct", "recorded_at",
)  # fmt: skip
_COPY_TYPES = (
    "uuid", "uuid", "varchar", "varchar", "timestamptz", "int8", "varchar", "varchar",
    "bytea", "timestamptz",
)  # fmt: skip
_STAGE = "cvault_interactions_stage"


def copy_insert_postgresql(conn: Any, rows: list[dict[str, Any]]) -> int:  # noqa: ANN401
    """Insert a batch with COPY on a psycopg connection; return how many rows landed.

    External ids already stored are looked up first and left out, then the rest
    is copied straight into the table inside a savepoint. If a concurrent writer
    stored one of them in between, the savepoint is rolled back and the batch
    goes through a staging table with ``INSERT ... ON CONFLICT DO NOTHING``.
    """
    import psycopg  # noqa: PLC0415 - only the PostgreSQL path needs the driver

    columns = ", ".join(_COLUMNS)
    with conn.cursor() as cur:
        wanted = [r["external_id"] for r in rows if r["external_id"] is not None]
        if wanted:
            cur.execute(
                "SELECT external_id FROM interactions WHERE external_id = ANY(%s)", (wanted,)
            )
            stored = {found for (found,) in cur.fetchall()}
            rows = [r for r in rows if r["external_id"] is None or r["external_id"] not in stored]
        if not rows:
            return 0
        try:
            with (
                conn.transaction(),
                cur.copy(f"COPY interactions ({columns}) FROM STDIN (FORMAT BINARY)") as copy,
            ):
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(tuple(row[c] for c in _COLUMNS))
        except psycopg.errors.UniqueViolation:
            pass
        else:
            return len(rows)
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} "
            "(LIKE interactions INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608 - constant identifier
        with cur.copy(f"COPY {_STAGE} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(tuple(row[c] for c in _COLUMNS))
        cur.execute(
            f"INSERT INTO interactions ({columns}) SELECT {columns} FROM {_STAGE} "  # noqa: S608
            "ON CONFLICT (external_id) DO NOTHING"
        )
        inserted = int(cur.rowcount)
        cur.execute(f"DELETE FROM {_STAGE}")  # noqa: S608
    return inserted


def insert_rows(session: Session, rows: list[dict[str, Any]]) -> int:
    """Insert, skipping rows whose external id is stored; return how many landed."""
    if not rows:
        return 0
    connection = session.connection()
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return copy_insert_postgresql(connection.connection.driver_connection, rows)
    if dialect != "sqlite":  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported database dialect {dialect}")
    table = cast("Table", InteractionRow.__table__)
    stmt: Insert = sqlite_insert(table).on_conflict_do_nothing(index_elements=["external_id"])
    return int(connection.execute(stmt, rows).rowcount)
