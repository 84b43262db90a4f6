"""access alerts: the anomaly detector's alerts (one per kind, principal and hour) and its
high-water mark in the ordered audit log

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "access_alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("principal", sa.String(length=128), nullable=False),
        sa.Column("hour", _TIME, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("baseline", sa.Integer(), nullable=False),
        sa.Column("raised_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("last_error", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "kind IN ('distinct_customers', 'refusals', 'export_off_hours')",
            name=op.f("ck_access_alerts_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_alerts")),
        sa.UniqueConstraint("kind", "principal", "hour", name=op.f("uq_access_alerts_kind")),
    )
    op.create_index(op.f("ix_access_alerts_raised_at"), "access_alerts", ["raised_at"])
    op.create_table(
        "alert_scans",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("scanned_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_scans")),
    )


def downgrade() -> None:
    op.drop_table("alert_scans")
    op.drop_index(op.f("ix_access_alerts_raised_at"), table_name="access_alerts")
    op.drop_table("access_alerts")
