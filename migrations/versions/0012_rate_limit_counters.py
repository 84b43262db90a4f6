"""rate limit counters: shared by every server process on PostgreSQL

UNLOGGED on PostgreSQL: counters need no crash safety (a crash forgets at most one
window's hits) and skip the write-ahead log on every request.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "rate_limit_counters",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_limit_counters")),
        prefixes=unlogged,
    )


def downgrade() -> None:
    op.drop_table("rate_limit_counters")
