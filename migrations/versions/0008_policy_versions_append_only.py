"""policy_versions is append-only: triggers refuse UPDATE, DELETE and TRUNCATE

A stored policy version is the record of what was in force when; a hand edit of it
(the only way out of a lockout before ``cvault policy reset``) is no longer possible.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("policy_versions",)


# Frozen copy of vault.storage.models.append_only_ddl at the time of this revision.
def _append_only(dialect: str, table: str) -> list[str]:
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


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _TABLES:
        for statement in _append_only(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _TABLES:
        if dialect == "sqlite":
            for verb in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
        else:
            for name in ("no_change", "no_truncate"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")
