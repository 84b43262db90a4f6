"""trusted documents: GraphQL documents by SHA-256 and their register/revoke events

Both tables are append-only like the audit trail (triggers refuse UPDATE, DELETE and
TRUNCATE): a revocation is a new event, never an edit.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 07:54:11.484763
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("trusted_documents", "trusted_document_events")


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


def _time(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "trusted_documents",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("operation_type", sa.String(length=16), nullable=False),
        sa.Column("operation_name", sa.String(length=128), nullable=True),
        _time("created_at"),
        sa.CheckConstraint(
            "operation_type IN ('query', 'mutation', 'subscription', 'mixed')",
            name=op.f("ck_trusted_documents_operation_type"),
        ),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_trusted_documents")),
    )
    op.create_table(
        "trusted_document_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=80), nullable=True),
        sa.Column("manifest", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        _time("at"),
        sa.CheckConstraint(
            "action IN ('registered', 'revoked')",
            name=op.f("ck_trusted_document_events_action"),
        ),
        sa.ForeignKeyConstraint(
            ["sha256"],
            ["trusted_documents.sha256"],
            name=op.f("fk_trusted_document_events_sha256_trusted_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_document_events")),
    )
    op.create_index(
        op.f("ix_trusted_document_events_client_id"),
        "trusted_document_events",
        ["client_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_trusted_document_events_sha256"),
        "trusted_document_events",
        ["sha256"],
        unique=False,
    )
    dialect = op.get_bind().dialect.name
    for table in _TABLES:
        for statement in _append_only(dialect, table):
            op.execute(statement)


def downgrade() -> None:
    op.drop_index(op.f("ix_trusted_document_events_sha256"), table_name="trusted_document_events")
    op.drop_index(
        op.f("ix_trusted_document_events_client_id"), table_name="trusted_document_events"
    )
    op.drop_table("trusted_document_events")
    op.drop_table("trusted_documents")
