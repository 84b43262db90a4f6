"""consent events: retention may delete superseded events (retention_unlocks, new guard)

The consent ledger stays append-only for everyone, with one exception: inside a
transaction retention has unlocked (PostgreSQL: ``cvault.retention = 'on'``, set
local; SQLite: a row in ``retention_unlocks``, never committed) an event that a later
event of the same customer and purpose supersedes may be deleted. The latest event of
each customer and purpose can never be; UPDATE and TRUNCATE stay refused.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("consent_events",)
_SUPERSEDED = (
    "EXISTS (SELECT 1 FROM consent_events AS later WHERE later.customer_id = OLD.customer_id "
    "AND later.purpose = OLD.purpose AND (later.occurred_at > OLD.occurred_at OR "
    "(later.occurred_at = OLD.occurred_at AND later.seq > OLD.seq)))"
)


# Frozen copy of vault.storage.models.append_only_ddl for consent_events at this revision.
def _append_only(dialect: str, table: str) -> list[str]:
    ledger = table == "consent_events"
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


# The triggers as migration 0004 installed them, for the downgrade.
def _refuse_all(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for op in ("UPDATE", "DELETE")
        ]
    return [
        f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION cvault_refuse_change()",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION cvault_refuse_change()",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_change",
        f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_no_truncate",
    ]


def _drop_triggers(dialect: str, table: str) -> None:
    if dialect == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")
    else:
        for name in ("no_change", "no_truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{name} ON {table}")


def upgrade() -> None:
    op.create_table(
        "retention_unlocks",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_unlocks")),
    )
    dialect = op.get_bind().dialect.name
    for table in _TABLES:
        _drop_triggers(dialect, table)
        for statement in _append_only(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in _TABLES:
        _drop_triggers(dialect, table)
        for statement in _refuse_all(dialect, table):
            op.execute(statement)
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS cvault_refuse_consent_change()")
    op.drop_table("retention_unlocks")
