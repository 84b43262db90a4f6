"""Append-only tables: the triggers that make a table refuse UPDATE and DELETE.

The audit trail, the consent ledger, the policy versions and the trusted documents mark
their tables with :func:`append_only`; ``APPEND_ONLY_TABLES`` names them all (the
application role's grants and the migration tests read it). The DDL is kept in step
with migrations 0002, 0004, 0008 and 0011.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Table, event

from vault.storage.models.base import Base

__all__ = ["APPEND_ONLY_TABLES", "append_only", "append_only_ddl"]

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


def append_only(row: _Row) -> _Row:
    """Class decorator: the row's table gets the append-only triggers when it is created.

    The table must be one of ``APPEND_ONLY_TABLES``, so that list stays complete.
    """
    table = cast(Table, row.__table__)
    if table.name not in APPEND_ONLY_TABLES:
        raise ValueError(f"{table.name} is not listed in APPEND_ONLY_TABLES")
    event.listen(table, "after_create", _install_append_only)
    return row
