"""customers.version: a counter of the record's changes, for updates that must not be lost

Every change of a customer row adds one (the ORM writes it as a compare-and-set);
``updateCustomer(expectedVersion:)`` refuses with CONFLICT when the record moved on since
the caller read it. Existing rows start at 1.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("version")
