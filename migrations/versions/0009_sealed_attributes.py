"""customers.sealed_attributes: the PII custom attributes, each sealed on its own

Custom attributes are declared (policies/attributes.toml, CVAULT_ATTRIBUTES_FILE); those
declared ``pii = true`` are encrypted under the customer's data key and kept here as
name -> field token (base64), apart from the clear ``attributes`` that segment rules read.
Values stored in clear before this revision stay where they are: ``cvault attributes
seal`` moves those of attributes declared PII into this column (docs/attributes.md).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column(
                "sealed_attributes",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("sealed_attributes")
