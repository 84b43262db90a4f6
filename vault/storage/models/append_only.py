"""Append-only tables: the triggers that make a table refuse UPDATE and DELETE.

The audit trail, the consent ledger, the policy versions and the trusted documents mark
their tables with :func:`append_only`; ``APPEND_ONLY_TABLES`` names them all (the
application role's grants and the migration tests read it). The DDL is kept in step
with migrations 0002, 0004 (0014 for the consent ledger), 0008 and 0011.

One exception, for retention only: a consent event may be deleted once a later event of
the same customer and purpose exists (it is superseded: the latest event, the proof of
the consent in force, can never be deleted), and only inside a transaction that
retention has unlocked with :func:`retention_unlocked` (PostgreSQL: the transaction-local
setting ``cvault.retention = 'on'``, gone at commit or rollback; SQLite: a row in
``retention_unlocks``, inserted and deleted in the same transaction, which SQLite's
single writer keeps from every other connection). UPDATE and TRUNCATE stay refused, and
so does every other DELETE. The unlock guards against accidents and keeps the current
proof, not against a holder of the application role bent on deleting history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Integer, Table, event, text
from sqlalchemy.orm import Mapped, mapped_column

from vault.storage.models.base import Base

__all__ = [
    "APPEND_ONLY_TABLES",
    "RetentionUnlockRow",
    "append_only",
    "append_only_ddl",
    "retention_unlocked",
]

APPEND_ONLY_TABLES = (
    "audit_entries",
    "audit_log",
    "audit_checkpoints",
    "consent_events",
    "policy_versions",
    "trusted_documents",
    "trusted_document_events",
)

_Row = TypeVar("_Row", bound=type[Base])

# A consent event with a later event of the same customer and purpose (``OLD`` is the row).
_SUPERSEDED = (
    "EXISTS (SELECT 1 FROM consent_events AS later WHERE later.customer_id = OLD.customer_id "
    "AND later.purpose = OLD.purpose AND (later.occurred_at > OLD.occurred_at OR "
    "(later.occurred_at = OLD.occurred_at AND later.seq > OLD.seq)))"
)


class RetentionUnlockRow(Base):
    """SQLite only: a row here, inside retention's own transaction, lets it delete
    superseded consent events (see the module docstring); never committed."""

    __tablename__ = "retention_unlocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


@contextmanager
def retention_unlocked(connection: Connection) -> Iterator[None]:
    """Within the connection's open transaction, let superseded consent events be
    deleted; locked again before the block returns (and at commit or rollback anyway)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT set_config('cvault.retention', 'on', true)"))
        try:
            yield
        finally:
            connection.execute(text("SELECT set_config('cvault.retention', 'off', true)"))
        return
    connection.execute(text("INSERT INTO retention_unlocks (id) VALUES (1)"))
    try:
        yield
    finally:
        connection.execute(text("DELETE FROM retention_unlocks"))


def append_only_ddl(dialect: str, table: str) -> list[str]:
    """Statements that make ``table`` refuse UPDATE, DELETE (and TRUNCATE on PostgreSQL).

    On PostgreSQL the triggers are ``ENABLE ALWAYS``, so ``session_replication_role =
    replica`` does not switch them off. Kept in step with migration 0002.
    """
    ledger = table == "consent_events"  # superseded events: deletable by retention
    if dialect == "sqlite":
        unlocked = f"EXISTS (SELECT 1 FROM retention_unlocks) AND {_SUPERSEDED}"  # noqa: S608 - constants
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            + (f"WHEN NOT ({unlocked}) " if ledger and op == "DELETE" else "")
            + f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]
    guard = "cvault_refuse_consent_change" if ledger else "cvault_refuse_change"
    return [
        "CREATE OR REPLACE FUNCTION cvault_refuse_change() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only', "
        "ERRCODE = 'insufficient_privilege'; END $$",
        *(
            [
                "CREATE OR REPLACE FUNCTION cvault_refuse_consent_change() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN IF TG_OP = 'DELETE' AND "
                f"current_setting('cvault.retention', true) = 'on' AND {_SUPERSEDED} "
                "THEN RETURN OLD; END IF; RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || "
                "' is append-only', ERRCODE = 'insufficient_privilege'; END $$"
            ]
            if ledger
            else []
        ),
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {guard}()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION cvault_refuse_change()",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
    ]


def _install_append_only(target: Table, connection: Connection, **_: Any) -> None:  # noqa: ANN401
    for statement in append_only_ddl(connection.dialect.name, target.name):
        connection.exec_driver_sql(statement)


def append_only(row: _Row) -> _Row:
    """Class decorator: the row's table gets the append-only triggers when it is created.

    The table must be one of ``APPEND_ONLY_TABLES``, so that list stays complete.
    """
    table = cast(Table, row.__table__)
    if table.name not in APPEND_ONLY_TABLES:
        raise ValueError(f"{table.name} is not listed in APPEND_ONLY_TABLES")
    event.listen(table, "after_create", _install_append_only)
    return row
