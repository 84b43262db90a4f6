"""sign-in codes and page sessions (the privacy page's one-time codes, revocable sessions)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 05:39:04.696415
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "page_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=True),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        _time("created_at"),
        _time("last_seen_at"),
        _time("expires_at"),
        _time("revoked_at", nullable=True),
        sa.CheckConstraint("kind IN ('privacy', 'console')", name=op.f("ck_page_sessions_kind")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_page_sessions_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_sessions")),
        sa.UniqueConstraint("token_digest", name=op.f("uq_page_sessions_token_digest")),
    )
    op.create_index(
        op.f("ix_page_sessions_customer_id"), "page_sessions", ["customer_id"], unique=False
    )
    op.create_table(
        "sign_in_codes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("browser_digest", sa.String(length=64), nullable=False),
        sa.Column("code_digest", sa.String(length=64), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("used_at", nullable=True),
        _time("invalidated_at", nullable=True),
        sa.CheckConstraint("channel IN ('email', 'phone')", name=op.f("ck_sign_in_codes_channel")),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_sign_in_codes_customer_id_customers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_codes")),
    )
    op.create_index(
        "ix_sign_in_codes_browser_digest",
        "sign_in_codes",
        ["browser_digest", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_sign_in_codes_customer_id"), "sign_in_codes", ["customer_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_codes_customer_id"), table_name="sign_in_codes")
    op.drop_index("ix_sign_in_codes_browser_digest", table_name="sign_in_codes")
    op.drop_table("sign_in_codes")
    op.drop_index(op.f("ix_page_sessions_customer_id"), table_name="page_sessions")
    op.drop_table("page_sessions")
